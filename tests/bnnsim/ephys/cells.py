"""Small NeuroML cells written for the tests: one that never fires, one that fires
with no input, one whose channel jNeuroML cannot export, one whose fastest gate
diverges under the export's forward Euler step."""

from pathlib import Path

from tests.conftest import nml

_HH_CHANNELS = """
<ionChannelHH id="passiveChan" conductance="10pS"/>
<ionChannelHH id="naChan" conductance="10pS" species="na">
  <gateHHrates id="m" instances="3">
    <forwardRate type="HHExpLinearRate" rate="1per_ms" midpoint="-40mV" scale="10mV"/>
    <reverseRate type="HHExpRate" rate="4per_ms" midpoint="-65mV" scale="-18mV"/>
  </gateHHrates>
  <gateHHrates id="h" instances="1">
    <forwardRate type="HHExpRate" rate="0.07per_ms" midpoint="-65mV" scale="-20mV"/>
    <reverseRate type="HHSigmoidRate" rate="1per_ms" midpoint="-35mV" scale="10mV"/>
  </gateHHrates>
</ionChannelHH>
<ionChannelHH id="kChan" conductance="10pS" species="k">
  <gateHHrates id="n" instances="4">
    <forwardRate type="HHExpLinearRate" rate="0.1per_ms" midpoint="-55mV" scale="10mV"/>
    <reverseRate type="HHExpRate" rate="0.125per_ms" midpoint="-65mV" scale="-80mV"/>
  </gateHHrates>
</ionChannelHH>
"""
_ODD_CHANNEL = """
<ionChannelHH id="oddChan" conductance="10pS" species="na">
  <gateHHrates id="m" instances="3">
    <forwardRate type="noSuchRateType" rate="1per_ms" midpoint="-40mV" scale="10mV"/>
    <reverseRate type="HHExpRate" rate="4per_ms" midpoint="-65mV" scale="-18mV"/>
  </gateHHrates>
</ionChannelHH>
"""
# the Golgi cell's sodium inactivation (Solinas et al. 2007) 2 mV more negative: tau
# is under 0.0125 ms (dt / 2) below about -68 mV, and about 2 us at -76 mV, where a
# 0.025 ms forward Euler step multiplies an error by about 12
_STIFF_CHANNEL = """
<ionChannelHH id="stiffChan" conductance="10pS">
  <gateHHrates id="h" instances="1">
    <forwardRate type="HHExpRate" rate="0.21per_ms" midpoint="-48mV" scale="-3.333mV"/>
    <reverseRate type="HHSigmoidRate" rate="3per_ms" midpoint="-17mV" scale="5mV"/>
  </gateHHrates>
</ionChannelHH>
"""


def _cell(cell_id: str, densities: str) -> str:
    return f"""
<cell id="{cell_id}">
  <morphology id="m_{cell_id}">
    <segment id="0" name="soma">
      <proximal x="0" y="0" z="0" diameter="17.841242"/>
      <distal x="0" y="0" z="0" diameter="17.841242"/>
    </segment>
    <segmentGroup id="soma_group"><member segment="0"/></segmentGroup>
  </morphology>
  <biophysicalProperties id="bp_{cell_id}">
    <membraneProperties>
      {densities}
      <specificCapacitance value="1.0 uF_per_cm2"/>
      <initMembPotential value="-65mV"/>
    </membraneProperties>
    <intracellularProperties><resistivity value="0.03 kohm_cm"/></intracellularProperties>
  </biophysicalProperties>
</cell>"""


LEAK = '<channelDensity id="leak" ionChannel="passiveChan" condDensity="3.0 S_per_m2" erev="{e}" ion="non_specific"/>'
HH = ('<channelDensity id="na" ionChannel="naChan" condDensity="120.0 mS_per_cm2" erev="50.0 mV" ion="na"/>'
      '<channelDensity id="k" ionChannel="kChan" condDensity="360 S_per_m2" erev="-77mV" ion="k"/>')
STIFF = '<channelDensity id="stiff" ionChannel="stiffChan" condDensity="10 S_per_m2" erev="-65mV" ion="non_specific"/>'
ODD = '<channelDensity id="odd" ionChannel="oddChan" condDensity="120.0 mS_per_cm2" erev="50.0 mV" ion="na"/>'

CELLS = {
    # a leak and nothing else: never fires
    "passive": _cell("passivecell", LEAK.format(e="-65mV")),
    # squid HH with the leak reversal 30 mV up (about 9 uA/cm2 of bias): fires at rest
    "pacemaker": _cell("pacemakercell", LEAK.format(e="-24.3mV") + HH),
    # squid HH and a gate whose forward Euler step diverges below about -75 mV (the sag
    # step); stable with the gate integrated exactly (nrn.exponential_gates)
    "stiff": _STIFF_CHANNEL + _cell("stiffcell", LEAK.format(e="-65mV") + HH + STIFF),
    # a gate rate of a type no one defined: jNeuroML cannot export it
    "unexportable": _ODD_CHANNEL + _cell("oddcell", LEAK.format(e="-65mV") + ODD),
}


def write_cells(folder: Path) -> dict:
    """{name: path} of the fixture cells, one file each, channels in the file."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, body in CELLS.items():
        path = folder / f"{name}.cell.nml"
        path.write_text(nml(_HH_CHANNELS + body, name))
        out[name] = path
    return out
