"""Hand-checkable NeuroML2 models with exactly known graphs."""

# Soma: a sphere of diameter 10 um. Dendrite: two 100 um segments along +x,
# diameter 2 um, unbranched. Na only in the soma, leak everywhere.
BALL_AND_STICK = """
  <cell id="bs">
    <morphology id="bs_morph">
      <segment id="0" name="soma">
        <proximal x="0" y="0" z="0" diameter="10"/>
        <distal x="0" y="0" z="0" diameter="10"/>
      </segment>
      <segment id="1" name="dend1">
        <parent segment="0"/>
        <proximal x="5" y="0" z="0" diameter="2"/>
        <distal x="105" y="0" z="0" diameter="2"/>
      </segment>
      <segment id="2" name="dend2">
        <parent segment="1"/>
        <distal x="205" y="0" z="0" diameter="2"/>
      </segment>
      <segmentGroup id="soma_group" neuroLexId="GO:0043025"><member segment="0"/></segmentGroup>
      <segmentGroup id="dendrite_group" neuroLexId="GO:0030425">
        <member segment="1"/><member segment="2"/>
      </segmentGroup>
    </morphology>
    <biophysicalProperties id="bs_bio">
      <membraneProperties>
        <channelDensity id="leak" ionChannel="pas" condDensity="0.3 mS_per_cm2" erev="-54.3mV" ion="non_specific"/>
        <channelDensity id="na_soma" ionChannel="na" condDensity="120 mS_per_cm2" erev="50mV" segmentGroup="soma_group" ion="na"/>
        <spikeThresh value="-20mV"/>
        <specificCapacitance value="1.0 uF_per_cm2"/>
        <initMembPotential value="-65mV"/>
      </membraneProperties>
      <intracellularProperties>
        <resistivity value="0.1 kohm_cm"/>
      </intracellularProperties>
    </biophysicalProperties>
  </cell>
"""

IAF = '<iafCell id="iaf" leakReversal="-65mV" thresh="-50mV" reset="-70mV" C="1nF" leakConductance="10nS"/>'
IZH = ('<izhikevich2007Cell id="izh" v0="-60mV" C="100pF" k="0.7nS_per_mV" vr="-60mV" '
       'vt="-40mV" vpeak="35mV" a="0.03per_ms" b="-2nS" c="-50mV" d="100pA"/>')
SYN = '<expTwoSynapse id="ampa" gbase="0.5nS" erev="0mV" tauRise="0.5ms" tauDecay="5ms"/>'
PULSE = '<pulseGenerator id="pg" delay="10ms" duration="200ms" amplitude="0.5nA"/>'
POP_A = '<population id="A" component="iaf" size="3"/>'
POP_B = '<population id="B" component="izh" size="2"/>'
CONNS = [
    '<connection id="0" preCellId="../A/0/iaf" postCellId="../B/0/izh"/>',
    '<connection id="1" preCellId="../A/1/iaf" postCellId="../B/0/izh"/>',
    '<connection id="2" preCellId="../A/2/iaf" postCellId="../B/1/izh"/>',
]
CONN_WD = ('<connectionWD id="3" preCellId="../A/0/iaf" postCellId="../B/1/izh" '
           'weight="2.0" delay="5ms"/>')
INPUT = '<explicitInput target="A[0]" input="pg"/>'


def two_population_network(order=(0, 1, 2, 3), swap=False) -> str:
    """3 iaf -> 2 izh, 4 connections (one with weight 2, delay 5 ms), one pulse input.

    ``order`` permutes the connections and ``swap`` reverses element order, to
    show that XML order does not change the graph.
    """
    conns = [(CONNS + [CONN_WD])[i] for i in order]
    proj = '<projection id="AtoB" presynapticPopulation="A" postsynapticPopulation="B" synapse="ampa">\n' + "\n".join(conns) + "\n</projection>"
    pops = [POP_B, POP_A] if swap else [POP_A, POP_B]
    defs = [PULSE, SYN, IZH, IAF] if swap else [IAF, IZH, SYN, PULSE]
    net = ['<network id="net">', *pops, proj, INPUT, "</network>"]
    if swap:
        net = ['<network id="net">', INPUT, proj, *pops, "</network>"]
    return "\n".join(defs + net)
