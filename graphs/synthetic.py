"""Synthetic NeuroML2 files of any size, for benchmarks and scale tests.

Deterministic given the seed; the counts of segments, cells, connections and
inputs are exact, so tests can check the graph built from them.
"""

from __future__ import annotations

from pathlib import Path

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
             '<iafCell id="iaf" leak_reversal="-65mV" thresh="-50mV" reset="-70mV" C="1nF" '
             'leak_conductance="10nS"/>',
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


