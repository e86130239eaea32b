"""TAVRNN: temporal attention-augmented variational graph RNN over spike recordings.

spikes (spike trains -> window graphs) -> model (TAVRNN / VGRNN / VGAE) ->
train (held-out links, the run, metrics) -> report (analyze.py figures).
"""
