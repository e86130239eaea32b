"""Bad input: a clear typed error naming the file, never a crash, hang or fetch."""

import socket

import pytest

from graphs import convert_file
from graphs import errors as E
from tests.conftest import nml
from tests.fixtures import BALL_AND_STICK, IAF


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the converter tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def check(path, error_type, *fragments):
    with pytest.raises(error_type) as info:
        convert_file(path)
    message = str(info.value)
    assert str(path.name) in message
    for fragment in fragments:
        assert fragment in message
    return info.value


def test_malformed_xml(tmp_path):
    p = tmp_path / "bad.nml"
    p.write_text(nml("<iafCell id='x'").replace("</neuroml>", ""))
    check(p, E.MalformedXML, "not well-formed")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.nml"
    p.write_text("  \n")
    check(p, E.EmptyFile, "empty")


def test_not_neuroml(tmp_path):
    p = tmp_path / "page.nml"
    p.write_text("<html><body>hello</body></html>")
    check(p, E.NotNeuroML, "<html>")


def test_missing_file(tmp_path):
    check(tmp_path / "nope.nml", E.MissingFile, "not found")


def test_missing_include(write_nml):
    p = write_nml("inc.nml", '<include href="cells/absent.cell.nml"/>')
    err = check(p, E.MissingInclude, "absent.cell.nml")
    assert err.line == 3


@pytest.mark.parametrize("href", ["http://example.org/cell.nml",
                                  "https://example.org/x.nml", "ftp://host/x.nml"])
def test_remote_include_is_refused_not_fetched(write_nml, href):
    check(write_nml("remote.nml", f'<include href="{href}"/>'), E.RemoteInclude, href)


def test_xxe_is_refused(tmp_path):
    p = tmp_path / "xxe.nml"
    p.write_text('<?xml version="1.0"?>\n<!DOCTYPE neuroml [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                 + nml('<iafCell id="&x;" leakReversal="-65mV" thresh="-50mV" reset="-70mV" C="1nF" leakConductance="1nS"/>').split("\n", 1)[1])
    err = check(p, E.UnsafeXML, "refused")
    assert err.line == 2


def test_entity_expansion_bomb_is_refused(tmp_path):
    lol = "".join(f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10 if i else "lol"}">' for i in range(10))
    p = tmp_path / "bomb.nml"
    p.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE neuroml [{lol}]>\n<neuroml>&l9;</neuroml>')
    check(p, E.UnsafeXML)


def test_unknown_component_reference(write_nml):
    body = IAF + '<network id="n"><population id="P" component="nosuchcell" size="2"/></network>'
    err = check(write_nml("unk.nml", body), E.UnknownComponent, "nosuchcell", "population")
    assert err.element == "population"


def test_unknown_synapse_reference(write_nml):
    body = IAF + ('<network id="n"><population id="P" component="iaf" size="2"/>'
                  '<projection id="pr" presynapticPopulation="P" postsynapticPopulation="P" synapse="ghost">'
                  '<connection id="0" preCellId="../P/0/iaf" postCellId="../P/1/iaf"/></projection></network>')
    check(write_nml("unk2.nml", body), E.UnknownComponent, "ghost")


def test_connection_to_missing_cell(write_nml):
    body = IAF + ('<expOneSynapse id="s" gbase="1nS" erev="0mV" tauDecay="2ms"/>'
                  '<network id="n"><population id="P" component="iaf" size="2"/>'
                  '<projection id="pr" presynapticPopulation="P" postsynapticPopulation="P" synapse="s">'
                  '<connection id="0" preCellId="../P/0/iaf" postCellId="../P/7/iaf"/></projection></network>')
    check(write_nml("cell7.nml", body), E.UnknownComponent, "cell 7")


@pytest.mark.parametrize("value,fragment", [("-50 furlongs", "unknown unit"),
                                            ("abc", "does not parse"),
                                            ("-50 ms", "dimension time")])
def test_unit_that_does_not_parse(write_nml, value, fragment):
    body = f'<iafCell id="c" leakReversal="-65mV" thresh="{value}" reset="-70mV" C="1nF" leakConductance="1nS"/>'
    err = check(write_nml("unit.nml", body), E.UnitError, fragment)
    assert err.element == "iafCell" and err.line == 3


def test_negative_diameter(write_nml):
    body = BALL_AND_STICK.replace('diameter="2"/>\n        <distal x="105"', 'diameter="-2"/>\n        <distal x="105"')
    check(write_nml("neg.cell.nml", body), E.InvalidValue, "negative diameter", "segment 1")


def test_nan_parameter(write_nml):
    body = '<iafCell id="c" leakReversal="-65mV" thresh="-50mV" reset="-70mV" C="NaN nF" leakConductance="1nS"/>'
    check(write_nml("nan.nml", body), E.InvalidValue, "not a finite number")


def test_nan_coordinate(write_nml):
    body = BALL_AND_STICK.replace('<distal x="205"', '<distal x="NaN"')
    check(write_nml("nanxyz.cell.nml", body), E.InvalidValue, "non-finite")


def test_negative_time_constant(write_nml):
    body = '<iafTauCell id="c" leakReversal="-65mV" thresh="-50mV" reset="-70mV" tau="-10ms"/>'
    check(write_nml("tau.nml", body), E.InvalidValue, "tau_m is negative")


def test_segment_group_include_cycle(write_nml):
    body = BALL_AND_STICK.replace(
        '<segmentGroup id="soma_group" neuroLexId="GO:0043025"><member segment="0"/></segmentGroup>',
        '<segmentGroup id="soma_group" neuroLexId="GO:0043025"><member segment="0"/><include segmentGroup="loop"/></segmentGroup>'
        '<segmentGroup id="loop"><include segmentGroup="soma_group"/></segmentGroup>')
    check(write_nml("cycle.cell.nml", body), E.InvalidValue, "includes itself")


def test_nothing_to_convert(write_nml):
    check(write_nml("nothing.nml", "<notes>just notes</notes>"), E.NothingToConvert)


def test_include_cycle_terminates(tmp_path):
    (tmp_path / "a.nml").write_text(nml('<include href="b.nml"/>' + IAF))
    (tmp_path / "b.nml").write_text(nml('<include href="a.nml"/>'))
    cg = convert_file(tmp_path / "a.nml")
    assert cg.nodes_by_kind()["neuron"] == 1
