"""The schema's layout and the unit conversion it relies on."""

import json

import numpy as np
import pytest

from graphs import schema
from graphs.errors import UnitError
from graphs.units import to_si


def test_six_contiguous_node_feature_groups():
    assert tuple(schema.NODE_GROUPS) == schema.FEATURE_GROUPS
    covered = sum(s.stop - s.start for s in schema.NODE_GROUPS.values())
    assert covered == schema.NUM_NODE_FEATURES
    json.dumps(schema.schema_dict())  # exported with every dataset


def test_every_column_has_its_own_name():
    """A name is how values reach a column (NODE_INDEX); two columns of one name would
    leave one always empty and put the other's values in the wrong unit."""
    for columns, index in ((schema.NODE_COLUMNS, schema.NODE_INDEX),
                           (schema.EDGE_COLUMNS, schema.EDGE_INDEX)):
        assert len(index) == len(columns)


def test_point_cell_leak_in_its_own_unit(write_nml):
    from graphs.convert import convert_file

    cg = convert_file(write_nml("iaf.nml", '<iafCell id="iaf" leakReversal="-65mV" '
                                'thresh="-50mV" reset="-70mV" C="1nF" leakConductance="10nS"/>'))
    soma = int(np.flatnonzero(cg.node_kind == schema.NodeKind.SOMA)[0])
    neuron = cg.neuron_id[soma]
    assert cg.feature("g_leak_cell")[neuron] == pytest.approx(10.0, rel=1e-5)  # nS
    assert cg.feature("e_leak_cell")[neuron] == pytest.approx(-65.0, rel=1e-5)  # mV
    assert np.isnan(cg.feature("g_leak")[neuron])  # the density column stays empty


def test_every_reference_unit_is_a_neuroml_unit():
    for col in schema.NODE_COLUMNS + schema.EDGE_COLUMNS:
        if col.unit:
            assert to_si(f"1 {col.unit}") > 0


def test_model_class_mapping():
    assert schema.model_class("cell") == "hhCell"
    assert schema.model_class("IF_cond_exp") == "pynnCell"
    assert schema.model_class("blockingPlasticSynapse") == "plasticSynapse"
    assert schema.model_class("somethingNew") == "other"


@pytest.mark.parametrize("text,dim,si", [
    ("-65mV", "voltage", -0.065), ("-65 mV", "voltage", -0.065),
    ("0.3 mS_per_cm2", "conductanceDensity", 3.0), ("1 uF_per_cm2", "specificCapacitance", 0.01),
    ("10ms", "time", 0.01), ("5 nS", "conductance", 5e-9), ("6.3 degC", "temperature", 279.45),
    ("2e-3 s", "time", 2e-3), ("0.02", "none", 0.02)])
def test_known_quantities(text, dim, si):
    assert to_si(text, dim) == pytest.approx(si, rel=1e-9)


@pytest.mark.parametrize("text", ["abc", "mV", "1 2 mV", "5 furlongs", ""])
def test_bad_quantities_raise_without_hanging(text):
    with pytest.raises(UnitError):
        to_si(text, "voltage", file="f.nml", element="iafCell")


def test_encode_decode_round_trip():
    cols = schema.NODE_COLUMNS
    j = np.array([schema.NODE_INDEX[n] for n in ("length", "deg_in_axial", "population_index")])
    values = np.array([-123.0, 7.0, 0.5])
    enc = schema.encode_values(cols, j, values)
    assert enc[0] == pytest.approx(-np.log1p(123.0))
    back = [schema.decode(cols[k], e) for k, e in zip(j, enc)]
    np.testing.assert_allclose(back, values)
