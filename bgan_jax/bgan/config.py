"""The model's configuration: one typed, frozen dataclass with documented defaults."""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from graphs.schema import EdgeKind

ATTENTION_PATHS = ("sparse", "dense", "auto")
MECHANISMS = ("ganlow", "ganup", "mask_a", "mask_b")  # the order of ``*_fractions``
FEATURE_CLIP = 10.0  # standardised node features are clipped to +-this
COUNTS_KEPT = 64  # per mechanism, the largest single-graph counts ``*_counts`` keep


@dataclasses.dataclass(frozen=True)
class BGANConfig:
    """Hyper-parameters and switches of BGAN (docs/DESIGN.md section 4)."""

    hidden: int = 128
    """Width d of every node state."""
    heads: int = 4
    """Attention heads per mechanism; BMSA splits them between MaskA and MaskB."""
    num_blocks: int = 4
    """Number L of pre-norm residual blocks (NSA -> BMSA -> MLP)."""
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
    reconstruct: bool = True
    """Masked-feature reconstruction head over all node feature columns."""
    dropout: float = 0.0
    """Dropout on attention outputs and MLP during training (``train=True``)."""
    feature_shift: Tuple[float, ...] = ()
    """Per-column shift of the encoded node features (one per schema column; () = none).
    Training fills it and ``feature_scale`` from the train split
    (``bgan_jax.bgan.data.feature_stats``, physical quantities only): parameters that
    matter can differ by 0.01 in their encoded value (Izhikevich ``a``), too little
    for a model to see unscaled. Kept in the config, so a saved run standardises any
    CG it is given the same way."""
    feature_scale: Tuple[float, ...] = ()
    """Per-column scale (> 0) paired with ``feature_shift``; standardised values are
    clipped to +-``FEATURE_CLIP`` so an unseen parameter value cannot dominate."""
    log_densities: bool = False
    """Give the model channel densities as log10(density) instead of the schema's
    log1p encoding (``bgan_jax.bgan.inputs``): a doubling is then the same input step
    for every channel, whatever its size (leak at 0.01 mS/cm^2 as Na at 50). Applied
    before ``feature_shift`` / ``feature_scale``, which are measured on the same inputs."""
    pair_fractions: Tuple[float, ...] = ()
    """Largest share of a graph's edge rows each mechanism attends over (one per
    ``MECHANISMS``; () = every mechanism runs over all E rows with a mask). With it set,
    each mechanism runs on ceil(fraction * E) compacted rows only (or fewer, by
    ``pair_counts``), the same for every batch of a bucket. ``bgan_jax.compaction``
    measures it and the three fields below; training sets them from the dataset. A
    batch with more allowed rows gives NaN outputs, never a silent drop
    (``bgan_jax.pair_overflow`` finds such batches)."""
    pair_counts: Tuple[Tuple[int, ...], ...] = ()
    """Per mechanism, the largest allowed-row counts of single graphs, descending (at
    most ``COUNTS_KEPT``): a batch of G graphs holds at most the sum of the first G,
    which bounds a bucket of many small, high-share graphs more tightly than the
    fraction does. () = the fraction alone."""
    node_fractions: Tuple[float, ...] = ()
    """Largest share of a graph's nodes each mechanism touches (sends, receives or
    attends to itself; () = all N nodes). With it set, the sparse path projects and
    aggregates only ceil(fraction * N) node slots per mechanism (or fewer, by
    ``node_counts``; GANlow: compartments, GANup: neurons); overflow gives NaN as for
    ``pair_fractions``. The dense path ignores it."""
    node_counts: Tuple[Tuple[int, ...], ...] = ()
    """As ``pair_counts``, for touched nodes."""
    shape_capacities: Tuple[Tuple[int, ...], ...] = ()
    """Per padded batch shape a run's batches take: (n_node, n_edge, then the most allowed
    rows and the most touched nodes of each mechanism any batch of that shape can hold),
    2 + 2 * len(MECHANISMS) ints. The fractions and counts above bound a batch of any
    graphs; a run's batches of one shape come from one size bucket, whose own largest
    graphs bound them more tightly (25-40 % fewer rows on the default dataset's buckets).
    Used with the fields above, never instead; a batch shape not listed gets those alone.
    ``bgan_jax.bgan.train.with_compaction`` measures it for a run's buckets."""
    pair_chunk: Optional[int] = None
    """Sparse path: do each mechanism's per-pair work this many pairs at a time
    (``attention.chunked_sparse_attention``) when it has more; None = all at once. For
    the forward pass on graphs too large for [P, H, D] pair tensors (a 10^6-node,
    10^7-edge CG); same numbers up to summation order. Under ``jax.grad`` each chunk is
    recomputed (``jax.checkpoint``): no pair tensor is kept per chunk, for less memory
    and some more time than unchunked (docs/performance.md)."""
    cpu_kernel: bool = True
    """Sparse path on a CPU backend: run each mechanism's attention in the C++ kernel
    (``bgan_jax.bgan.pair_kernel``, built on first use; faster than XLA's ops there,
    docs/performance.md; same numbers up to summation order) when it builds; False:
    XLA's ops.
    GPU/TPU backends, the dense path and ``pair_chunk`` always use XLA's ops."""

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
            (self.pair_chunk is None or self.pair_chunk >= 1, "pair_chunk must be None or >= 1"),
            (len(self.feature_shift) == len(self.feature_scale)
             and all(v > 0 for v in self.feature_scale),
             "feature_shift and feature_scale must have the same length and scale > 0"),
            *((not fr or (len(fr) == len(MECHANISMS) and all(0 < f <= 1 for f in fr)),
               f"{name} must be () or {len(MECHANISMS)} values in (0, 1] "
               f"(order {MECHANISMS}), got {fr}")
              for name, fr in (("pair_fractions", self.pair_fractions),
                               ("node_fractions", self.node_fractions))),
            *((not c or (len(c) == len(MECHANISMS) and all(
                len(m) <= COUNTS_KEPT and all(a >= b >= 0 for a, b in zip(m, m[1:] + (0,)))
                for m in c)),
               f"{name} must be () or {len(MECHANISMS)} descending lists of at most "
               f"{COUNTS_KEPT} counts >= 0, got {c}")
              for name, c in (("pair_counts", self.pair_counts),
                              ("node_counts", self.node_counts))),
            (all(len(c) == 2 + 2 * len(MECHANISMS) and min(c) >= 1
                 for c in self.shape_capacities),
             f"shape_capacities entries must be (n_node, n_edge, {len(MECHANISMS)} row and "
             f"{len(MECHANISMS)} node capacities), ints >= 1"),
            (all(k in {int(e) for e in EdgeKind} for k in self.signal_edge_kinds),
             f"signal_edge_kinds must be EdgeKind values, got {self.signal_edge_kinds}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"BGANConfig: {message}")

    def replace(self, **changes) -> "BGANConfig":
        return dataclasses.replace(self, **changes)
