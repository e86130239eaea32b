"""BGAN: the bio-inspired graph attention network over NeuroML computational graphs.

config (BGANConfig) -> masks (who may attend to whom, from edge kinds) ->
attention (sparse and dense) -> model (NSA, BMSA, blocks, heads) -> losses;
data (labelled CG datasets, size buckets), train (TrainConfig, pure steps,
the run), analysis + report (attention, attribution, figures).
"""
