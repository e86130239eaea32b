"""Canonical point-neuron models as NeuroML2, from the same numbers the simulator uses.

A neuron is a dict ``{"family": <NeuroML component type>, <param>: value}``
with values in mV, ms, pA, pF, nS (``bnnsim.cells``). ``cell_component``
turns it into the libNeuroML object; ``network_model`` and ``write_lems_run``
build a network (cells, synapses with short-term plasticity, gap junctions,
pulse inputs) and the LEMS simulation that jNeuroML runs, so the JAX simulator can be checked
against jNeuroML on exactly the files of the dataset.

Published firing-type parameter sets:
* ``IZHIKEVICH_2007``: Izhikevich (2007) Dynamical Systems in Neuroscience,
  ch. 8 (RS, IB, CH, LTS with the linear u of NeuroML's izhikevich2007Cell).
* ``ADEX_NAUD_2008``: Naud, Marcille, Clopath, Gerstner (2008) Biol Cybern
  99:335, Table 1 (tonic, adapting, initial burst, bursting, irregular,
  transient, delayed), spike detection at VT + 5 delT, no refractory period;
  ``current`` is the step amplitude (pA) that shows the pattern.
* ``hh_single_cell`` / ``ball_and_stick_cell``: NeuroML ``<cell>``s with the
  Hodgkin-Huxley squid channels of NeuroML's ``NML2_SingleCompHHCell`` example
  (Na 120, K 36, leak 0.3 mS/cm2); the ball-and-stick cell has an active soma,
  a passive dendrite of four segments and a passive axon segment
  (``bnnsim.morphology`` gives the dict format and how it is simulated).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import neuroml
import neuroml.writers

IZHIKEVICH_2007: dict[str, dict] = {
    "RS": dict(C=100, k=0.7, vr=-60, vt=-40, vpeak=35, a=0.03, b=-2, c=-50, d=100, current=70),
    "IB": dict(C=150, k=1.2, vr=-75, vt=-45, vpeak=50, a=0.01, b=5, c=-56, d=130, current=500),
    "CH": dict(C=50, k=1.5, vr=-60, vt=-40, vpeak=25, a=0.03, b=1, c=-40, d=150, current=300),
    "LTS": dict(C=100, k=1.0, vr=-56, vt=-42, vpeak=40, a=0.03, b=8, c=-53, d=20, current=100),
}

ADEX_NAUD_2008: dict[str, dict] = {
    "tonic": dict(C=200, gL=10, EL=-70, VT=-50, delT=2, a=2, tauw=30, b=0, reset=-58, current=500),
    "adapting": dict(C=200, gL=12, EL=-70, VT=-50, delT=2, a=2, tauw=300, b=60, reset=-58,
                     current=500),
    "initial_burst": dict(C=130, gL=18, EL=-58, VT=-50, delT=2, a=4, tauw=150, b=120,
                          reset=-50, current=400),
    "bursting": dict(C=200, gL=10, EL=-58, VT=-50, delT=2, a=2, tauw=120, b=100, reset=-46,
                     current=210),
    "irregular": dict(C=100, gL=12, EL=-60, VT=-50, delT=2, a=-11, tauw=130, b=30, reset=-48,
                      current=160),
    "transient": dict(C=100, gL=10, EL=-65, VT=-50, delT=2, a=10, tauw=90, b=100, reset=-47,
                      current=350),
    "delayed": dict(C=100, gL=12, EL=-65, VT=-50, delT=2, a=-10, tauw=90, b=30, reset=-47,
                    current=110),
}


def izhikevich_cell(kind: str) -> dict:
    """An izhikevich2007Cell neuron dict of a published firing type (v0 = vr)."""
    p = {k: v for k, v in IZHIKEVICH_2007[kind].items() if k != "current"}
    return dict(family="izhikevich2007Cell", v0=p["vr"], **p)


def adex_cell(kind: str) -> dict:
    """An adExIaFCell neuron dict of a published firing type."""
    p = {k: v for k, v in ADEX_NAUD_2008[kind].items() if k != "current"}
    return dict(family="adExIaFCell", thresh=p["VT"] + 5 * p["delT"], refract=0.0, **p)


def _q(value: float, unit: str) -> str:
    return f"{float(value):.10g}{unit}"


# the canonical model families the dataset generator draws networks from
FAMILIES = ("izhikevich", "adex", "lif", "hh")

_HH = dict(family="cell", Cm=1.0, Ra=100.0, ena=50.0, ek=-77.0, el=-54.3, v0=-65.0,
           thresh=-20.0)


def hh_single_cell(area_um2: float = 1000.0, gna: float = 120.0, gk: float = 36.0,
                   gl: float = 0.3) -> dict:
    """A single-compartment HH cell: a spherical soma of the given area (um^2)."""
    return dict(_HH, segments=(("soma", "soma", -1, 0.0, float((area_um2 / 3.141592653589793)
                                                                ** 0.5)),),
                density=(("soma", gna, gk, gl),))


def ball_and_stick_cell(soma_diam: float = 20.0, dend_length: float = 400.0,
                        dend_diam: float = 2.0, n_dend: int = 4, axon_length: float = 50.0,
                        axon_diam: float = 1.0, gna: float = 120.0, gk: float = 36.0,
                        gl: float = 0.3, gl_dend: float = 0.3) -> dict:
    """Ball and stick: HH soma (sphere), passive dendrite in ``n_dend`` segments (um),
    passive axon segment."""
    segs = [("soma", "soma", -1, 0.0, soma_diam)]
    segs += [(f"dend{k}", "dendrite", k, dend_length / n_dend, dend_diam) for k in range(n_dend)]
    segs += [("axon", "axon", 0, axon_length, axon_diam)]
    return dict(_HH, segments=tuple(segs),
                density=(("soma", gna, gk, gl), ("dendrite", 0.0, 0.0, gl_dend),
                         ("axon", 0.0, 0.0, gl_dend)))


# (gate, instances, forward (type, rate 1/ms, midpoint mV, scale mV), reverse): the squid
# axon channels of NeuroML's NML2_SingleCompHHCell example, which bnnsim.simulate.hh_rates
# implements
_HH_GATES = {
    "na": (("m", 3, ("HHExpLinearRate", 1.0, -40, 10), ("HHExpRate", 4.0, -65, -18)),
           ("h", 1, ("HHExpRate", 0.07, -65, -20), ("HHSigmoidRate", 1.0, -35, 10))),
    "k": (("n", 4, ("HHExpLinearRate", 0.1, -55, 10), ("HHExpRate", 0.125, -65, -80)),),
}
_NLX_GROUP = {"soma": "GO:0043025", "dendrite": "GO:0030425", "axon": "GO:0030424"}


def hh_channels() -> list:
    """The ionChannelHH definitions a ``family="cell"`` neuron refers to."""
    def rate(t):
        return neuroml.HHRate(type=t[0], rate=_q(t[1], "per_ms"), midpoint=_q(t[2], "mV"),
                              scale=_q(t[3], "mV"))

    out = [neuroml.IonChannelHH(id="passiveChan", conductance="10pS")]
    for species, gates in _HH_GATES.items():
        out.append(neuroml.IonChannelHH(
            id=f"{species}Chan", conductance="10pS", species=species,
            gate_hh_rates=[neuroml.GateHHRates(id=g, instances=n, forward_rate=rate(f),
                                               reverse_rate=rate(r)) for g, n, f, r in gates]))
    return out


def _morphology(cell: dict, cell_id: str):
    """Segments laid out along x (dendrites +x, axons -x); a zero-length soma is a sphere."""
    import numpy as np

    segs = cell["segments"]
    ends = []
    morph = neuroml.Morphology(id=f"{cell_id}_morph")
    for k, (name, group, parent, length, diam) in enumerate(segs):
        sign = -1.0 if group == "axon" else 1.0
        if parent < 0:
            start = np.zeros(3)
        else:
            p_len, p_diam = segs[parent][3], segs[parent][4]
            start = ends[parent] + (np.array([sign * p_diam / 2, 0, 0]) if p_len == 0 else 0)
        end = start + np.array([sign * length, 0, 0])
        ends.append(end)
        morph.segments.append(neuroml.Segment(
            id=k, name=name,
            parent=neuroml.SegmentParent(segments=parent) if parent >= 0 else None,
            proximal=neuroml.Point3DWithDiam(x=start[0], y=start[1], z=start[2], diameter=diam),
            distal=neuroml.Point3DWithDiam(x=end[0], y=end[1], z=end[2], diameter=diam)))
    groups = list(dict.fromkeys(s[1] for s in segs))
    for g in groups:
        morph.segment_groups.append(neuroml.SegmentGroup(
            id=f"{g}_group", neuro_lex_id=_NLX_GROUP.get(g),
            members=[neuroml.Member(segments=k) for k, s in enumerate(segs) if s[1] == g]))
    morph.segment_groups.append(neuroml.SegmentGroup(
        id="all", includes=[neuroml.Include(segment_groups=f"{g}_group") for g in groups]))
    return morph


def _hh_cell(cell: dict, cell_id: str):
    densities = []
    for group, gna, gk, gl in cell["density"]:
        for chan, g, erev, ion in (("naChan", gna, cell["ena"], "na"),
                                   ("kChan", gk, cell["ek"], "k"),
                                   ("passiveChan", gl, cell["el"], "non_specific")):
            if g > 0:
                densities.append(neuroml.ChannelDensity(
                    id=f"{chan[:-4]}_{group}", ion_channel=chan, cond_density=_q(g, "mS_per_cm2"),
                    erev=_q(erev, "mV"), ion=ion, segment_groups=f"{group}_group"))
    membrane = neuroml.MembraneProperties(
        channel_densities=densities, spike_threshes=[neuroml.SpikeThresh(_q(cell["thresh"], "mV"))],
        specific_capacitances=[neuroml.SpecificCapacitance(_q(cell["Cm"], "uF_per_cm2"))],
        init_memb_potentials=[neuroml.InitMembPotential(_q(cell["v0"], "mV"))])
    bio = neuroml.BiophysicalProperties(
        id=f"{cell_id}_bio", membrane_properties=membrane,
        intracellular_properties=neuroml.IntracellularProperties(
            resistivities=[neuroml.Resistivity(_q(cell["Ra"], "ohm_cm"))]))
    return neuroml.Cell(id=cell_id, morphology=_morphology(cell, cell_id),
                        biophysical_properties=bio)


def cell_component(cell: dict, cell_id: str):
    """The libNeuroML object of one neuron dict."""
    fam, p = cell["family"], cell
    if fam == "cell":
        return _hh_cell(cell, cell_id)
    if fam == "izhikevich2007Cell":
        return neuroml.Izhikevich2007Cell(
            id=cell_id, C=_q(p["C"], "pF"), v0=_q(p["v0"], "mV"), k=_q(p["k"], "nS_per_mV"),
            vr=_q(p["vr"], "mV"), vt=_q(p["vt"], "mV"), vpeak=_q(p["vpeak"], "mV"),
            a=_q(p["a"], "per_ms"), b=_q(p["b"], "nS"), c=_q(p["c"], "mV"), d=_q(p["d"], "pA"))
    if fam == "adExIaFCell":
        return neuroml.AdExIaFCell(
            id=cell_id, C=_q(p["C"], "pF"), g_l=_q(p["gL"], "nS"), EL=_q(p["EL"], "mV"),
            reset=_q(p["reset"], "mV"), VT=_q(p["VT"], "mV"), thresh=_q(p["thresh"], "mV"),
            del_t=_q(p["delT"], "mV"), tauw=_q(p["tauw"], "ms"), refract=_q(p["refract"], "ms"),
            a=_q(p["a"], "nS"), b=_q(p["b"], "pA"))
    common = dict(id=cell_id, C=_q(p["C"], "pF"), thresh=_q(p["thresh"], "mV"),
                  reset=_q(p["reset"], "mV"), leak_conductance=_q(p["leak_conductance"], "nS"),
                  leak_reversal=_q(p["leak_reversal"], "mV"))
    if fam == "iafCell":
        return neuroml.IafCell(**common)
    if fam == "iafRefCell":
        return neuroml.IafRefCell(refract=_q(p["refract"], "ms"), **common)
    raise ValueError(f"no NeuroML writer for cell family {fam!r}")


def _freeze(d: dict) -> tuple:
    return tuple(sorted((k, _freeze(v) if isinstance(v, dict) else v) for k, v in d.items()))


def synapse_component(syn: dict, syn_id: str):
    """The libNeuroML object of a synapse dict (``bnnsim.synapse_params`` format).

    Short-term plasticity is written as a blockingPlasticSynapse (an expTwo
    synapse with a Tsodyks-Markram mechanism), the NeuroML2 core way. Pair-based
    STDP has no NeuroML2 core element: it is written as ``<property tag="stdp"
    value="pair-based"/>`` plus ``stdp_A_plus``, ``stdp_A_minus``,
    ``stdp_tau_plus`` (ms), ``stdp_tau_minus`` (ms), ``stdp_w_max`` properties on
    the synapse; jNeuroML ignores them (fixed weights), the CG converter sets the
    synapse's ``syn_plastic`` flag.
    """
    comp = _synapse_object(syn, syn_id)
    stdp = syn.get("stdp")
    if stdp:  # NeuroML2 core has no STDP element: parameters ride along as properties
        comp.properties = [neuroml.Property(tag="stdp", value="pair-based")] + [
            neuroml.Property(tag=f"stdp_{k}", value=f"{float(v):.10g}")
            for k, v in sorted(stdp.items())]
    return comp


def _synapse_object(syn: dict, syn_id: str):
    kind, q = syn["kind"], dict(gbase=_q(syn["gbase"], "nS"), erev=_q(syn["erev"], "mV"))
    stp = syn.get("stp")
    if stp and kind != "expTwoSynapse":
        raise ValueError("short-term plasticity is only written for expTwoSynapse "
                         f"(NeuroML blockingPlasticSynapse), not {kind}")
    if kind == "expOneSynapse":
        return neuroml.ExpOneSynapse(id=syn_id, tau_decay=_q(syn["tauDecay"], "ms"), **q)
    if kind == "alphaSynapse":
        return neuroml.AlphaSynapse(id=syn_id, tau=_q(syn["tau"], "ms"), **q)
    if kind != "expTwoSynapse":
        raise ValueError(f"no NeuroML writer for synapse kind {kind!r}")
    times = dict(tau_rise=_q(syn["tauRise"], "ms"), tau_decay=_q(syn["tauDecay"], "ms"))
    if not stp:
        return neuroml.ExpTwoSynapse(id=syn_id, **times, **q)
    mech = neuroml.PlasticityMechanism(
        type=stp["kind"], init_release_prob=f"{float(stp['initReleaseProb']):.10g}",
        tau_rec=_q(stp["tauRec"], "ms"),
        tau_fac=_q(stp["tauFac"], "ms") if "tauFac" in stp else None)
    return neuroml.BlockingPlasticSynapse(id=syn_id, plasticity_mechanism=mech, **times, **q)


class NetworkModel(NamedTuple):
    doc: neuroml.NeuroMLDocument
    neurons: list[tuple[str, int]]  # neuron i -> (population id, index in it)
    connections: list[str]  # connection i -> "projection id/connection id" (CG synapse name)


def network_model(cells: Sequence[dict], pulses: Sequence[Sequence[dict]],
                  connections: Sequence[dict] = (), gaps: Sequence[dict] = (),
                  sources: Sequence[Sequence[float]] = (), doc_id: str = "net") -> NetworkModel:
    """A NeuroML network of ``cells`` (one population per distinct cell definition).

    ``connections`` and ``gaps`` use neuron indices into ``cells`` (the format
    of ``bnnsim.synapse_params`` / ``gap_params``; a connection's ``post_segment``
    picks the segment of a ``family="cell"`` neuron, default 0); pulses become explicit
    inputs. Population ``pop<k>`` holds the neurons of the k-th distinct
    definition, in order of appearance. ``sources`` are spike trains (ms), each a
    spikeArray population ``src<k>``; as a presynaptic index, source k is
    ``len(cells) + k``.
    """
    doc = neuroml.NeuroMLDocument(id=doc_id)
    net = neuroml.Network(id="net")
    doc.networks.append(net)
    where, pops = [], {}  # neuron -> (population id, index); definition -> population
    if any(c["family"] == "cell" for c in cells):
        for chan in hh_channels():
            doc.add(chan)
    for cell in cells:
        key = _freeze(cell)
        if key not in pops:
            comp = cell_component(cell, f"cell{len(pops)}")
            doc.add(comp)
            pops[key] = neuroml.Population(id=f"pop{len(pops)}", component=comp.id, size=0)
            net.populations.append(pops[key])
        pop = pops[key]
        where.append((pop.id, pop.size))
        pop.size += 1
    for i, plist in enumerate(pulses):
        for j, pulse in enumerate(plist):
            pg = neuroml.PulseGenerator(id=f"pulse{i}_{j}", delay=_q(pulse["delay"], "ms"),
                                        duration=_q(pulse["duration"], "ms"),
                                        amplitude=_q(pulse["amplitude"], "pA"))
            doc.add(pg)
            net.explicit_inputs.append(
                neuroml.ExplicitInput(target=f"{where[i][0]}[{where[i][1]}]", input=pg.id))
    pre_of = list(where)
    for k, train in enumerate(sources):
        arr = neuroml.SpikeArray(id=f"spikes{k}", spikes=[
            neuroml.Spike(id=j, time=_q(t, "ms")) for j, t in enumerate(sorted(train))])
        doc.add(arr)
        net.populations.append(neuroml.Population(id=f"src{k}", component=arr.id, size=1))
        pre_of.append((f"src{k}", 0))
    syns, projs, names = {}, {}, []
    for c in connections:
        key = _freeze(c["synapse"])
        if key not in syns:
            syns[key] = synapse_component(c["synapse"], f"syn{len(syns)}")
            doc.add(syns[key])
        (pre_pop, pre_i), (post_pop, post_i) = pre_of[c["pre"]], where[c["post"]]
        pkey = (pre_pop, post_pop, syns[key].id)
        if pkey not in projs:
            projs[pkey] = neuroml.Projection(id=f"proj{len(projs)}", presynaptic_population=pre_pop,
                                             postsynaptic_population=post_pop,
                                             synapse=syns[key].id)
            net.projections.append(projs[pkey])
        proj = projs[pkey]
        names.append(f"{proj.id}/{len(proj.connection_wds)}")
        proj.connection_wds.append(neuroml.ConnectionWD(
            id=len(proj.connection_wds), pre_cell_id=f"../{pre_pop}[{pre_i}]",
            post_cell_id=f"../{post_pop}[{post_i}]",
            post_segment_id=int(c.get("post_segment", 0)), post_fraction_along=0.5,
            weight=float(c.get("weight", 1.0)), delay=_q(c.get("delay", 0.0), "ms")))
    _gap_projections(doc, net, where, gaps)
    return NetworkModel(doc, where, names)


def _gap_projections(doc, net, where, gaps) -> None:
    comps, projs = {}, {}
    for g in gaps:
        if float(g.get("weight", 1.0)) != 1.0:
            raise ValueError("gap junction weights other than 1 are not written; scale the "
                             "conductance instead")
        cond = float(g["conductance"])
        if cond not in comps:
            comps[cond] = neuroml.GapJunction(id=f"gap{len(comps)}", conductance=_q(cond, "nS"))
            doc.add(comps[cond])
        (a_pop, a_i), (b_pop, b_i) = where[g["a"]], where[g["b"]]
        if (a_pop, b_pop) not in projs:
            projs[(a_pop, b_pop)] = neuroml.ElectricalProjection(
                id=f"eproj{len(projs)}", presynaptic_population=a_pop,
                postsynaptic_population=b_pop)
            net.electrical_projections.append(projs[(a_pop, b_pop)])
        proj = projs[(a_pop, b_pop)]
        proj.electrical_connections.append(neuroml.ElectricalConnection(
            id=len(proj.electrical_connections), pre_cell=str(a_i), post_cell=str(b_i),
            synapse=comps[cond].id))


def write_lems_run(model: NetworkModel, out_dir: Path, duration: float, dt: float) -> Path:
    """Write the model and a LEMS simulation recording every neuron's spikes (event id =
    neuron index)."""
    from pyneuroml.lems import LEMSSimulation

    doc = model.doc
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nml = out_dir / f"{doc.id}.net.nml"
    neuroml.writers.NeuroMLWriter.write(doc, str(nml))
    net = doc.networks[0]
    sim = LEMSSimulation(f"sim_{doc.id}", duration, dt, target=net.id)
    sim.include_neuroml2_file(nml.name, relative_to_dir=str(out_dir))
    sim.create_event_output_file("spikes", "spikes.spikes", format="ID_TIME")
    for i, (pop, index) in enumerate(model.neurons):
        sim.add_selection_to_event_output_file("spikes", i, f"{pop}[{index}]", "spike")
    return Path(sim.save_to_file(str(out_dir / f"LEMS_{doc.id}.xml")))
