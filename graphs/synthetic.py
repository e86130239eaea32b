"""Synthetic NeuroML2 files of any size, for benchmarks and scale tests.

Deterministic given the seed; the counts of segments, cells, connections and
inputs are exact, so tests can check the graph built from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np

HEADER = '<neuroml xmlns="http://www.neuroml.org/schema/neuroml2" id="bench">\n'


def write_morphology(path: Path, n_segments: int, seed: int = 0) -> None:
    """A random binary tree of 10 um segments: a branch point every ~20 segments."""
    rng = np.random.default_rng(seed)
    lines = [HEADER, '<cell id="tree"><morphology id="m">',
             '<segment id="0" name="soma"><proximal x="0" y="0" z="0" diameter="20"/>'
             '<distal x="0" y="0" z="0" diameter="20"/></segment>']
    tips = [(0, np.zeros(3))]
    for i in range(1, n_segments):
        k = rng.integers(len(tips)) if rng.random() < 0.05 else len(tips) - 1
        parent, start = tips[k]
        end = start + rng.normal(size=3) * 5 + np.array([10.0, 0, 0])
        lines.append(f'<segment id="{i}" name="d{i}"><parent segment="{parent}"/>'
                     f'<proximal x="{start[0]:.2f}" y="{start[1]:.2f}" z="{start[2]:.2f}" diameter="1"/>'
                     f'<distal x="{end[0]:.2f}" y="{end[1]:.2f}" z="{end[2]:.2f}" diameter="1"/></segment>')
        if rng.random() < 0.05:
            tips.append((i, end))
        else:
            tips[k] = (i, end)
    lines += ['<segmentGroup id="soma_group"><member segment="0"/></segmentGroup>',
              '</morphology><biophysicalProperties id="b"><membraneProperties>'
              '<channelDensity id="pas" ionChannel="pas" condDensity="0.1 mS_per_cm2" '
              'erev="-70mV" ion="non_specific"/><specificCapacitance value="1 uF_per_cm2"/>'
              '</membraneProperties></biophysicalProperties></cell>', "</neuroml>"]
    Path(path).write_text("\n".join(lines))


def write_network(path: Path, n_cells: int, fan_in: int = 10, seed: int = 0) -> None:
    """n_cells iaf cells, fan_in random connectionWDs per cell, one input per cell."""
    rng = np.random.default_rng(seed)
    lines = [HEADER,
             '<iafCell id="iaf" leakReversal="-65mV" thresh="-50mV" reset="-70mV" C="1nF" '
             'leakConductance="10nS"/>',
             '<expOneSynapse id="syn" gbase="1nS" erev="0mV" tauDecay="3ms"/>',
             '<pulseGenerator id="pg" delay="0ms" duration="100ms" amplitude="0.2nA"/>',
             '<network id="net">',
             f'<population id="P" component="iaf" type="populationList" size="{n_cells}">']
    for i in range(n_cells):
        x, y, z = rng.uniform(0, 1000, 3)
        lines.append(f'<instance id="{i}"><location x="{x:.1f}" y="{y:.1f}" z="{z:.1f}"/></instance>')
    lines.append('</population><projection id="PP" presynapticPopulation="P" '
                 'postsynapticPopulation="P" synapse="syn">')
    pre = rng.integers(n_cells, size=n_cells * fan_in)
    for k, (a, b) in enumerate(zip(pre, np.repeat(np.arange(n_cells), fan_in))):
        lines.append(f'<connectionWD id="{k}" preCellId="../P/{a}/iaf" postCellId="../P/{b}/iaf" '
                     f'weight="{rng.uniform(0.5, 1.5):.3f}" delay="{rng.uniform(1, 5):.2f}ms"/>')
    lines.append('</projection><inputList id="in" population="P" component="pg">')
    for i in range(n_cells):
        lines.append(f'<input id="{i}" target="../P/{i}/iaf" destination="synapses"/>')
    lines += ["</inputList></network>", "</neuroml>"]
    Path(path).write_text("\n".join(lines))




# Potjans & Diesmann (2014), Cereb. Cortex 24:785: the cortical microcircuit model.
PD_POPULATIONS = ("L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I")
PD_SIZES = (20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948)  # 77,169 neurons
PD_PROBABILITY = (  # [post, pre], connection probability
    (0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0),
    (0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0),
    (0.0077, 0.0059, 0.0497, 0.1350, 0.0067, 0.0003, 0.0453, 0.0),
    (0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0),
    (0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0),
    (0.0548, 0.0269, 0.0257, 0.0022, 0.0600, 0.3158, 0.0086, 0.0),
    (0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252),
    (0.0364, 0.0010, 0.0034, 0.0005, 0.0277, 0.0080, 0.0658, 0.1443))
PD_BACKGROUND = (1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100)  # external in-degree
_PD_DEPTH = {"L23": (0, 400), "L4": (400, 700), "L5": (700, 1000), "L6": (1000, 1400)}


def microcircuit_connections(scale: float, seed: int = 0):
    """Per projection (pre, post, synapse, [K, 4] float32 pre id, post id, weight, delay
    ms), one at a time. Pairs drawn with replacement (multapses allowed), ~p * n_pre *
    n_post of them: connection probabilities are kept, so synapses grow as scale^2."""
    rng = np.random.default_rng(seed)
    sizes = [max(1, int(round(n * scale))) for n in PD_SIZES]
    for i, post in enumerate(PD_POPULATIONS):
        for j, pre in enumerate(PD_POPULATIONS):
            p = PD_PROBABILITY[i][j]
            if p == 0:
                continue
            k = int(rng.binomial(sizes[j] * sizes[i], p))
            exc = pre.endswith("E")
            mean_w = (2.0 if (pre, post) == ("L4E", "L23E") else 1.0) if exc else 4.0
            mean_d = 1.5 if exc else 0.75
            a = np.empty((k, 4), np.float32)
            a[:, 0] = rng.integers(0, sizes[j], k)
            a[:, 1] = rng.integers(0, sizes[i], k)
            a[:, 2] = np.clip(rng.normal(mean_w, 0.1 * mean_w, k), 0.01, None)
            a[:, 3] = np.maximum(rng.normal(mean_d, mean_d / 2, k), 0.1)
            yield pre, post, "exc_syn" if exc else "inh_syn", a


def write_microcircuit(path, scale: float = 0.01, seed: int = 0,
                       complevel: int = 5) -> Dict[str, int]:
    """The Potjans-Diesmann microcircuit at ``scale`` (population sizes times scale) as a
    NeuroML HDF5 network, written by libNeuroML (its array containers and their
    ``exportHdf5``; one projection in memory at a time). Point neurons (iafRefCell),
    conductance synapses, one Poisson background input per neuron; zlib ``complevel`` 5
    is libNeuroML's own. Empty projections are left out. Returns counts."""
    import neuroml
    import neuroml.utils  # noqa: F401  (libNeuroML's exporters use it without importing it)
    import tables
    from neuroml.hdf5.NetworkContainer import (InputListContainer, InputsList, InstanceList,
                                               PopulationContainer, ProjectionContainer)
    from neuroml.writers import NeuroMLWriter

    rng = np.random.default_rng(seed + 1)
    doc = neuroml.NeuroMLDocument(id="microcircuit")
    for cid in ("exc", "inh"):  # PD's neuron: tau_m 10 ms, C 250 pF, t_ref 2 ms
        doc.iaf_ref_cells.append(neuroml.IafRefCell(
            id=cid, C="250pF", thresh="-50mV", reset="-65mV", leakReversal="-65mV",
            leak_conductance="25nS", refract="2ms"))
    doc.exp_one_synapses.append(neuroml.ExpOneSynapse(id="exc_syn", gbase="0.5nS",
                                                      erev="0mV", tau_decay="0.5ms"))
    doc.exp_one_synapses.append(neuroml.ExpOneSynapse(id="inh_syn", gbase="0.5nS",
                                                      erev="-80mV", tau_decay="0.5ms"))
    sizes = [max(1, int(round(n * scale))) for n in PD_SIZES]
    for name, k_ext in zip(PD_POPULATIONS, PD_BACKGROUND):
        doc.poisson_firing_synapses.append(neuroml.PoissonFiringSynapse(
            id=f"bg_{name}", average_rate=f"{8.0 * k_ext} Hz", synapse="exc_syn",
            spike_target="./exc_syn"))
    side = 1000.0 * np.sqrt(scale)  # keep the density of the full model's 1 mm^2
    counts = {"neurons": sum(sizes), "connections": 0, "projections": 0}
    h5 = tables.open_file(str(path), mode="w", title=doc.id,
                          filters=tables.Filters(complib="zlib", complevel=complevel))
    try:
        root = h5.create_group("/", "neuroml", "Root NeuroML group")
        root._f_setattr("id", doc.id)
        root._f_setattr("GENERATED_BY", f"libNeuroML v{neuroml.__version__}")
        net = h5.create_group(root, "network")
        net._f_setattr("id", "PD")
        for name, n in zip(PD_POPULATIONS, sizes):
            lo, hi = _PD_DEPTH[name[:-1]]
            loc = np.stack([rng.uniform(0, side, n), rng.uniform(0, side, n),
                            rng.uniform(lo, hi, n)], 1).astype(np.float32)
            pop = PopulationContainer(id=name, component="exc" if name.endswith("E") else "inh")
            pop.instances = InstanceList(array=loc, indices={"x": 0, "y": 1, "z": 2})
            pop.exportHdf5(h5, net)
        for pre, post, syn, a in microcircuit_connections(scale, seed):
            if not a.shape[0]:  # libNeuroML cannot write an empty array; nothing to say
                continue
            proj = ProjectionContainer(id=f"{pre}_{post}", presynaptic_population=pre,
                                       postsynaptic_population=post, synapse=syn)
            proj.connections.array = a
            proj.connections.indices = {"pre_cell_id": 0, "post_cell_id": 1, "weight": 2,
                                        "delay": 3}
            proj.exportHdf5(h5, net)
            counts["connections"] += a.shape[0]
            counts["projections"] += 1
        for name, n in zip(PD_POPULATIONS, sizes):
            il = InputListContainer(id=f"bg_{name}", populations=name, component=f"bg_{name}")
            a = np.zeros((n, 4), np.float32)
            a[:, 0] = a[:, 1] = np.arange(n)
            a[:, 3] = 0.5
            il.input = InputsList(array=a, indices={"id": 0, "target_cell_id": 1,
                                                    "segment_id": 2, "fraction_along": 3})
            il.exportHdf5(h5, net)
        import io
        xml = io.StringIO()
        NeuroMLWriter.write(doc, xml, close=False)
        root._f_setattr("neuroml_top_level", xml.getvalue())
    finally:
        h5.close()
    return counts
