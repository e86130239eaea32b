"""Families: cells that are one model in all but morphology or density jitter.

The rule on cells written here; its four cases on the community corpus (one
Blue Brain e-model over many morphologies, the Golgi population and the
inferior-olive biophysics sets, the Allen perisomatic fits) are in
``test_corpus_cells.py``, which reads the corpus once.
"""

from collections import defaultdict

from bnnsim.ephys import dataset, families
from bnnsim.ephys.corpus import discover
from tests.bnnsim.ephys.cells import _HH_CHANNELS
from tests.conftest import nml


def _cell(cell_id, na="120.0 mS_per_cm2", k="36 mS_per_cm2", cm="1.0 uF_per_cm2",
          length=20.0):
    """A two-segment HH cell; ``length`` changes only the morphology."""
    return f"""
<cell id="{cell_id}">
  <morphology id="m_{cell_id}">
    <segment id="0" name="soma"><proximal x="0" y="0" z="0" diameter="18"/>
      <distal x="0" y="0" z="0" diameter="18"/></segment>
    <segment id="1" name="dend"><parent segment="0"/><proximal x="0" y="0" z="0" diameter="2"/>
      <distal x="{length}" y="0" z="0" diameter="2"/></segment>
    <segmentGroup id="soma_group"><member segment="0"/></segmentGroup>
    <segmentGroup id="dend_group"><member segment="1"/></segmentGroup>
  </morphology>
  <biophysicalProperties id="bp_{cell_id}">
    <membraneProperties>
      <channelDensity id="na" ionChannel="naChan" condDensity="{na}" erev="50 mV" ion="na"
        segmentGroup="soma_group"/>
      <channelDensity id="k" ionChannel="kChan" condDensity="{k}" erev="-77 mV" ion="k"/>
      <specificCapacitance value="{cm}"/>
    </membraneProperties>
    <intracellularProperties><resistivity value="0.03 kohm_cm"/></intracellularProperties>
  </biophysicalProperties>
</cell>"""


def _family_of(tmp_path, cells, repos=None):
    """{cell id: family} of fixture cells (one file each; ``repos``: cell id -> source)."""
    rows = []
    for cid, body in cells.items():
        path = tmp_path / f"{cid}.cell.nml"
        path.write_text(nml(_HH_CHANNELS + body, cid))
        (src,), _ = discover([path])
        rows.append((cid, (repos or {}).get(cid, "src"), src.biophysics))
    return families.families(rows)


def test_same_biophysics_on_another_morphology_is_one_family(tmp_path):
    fam = _family_of(tmp_path, {"a": _cell("a"), "b": _cell("b", length=300.0),
                                "c": _cell("c", na="12 mS_per_cm2")},
                     repos={"a": "one", "b": "another", "c": "one"})
    assert fam["a"] == fam["b"] == "a"  # named after its first member
    assert fam["c"] == "c"


def test_units_do_not_matter(tmp_path):
    fam = _family_of(tmp_path, {"a": _cell("a"), "b": _cell("b", na="1200 S_per_m2")},
                     repos={"a": "one", "b": "two"})
    assert fam["a"] == fam["b"]


def test_jitter_joins_cells_of_one_source_only(tmp_path):
    # densities within JITTER_FACTOR of each other, chained a-b-c; d is beyond it
    cells = {"a": _cell("a", na="100 mS_per_cm2"), "b": _cell("b", na="140 mS_per_cm2"),
             "c": _cell("c", na="190 mS_per_cm2"), "d": _cell("d", na="400 mS_per_cm2"),
             "e": _cell("e", na="101 mS_per_cm2")}
    fam = _family_of(tmp_path, cells, repos={"e": "elsewhere"})
    assert fam["a"] == fam["b"] == fam["c"] == "a"
    assert fam["d"] == "d" and fam["e"] == "e"  # too far; another source


def test_different_passive_numbers_are_independent_fits(tmp_path):
    # every density equal but the capacitance: a fit, not a population's jitter
    fam = _family_of(tmp_path, {"a": _cell("a"), "b": _cell("b", cm="1.3 uF_per_cm2")})
    assert fam["a"] != fam["b"]


def test_a_variant_sits_in_its_source_family(tmp_path):
    src = tmp_path / "a.cell.nml"
    src.write_text(nml(_HH_CHANNELS + _cell("a"), "a"))
    (source,), _ = discover([src])
    row = {"name": source.name, "characterised": True, "family": "fam-a", "etype": "delayed"}
    jobs, failed = dataset.variant_jobs([source], [row], 2, tmp_path / "out", tmp_path / "c")
    assert not failed and [j["family"] for j in jobs] == ["fam-a", "fam-a"]
    assert all(j["variant_of"] == source.name for j in jobs)


def test_splits_keep_each_family_on_one_side():
    rows = [{"name": f"c{i}", "characterised": True, "etype": "delayed", "family": f"f{i // 5}",
             "labels": {"repository": "A"}} for i in range(100)]
    rows += [{"name": "x", "characterised": True, "etype": "delayed", "family": "f0",
              "labels": {"repository": "B"}}]  # in the held-out repository
    splits = dataset.assign(rows, "B")
    by_family = defaultdict(set)
    for r in rows:
        by_family[r["family"]].add(splits[r["name"]])
    assert all(len(s) == 1 for s in by_family.values())
    assert by_family["f0"] == {"ood"}  # a family one held-out cell is in goes with it
    assert {s for (s,) in by_family.values()} == {"train", "val", "test", "ood"}
