"""Training and evaluation of TAVRNN (and its VGRNN / VGAE baselines) on one recording.

One recording -> window graphs (``bgan_jax.tavrnn.spikes``) -> held-out links -> full-BPTT
training (one ``lax.scan`` over all windows per step, Adam) -> evaluation:

* link reconstruction AUC: per window, a fraction ``holdout`` of the observed
  links and as many non-links are hidden from the input graphs and the loss;
  they are scored with sigmoid(mu_i . mu_j);
* communities: KMeans on every neuron's embedding averaged over windows, ARI
  and NMI against the true communities (when the data has them);
* regime: each window is summarised by its decoded connectivity between the
  clusters found above (mean sigmoid(mu_i . mu_j) for i, j in two different
  clusters: a population-level, rotation-invariant readout); a logistic
  regression on it is trained on the windows of half of each regime's segments
  and tested on the other half (windows straddling two segments are left out).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bgan_jax.runs import distributed
from bgan_jax.runs.checkpoints import Checkpoints
from bgan_jax.runs.config import LoopConfig
from bgan_jax.runs.loop import open_run, train_loop
from bgan_jax.runs.metrics import auroc
from bgan_jax.runs.workdir import read_config, read_data_path
from bgan_jax.tavrnn.model import TAVRNNConfig, create_tavrnn, edge_probabilities, loss_terms
from bgan_jax.tavrnn.spikes import (DynamicGraphs, SpikeDataError, SpikeTrains, WindowConfig,
                                    functional_windows, read_spikes, stack_graphs,
                                    window_graphs)

KIND = "tavrnn"


@dataclasses.dataclass(frozen=True)
class TemporalConfig(LoopConfig):
    """A TAVRNN run; saved as ``config.json``. Defaults as in the paper where it says.
    Each of the ``num_steps`` (400) steps is one gradient step over the whole recording
    (full BPTT). There is no validation split (``eval_every`` is unused): the run is
    scored once, at its end, on the held-out links and the ground truth."""

    model: TAVRNNConfig = TAVRNNConfig()
    windows: WindowConfig = WindowConfig()
    """Binning, windows and the functional-graph rule (see bgan_jax.tavrnn.spikes)."""
    holdout: float = 0.1
    """Fraction of each window's links (and as many non-links) hidden for the AUC."""
    learning_rate: float = 1e-2
    grad_clip: float = 10.0
    num_steps: int = 400

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")


class Truth(NamedTuple):
    """Ground truth of a simulated recording (any field may be None)."""

    community: Optional[np.ndarray]  # [N] int
    segment_regime: Optional[np.ndarray]  # [S] int, regime of each segment
    segment_ms: Optional[float]
    regimes: tuple  # regime names


NO_TRUTH = Truth(None, None, None, ())


def load_recording(path) -> tuple:
    """(SpikeTrains, Truth) from a spike file; an ``.npz`` may also carry ``community``,
    ``segment_regime``, ``segment_ms`` and ``regimes`` (as bnnsim.population writes)."""
    trains = read_spikes(path)
    if Path(path).suffix.lower() != ".npz":
        return trains, NO_TRUTH
    with np.load(path, allow_pickle=False) as z:
        def get(k):
            return z[k] if k in z.files else None

        seg_ms = get("segment_ms")
        truth = Truth(get("community"), get("segment_regime"),
                      None if seg_ms is None else float(seg_ms),
                      tuple(str(r) for r in get("regimes")) if "regimes" in z.files else ())
    if truth.community is not None and truth.community.shape != (trains.n_neurons,):
        raise SpikeDataError(path, f"community has shape {truth.community.shape}, expected "
                             f"({trains.n_neurons},)")
    return trains, truth


def window_regimes(starts: np.ndarray, window_ms: float, truth: Truth) -> np.ndarray:
    """[T] regime label of each window; -1 where it straddles two segments or is unknown."""
    if truth.segment_regime is None or truth.segment_ms is None:
        return np.full(starts.shape, -1)
    first = (starts // truth.segment_ms).astype(int)
    last = ((starts + window_ms - 1e-6) // truth.segment_ms).astype(int)
    inside = (first == last) & (last < len(truth.segment_regime))
    return np.where(inside, truth.segment_regime[np.minimum(first, len(truth.segment_regime) - 1)],
                    -1)


class Prepared(NamedTuple):
    """Everything training and evaluation need, as arrays."""

    data: DynamicGraphs
    graphs: Any  # stacked GraphsTuple, leading [T]
    adjacency: np.ndarray  # [T, N, N] float32 observed links
    loss_mask: np.ndarray  # [T, N, N] float32, 0 on held-out pairs
    test_pairs: np.ndarray  # [K, 3] int (window, i, j) held out
    test_labels: np.ndarray  # [K] 1 = link, 0 = non-link


def holdout_pairs(adjacency: np.ndarray, fraction: float, rng) -> tuple:
    """Per window, ``fraction`` of the links and as many non-links (i < j): (pairs [K, 3],
    labels [K], hide [T, N, N] bool symmetric: the held-out links and non-links)."""
    t_len, n, _ = adjacency.shape
    iu, ju = np.triu_indices(n, 1)
    pairs, labels = [], []
    hide = np.zeros(adjacency.shape, bool)
    for t in range(t_len):
        upper = adjacency[t][iu, ju]
        pos, neg = np.flatnonzero(upper), np.flatnonzero(~upper)
        k = min(int(round(fraction * pos.size)), neg.size)
        for idx, label in ((rng.choice(pos, k, replace=False), 1),
                           (rng.choice(neg, k, replace=False), 0)):
            pairs.append(np.stack([np.full(k, t), iu[idx], ju[idx]], 1))
            labels.append(np.full(k, label))
            hide[t, iu[idx], ju[idx]] = hide[t, ju[idx], iu[idx]] = True
    return (np.concatenate(pairs).astype(np.int64) if pairs else np.zeros((0, 3), np.int64),
            np.concatenate(labels) if labels else np.zeros(0, int), hide)


def prepare(trains: SpikeTrains, config: TemporalConfig) -> Prepared:
    windows = functional_windows(trains, config.windows)
    rng = np.random.default_rng(config.seed)
    pairs, labels, hide = holdout_pairs(windows.adjacency, config.holdout, rng)
    data = window_graphs(windows, hide=hide)
    return Prepared(data, stack_graphs(data.graphs), data.adjacency.astype(np.float32),
                    (~hide).astype(np.float32), pairs, labels)


def make_train_step(model, optimizer):
    """Pure jitted step: ELBO of the whole recording, Adam update."""

    @jax.jit
    def step(params, opt_state, graphs, adjacency, mask, key):
        def loss_fn(p):
            recon, kl = loss_terms(model.apply(p, graphs, key), adjacency, mask)
            return recon + kl, (recon, kl)

        (loss, (recon, kl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))  # read by runs.loop
        return optax.apply_updates(params, updates), opt_state, dict(
            loss=loss, recon=recon, kl=kl, finite=finite)

    return step


def embed(model, params, graphs):
    """Posterior means (no sampling): StepOutputs with a leading [T] axis, as numpy."""
    return jax.tree.map(np.asarray, jax.jit(model.apply)(params, graphs))


def link_auc(mu: np.ndarray, pairs: np.ndarray, labels: np.ndarray) -> float:
    """AUC of the held-out links against the held-out non-links, scored mu_i . mu_j."""
    scores = np.einsum("kl,kl->k", mu[pairs[:, 0], pairs[:, 1]], mu[pairs[:, 0], pairs[:, 2]])
    return auroc(scores, labels == 1)


def cluster_count(truth: Truth, n_neurons: int) -> int:
    """Clusters to look for: the true number of communities when known, else 3."""
    k = len(np.unique(truth.community)) if truth.community is not None else 3
    return min(k, n_neurons)


def clusters(mu: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """[N] KMeans labels of the time-averaged embeddings [T, N, L]."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(mu.mean(axis=0))


def community_scores(found: np.ndarray, community: np.ndarray) -> Dict[str, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return dict(ari=float(adjusted_rand_score(community, found)),
                nmi=float(normalized_mutual_info_score(community, found)))


def cluster_connectivity(mu: np.ndarray, found: np.ndarray) -> np.ndarray:
    """[T, k(k-1)/2] mean decoded link probability between each pair of clusters."""
    k = int(found.max()) + 1
    onehot = np.eye(k)[found]  # [N, k]
    prob = np.asarray(edge_probabilities(mu))  # [T, N, N]
    blocks = np.einsum("nk,tnm,mj->tkj", onehot, prob, onehot)
    blocks /= np.maximum(np.outer(onehot.sum(0), onehot.sum(0)), 1.0)
    a, b = np.triu_indices(k, 1)
    return blocks[:, a, b]


def regime_split(starts: np.ndarray, labels: np.ndarray, truth: Truth) -> np.ndarray:
    """[T] bool: True = train window. Each regime's segments alternate train, test, ..."""
    seg = (starts // truth.segment_ms).astype(int)
    train_segments = set()
    for r in np.unique(truth.segment_regime):
        train_segments.update(np.flatnonzero(truth.segment_regime == r)[::2].tolist())
    return np.array([s in train_segments for s in seg]) & (labels >= 0)


def regime_accuracy(features: np.ndarray, labels: np.ndarray, train: np.ndarray) -> float:
    """Logistic regression on standardised window features [T, D]; test accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    test = ~train & (labels >= 0)
    if len(np.unique(labels[train])) < 2 or not test.any():
        return float("nan")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(features[train], labels[train])
    return float(np.mean(clf.predict(features[test]) == labels[test]))


def evaluate(mu: np.ndarray, prep: Prepared, truth: Truth, seed: int = 0,
             found: Optional[np.ndarray] = None) -> Dict[str, float]:
    """All metrics the data allows (NaN-free keys only); ``found``: the clusters if
    already computed (``clusters(mu, cluster_count(truth, N), seed)``)."""
    out = {"link_auc": link_auc(mu, prep.test_pairs, prep.test_labels)}
    if found is None:
        found = clusters(mu, cluster_count(truth, mu.shape[1]), seed)
    if truth.community is not None:
        out.update(community_scores(found, truth.community))
    if truth.segment_regime is not None and found.max() > 0:
        labels = window_regimes(prep.data.starts, prep.data.config.window_ms, truth)
        out["regime_accuracy"] = regime_accuracy(cluster_connectivity(mu, found), labels,
                                                 regime_split(prep.data.starts, labels, truth))
    return {name: v for name, v in out.items() if np.isfinite(v)}


def make_optimizer(config: TemporalConfig) -> optax.GradientTransformation:
    """Adam (the paper's optimiser) after global-norm clipping."""
    return optax.chain(optax.clip_by_global_norm(config.grad_clip),
                       optax.adam(config.learning_rate))


def init_params(model, graphs, seed: int):
    return model.init(jax.random.key(seed), jax.tree.map(jnp.asarray, graphs))


def train_temporal(config: TemporalConfig, recording, workdir, resume: bool = False,
                   progress: bool = True) -> Dict:
    """Train on a recording (path to a spike file), evaluate, save; returns eval.json's
    content. Writes config.json, data.json, metrics.jsonl, checkpoints/, embeddings.npz."""
    distributed.require_single_process("TAVRNN (one recording per step)")
    workdir = Path(workdir)
    trains, truth = load_recording(recording)
    prep = prepare(trains, config)
    model = create_tavrnn(config.model, trains.n_neurons)
    graphs = jax.tree.map(jnp.asarray, prep.graphs)
    adjacency, mask = jnp.asarray(prep.adjacency), jnp.asarray(prep.loss_mask)
    optimizer = make_optimizer(config)
    params = init_params(model, graphs, config.seed)
    state = {"params": params, "opt_state": optimizer.init(params)}
    ckpts = Checkpoints(workdir, config.keep_checkpoints)
    start, state = open_run(workdir, KIND, config, recording, ckpts, state, resume)

    jitted = make_train_step(model, optimizer)
    key = jax.random.fold_in(jax.random.key(config.seed), 1)

    def step_fn(state, step):  # step: the 0-based index of the step to run
        params, opt_state, stats = jitted(state["params"], state["opt_state"], graphs,
                                          adjacency, mask, jax.random.fold_in(key, step))
        return {"params": params, "opt_state": opt_state}, stats

    result = train_loop(state, step_fn, itertools.count(start), config=config, start=start,
                        checkpoints=ckpts, savable=lambda s: s,
                        metrics_path=workdir / "metrics.jsonl", progress=progress,
                        desc=config.model.variant)
    out = embed(model, result.state["params"], graphs)
    table = dict(evaluate(out.mu, prep, truth, config.seed), variant=config.model.variant,
                 windows=int(prep.data.starts.size), neurons=trains.n_neurons,
                 steps=config.num_steps)
    np.savez_compressed(workdir / "embeddings.npz", mu=out.mu, attention=out.attention,
                        starts=prep.data.starts, adjacency=prep.data.adjacency,
                        regime=window_regimes(prep.data.starts, config.windows.window_ms, truth),
                        community=truth.community if truth.community is not None
                        else np.full(trains.n_neurons, -1))
    (workdir / "eval.json").write_text(json.dumps(table, indent=1))
    return table


class TemporalRun(NamedTuple):
    """A trained TAVRNN-family run loaded back."""

    config: TemporalConfig
    params: Any
    step: int
    recording: Optional[Path]  # the spike file it trained on


def load_temporal_run(workdir, n_neurons: int, graphs) -> TemporalRun:
    """Latest checkpoint of a TAVRNN workdir; ``graphs`` (stacked, any recording of
    ``n_neurons`` neurons and the run's window settings) fixes the parameter shapes."""
    config = read_config(workdir, TemporalConfig)
    model = create_tavrnn(config.model, n_neurons)
    params = init_params(model, graphs, config.seed)
    like = {"params": params, "opt_state": make_optimizer(config).init(params)}
    step, state = Checkpoints(workdir, config.keep_checkpoints).restore_latest(like)
    return TemporalRun(config, state["params"], int(step),
                       read_data_path(workdir, must_exist=False))


def format_table(table: Dict) -> str:
    keys = [k for k in ("link_auc", "ari", "nmi", "regime_accuracy") if k in table]
    return "\n".join(f"{k:16s} {table[k]:.3f}" for k in keys)
