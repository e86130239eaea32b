"""The model's configuration, and what a run measures apart from it.

* ``BGANConfig``: the choices a person makes (sizes, mechanisms on or off, heads,
  read-out); ``Backend`` inside it: how the same numbers are computed.
* ``DatasetStats``: what a run measures on its data (feature standardisation,
  ``Compaction`` bounds per mechanism, by name). Not a choice: training measures
  it, saves it as ``stats.json`` beside ``config.json`` and ``load_run`` restores it.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from graphs.schema import EdgeKind

ATTENTION_PATHS = ("sparse", "dense", "auto")
MECHANISMS = ("ganlow", "ganup", "mask_a", "mask_b")  # the attention mechanisms, by name
FEATURE_CLIP = 10.0  # standardised node features are clipped to +-this
COUNTS_KEPT = 64  # per mechanism, the largest single-graph counts ``*_counts`` keep


@dataclasses.dataclass(frozen=True)
class Backend:
    """How the model is computed, not what: every switch gives the same numbers up to
    summation order (docs/performance.md)."""

    pair_chunk: Optional[int] = None
    """Sparse path: do each mechanism's per-pair work this many pairs at a time
    (``attention.chunked_sparse_attention``) when it has more; None = all at once. For
    the forward pass on graphs too large for [P, H, D] pair tensors (a 10^6-node,
    10^7-edge CG). Under ``jax.grad`` each chunk is recomputed (``jax.checkpoint``)."""
    cpu_kernel: bool = True
    """Sparse path on a CPU backend: run each mechanism's attention in the C++ kernel
    (``bgan_jax.bgan.pair_kernel``, built on first use) when it builds; False: XLA's
    ops. GPU/TPU backends, the dense path and ``pair_chunk`` always use XLA's ops."""

    def __post_init__(self):
        if self.pair_chunk is not None and self.pair_chunk < 1:
            raise ValueError("Backend: pair_chunk must be None or >= 1")


@dataclasses.dataclass(frozen=True)
class MechanismBounds:
    """How many of a graph's edge rows and nodes one mechanism can need, measured over
    every graph of a run (``compaction.compaction``). The model then runs the
    mechanism on that many compacted rows and node slots per batch shape; a batch
    needing more gives NaN outputs, never a silent drop (``pair_overflow`` finds one)."""

    pair_fraction: float = 1.0
    """Largest share of a graph's edge rows the mechanism attends over."""
    pair_counts: Tuple[int, ...] = ()
    """Largest allowed-row counts of single graphs, descending (at most ``COUNTS_KEPT``):
    a batch of G graphs holds at most the sum of the first G, a tighter bound than the
    fraction for a bucket of many small, high-share graphs."""
    node_fraction: float = 1.0
    """Largest share of a graph's nodes the mechanism touches (sends, receives or
    attends to itself); the sparse path projects and aggregates only those node
    slots (GANlow: compartments, GANup: neurons). The dense path ignores it."""
    node_counts: Tuple[int, ...] = ()
    """As ``pair_counts``, for touched nodes."""
    shapes: Tuple[Tuple[int, int, int, int], ...] = ()
    """Per padded batch shape of the run: (n_node, n_edge, most allowed rows, most
    touched nodes) any batch of that shape can hold. A run's batches of one shape come
    from one size bucket, whose own largest graphs bound them more tightly than the
    fractions (``train.bucket_capacities``); a shape not listed gets the fractions."""

    def __post_init__(self):
        for name in ("pair", "node"):
            fraction, counts = getattr(self, f"{name}_fraction"), getattr(self, f"{name}_counts")
            if not 0 < fraction <= 1:
                raise ValueError(f"MechanismBounds: {name}_fraction must be in (0, 1], "
                                 f"got {fraction}")
            if len(counts) > COUNTS_KEPT or any(
                    a < b for a, b in zip(counts, counts[1:])) or min(counts, default=0) < 0:
                raise ValueError(f"MechanismBounds: {name}_counts must be at most "
                                 f"{COUNTS_KEPT} descending counts >= 0, got {counts}")
        if not all(len(s) == 4 and min(s) >= 1 for s in self.shapes):
            raise ValueError("MechanismBounds: shapes entries must be (n_node, n_edge, rows, "
                             f"nodes), ints >= 1, got {self.shapes}")


@dataclasses.dataclass(frozen=True)
class Compaction:
    """``MechanismBounds`` of each attention mechanism, by name (``MECHANISMS``). A
    mechanism added later gets the default bounds in a saved ``stats.json``."""

    ganlow: MechanismBounds = MechanismBounds()
    ganup: MechanismBounds = MechanismBounds()
    mask_a: MechanismBounds = MechanismBounds()
    mask_b: MechanismBounds = MechanismBounds()

    def __getitem__(self, mechanism: str) -> MechanismBounds:
        if mechanism not in MECHANISMS:
            raise KeyError(f"no mechanism {mechanism!r}; mechanisms: {MECHANISMS}")
        return getattr(self, mechanism)


@dataclasses.dataclass(frozen=True)
class DatasetStats:
    """What a run measured on its data (not a choice), saved as ``stats.json`` beside
    ``config.json`` and restored with the run, so a saved model reads any CG as it read
    its training graphs."""

    feature_shift: Tuple[float, ...] = ()
    """Per-column shift of the encoded node features (one per schema column; () = none),
    from the train split (``bgan_jax.bgan.data.feature_stats``, physical quantities
    only): parameters that matter can differ by 0.01 in their encoded value
    (Izhikevich ``a``), too little for a model to see unscaled."""
    feature_scale: Tuple[float, ...] = ()
    """Per-column scale (> 0) paired with ``feature_shift``; standardised values are
    clipped to +-``FEATURE_CLIP`` so an unseen parameter value cannot dominate."""
    compaction: Optional[Compaction] = None
    """Per-mechanism bounds (``bgan_jax.compaction``); None: every mechanism runs over
    all E rows and N nodes with a mask (any graph, e.g. a read-out on new cells)."""

    def __post_init__(self):
        if len(self.feature_shift) != len(self.feature_scale) or not all(
                v > 0 for v in self.feature_scale):
            raise ValueError("DatasetStats: feature_shift and feature_scale must have the "
                             "same length and scale > 0")

    def replace(self, **changes) -> "DatasetStats":
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class BGANConfig:
    """Hyper-parameters and switches of BGAN (docs/DESIGN.md section 4)."""

    hidden: int = 64
    """Width d of every node state."""
    heads: int = 4
    """Attention heads per mechanism; BMSA splits them between MaskA and MaskB."""
    num_blocks: int = 3
    """Number L of pre-norm residual blocks (NSA -> BMSA -> MLP). 3: the drive of a
    spike source needs BMSA, BMSA, NSA hops to reach its neuron node."""
    mlp_ratio: int = 2
    """Hidden width of the block MLP, in multiples of ``hidden``."""
    edge_hidden: int = 32
    """Width of the shared edge embedding fed to every attention's keys and values."""
    low_hops: int = 1
    """GANlow rounds: each round attends one axial hop, so k rounds reach k hops."""
    attention: str = "sparse"
    """'sparse' (edge lists, O(E) memory), 'dense' (per-graph M x M masks) or 'auto'
    (training picks the faster of the two per size bucket, ``bgan_jax.bgan.autopath``;
    the model itself then runs the sparse path, the same function)."""
    dense_graph_nodes: Optional[int] = None
    """Dense path block size M (>= nodes of the largest real graph in a batch);
    None puts the whole padded batch in one block (M = padded node count)."""
    nsa: bool = True
    """Neuronal structural attention (GANlow + GANup + top-down gate) on/off."""
    bmsa: bool = True
    """Bidirectional masked self-attention on/off."""
    mask_a: bool = True
    """BMSA forward (signal-flow) heads on/off."""
    mask_b: bool = True
    """BMSA backward (retrograde) heads on/off."""
    plain_attention: bool = False
    """Baseline switch: BMSA heads attend along every edge (MaskA: j -> i, MaskB: its
    transpose) whatever its kind or direction flag, i.e. no biological masks."""
    signal_edge_kinds: Tuple[int, ...] = (int(EdgeKind.AXIAL), int(EdgeKind.SYNAPTIC),
                                          int(EdgeKind.GAP), int(EdgeKind.INPUT))
    """Edge kinds whose forward-flagged edges define signal flow for MaskA/MaskB."""
    num_node_outputs: int = 0
    """Width of the node head (classes or regression targets); 0 = no head."""
    num_edge_outputs: int = 0
    """Width of the edge (synapse) head; 0 = no head."""
    num_graph_outputs: int = 0
    """Width of the graph (CLS) head; 0 = no head."""
    graph_totals: int = 0
    """Width of a sum read-out next to the CLS state for the graph head: log1p of the
    per-graph sums of a learnt non-negative projection of the compartment states
    ([G, graph_totals]). Why: attention averages, so the CLS state cannot count; a cell's
    input resistance or rheobase goes with totals over its membrane (area x density
    summed). 0 = the CLS state alone."""
    reconstruct: bool = False
    """Masked-feature reconstruction head over all node feature columns (for
    self-supervised pre-training; ``losses.reconstruction_loss``)."""
    dropout: float = 0.0
    """Dropout on attention outputs and MLP during training (``train=True``)."""
    log_densities: bool = False
    """Give the model channel densities as log10(density) instead of the schema's
    log1p encoding (``bgan_jax.bgan.inputs``): a doubling is then the same input step
    for every channel, whatever its size (leak at 0.01 mS/cm^2 as Na at 50). Applied
    before ``DatasetStats``' standardisation, which is measured on the same inputs."""
    backend: Backend = Backend()
    """How the model is computed (the same numbers whatever it says)."""

    def __post_init__(self):
        checks = [
            (self.attention in ATTENTION_PATHS,
             f"attention must be one of {ATTENTION_PATHS}, got {self.attention!r}"),
            (self.hidden > 0 and self.heads > 0 and self.hidden % self.heads == 0,
             f"hidden ({self.hidden}) must be a positive multiple of heads ({self.heads})"),
            (not (self.bmsa and self.mask_a and self.mask_b) or self.heads >= 2,
             "BMSA with both masks needs heads >= 2 (heads are split between them)"),
            (self.num_blocks >= 1, "num_blocks must be >= 1"),
            (self.low_hops >= 1, "low_hops must be >= 1"),
            (self.mlp_ratio >= 1 and self.edge_hidden >= 1, "mlp_ratio and edge_hidden must be >= 1"),
            (self.graph_totals >= 0, "graph_totals must be >= 0"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (self.dense_graph_nodes is None or self.dense_graph_nodes >= 1,
             "dense_graph_nodes must be None or >= 1"),
            (all(k in {int(e) for e in EdgeKind} for k in self.signal_edge_kinds),
             f"signal_edge_kinds must be EdgeKind values, got {self.signal_edge_kinds}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"BGANConfig: {message}")

    def replace(self, **changes) -> "BGANConfig":
        return dataclasses.replace(self, **changes)


PRESETS = {
    "default": BGANConfig(),
    "tiny": BGANConfig(hidden=16, heads=2, num_blocks=1),  # the tests' model; smoke runs
}
"""Named model configs; ``preset(name, **changes)`` builds on one."""


def preset(name: str, **changes) -> BGANConfig:
    """The model config ``PRESETS[name]`` with ``changes`` (e.g. the output heads)."""
    if name not in PRESETS:
        raise ValueError(f"no preset {name!r}; presets: {sorted(PRESETS)}")
    return PRESETS[name].replace(**changes)
