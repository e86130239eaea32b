"""Read an SNN run out (``analyze.py`` on an snn workdir): accuracy and spikes per split,
firing of each spiking layer, the test confusion matrix; CSV, one figure, report.md.

Computed from the best checkpoint, never from training-time files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from bgan_jax.snn.train import EVAL_KEYS, digits, evaluate, load_snn_run, make_eval


def layer_rates(model, params, x: np.ndarray, key) -> Dict[str, float]:
    """Mean spikes per neuron per sample and step, per spiking layer (conv, then dense)."""
    _, rec = jax.jit(model.apply)(params, x, key)
    names = [f"conv{i}" for i in range(len(rec.conv))] + [f"dense{i}" for i in range(len(rec.post))]
    return {n: float(jnp.mean(o)) for n, o in zip(names, tuple(rec.conv) + tuple(rec.post))}


def analyze_snn(workdir, out) -> Dict:
    workdir, out = Path(workdir), Path(out)
    config, model, params, step = load_snn_run(workdir)
    data = digits(config.seed)
    key = jax.random.key(config.seed)
    run = make_eval(model)
    splits = {name: evaluate(run, params, split, jax.random.fold_in(key, EVAL_KEYS[name]))
              for name, split in data.items()}
    test = data["test"]
    logits, _ = jax.jit(model.apply)(params, test.x, jax.random.fold_in(key, 10 ** 9 + 2))
    pred = np.asarray(jnp.argmax(logits, -1))
    k = config.model.num_classes
    confusion = np.zeros((k, k), int)
    np.add.at(confusion, (test.y, pred), 1)
    rates = layer_rates(model, params, test.x, jax.random.fold_in(key, 10 ** 9 + 3))
    out.mkdir(parents=True, exist_ok=True)
    with (out / "confusion.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["true \\ predicted"] + list(range(k)))
        for i in range(k):
            w.writerow([i] + confusion[i].tolist())
    _figure(out / "figures" / "confusion.png", confusion)
    summary = {"workdir": str(workdir), "step": step, "spike_scaling": config.spike_scaling,
               "splits": splits, "layer_rates": rates, "figures": ["confusion.png"]}
    (out / "analysis.json").write_text(json.dumps(summary, indent=1))
    lines = ["# SNN analysis", "", f"Run `{workdir}`, best checkpoint at step {step}, "
             f"spike-timing gradient scaling {'on' if config.spike_scaling else 'off'}.", "",
             "| split | accuracy | spikes per sample |", "|---|---|---|"]
    lines += [f"| {n} | {m['accuracy']:.3f} | {m['spikes_per_sample']:.1f} |"
              for n, m in splits.items()]
    lines += ["", "Mean spikes per neuron per step (test digits): " + ", ".join(
        f"{n} {v:.3f}" for n, v in rates.items()) + ".", "",
        "![test confusion matrix](figures/confusion.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    return summary


def _figure(path: Path, confusion: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    im = ax.imshow(confusion, cmap="Blues")
    for (i, j), v in np.ndenumerate(confusion):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > confusion.max() / 2 else "black")
    ax.set(xlabel="predicted digit", ylabel="true digit", title="test digits",
           xticks=range(len(confusion)), yticks=range(len(confusion)))
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
