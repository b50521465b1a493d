"""Plots and figures of a trained model: curves, confusion matrix, spike rasters, firing rates, accuracy vs steps.

``python -m train.report --model DIR --data DIR [--run RUN] [--out runs/report]`` writes PNG files and
``report.json`` into ``--out`` (never into the model directory):

* ``curves.png``: training loss and train/test accuracy per epoch, float then quantization-aware (from
  ``RUN/metrics.json``, when ``--run`` is given);
* ``confusion.png``: confusion matrix of the bit-true (golden model) predictions on the test split;
* ``raster.png``: spike raster of every spiking layer for one test sample;
* ``firing.png``: mean firing rate per layer (spikes per neuron per step) over the test split;
* ``steps.png``: bit-true accuracy against the number of time steps ``T`` (the model re-run with other ``T``).

Every figure is computed by the golden model; ``report.json`` holds the same numbers.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from golden.cli import run_main

from .util import atomic_write_bytes, atomic_write_json

__all__ = ["make_report", "compare_runs", "main"]


def _save(fig, path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def _curves(history, path, plt):
    ep = np.arange(1, len(history) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(ep, [h["loss"] for h in history], label="training loss")
    a.set_yscale("log")
    b.plot(ep, [100 * h["train_acc"] for h in history], label="train (augmented)")
    if any(h.get("val_acc") is not None for h in history):
        b.plot(ep, [100 * h["val_acc"] if h.get("val_acc") is not None else np.nan for h in history],
               label="validation speaker")
    b.plot(ep, [100 * h["test_acc"] for h in history], label="test")
    qat = [i + 1 for i, h in enumerate(history) if h["phase"] == "qat"]
    for ax in (a, b):
        if qat:
            ax.axvline(qat[0] - 0.5, color="gray", ls="--", lw=1, label="quantization-aware from here")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    a.set_ylabel("cross-entropy")
    b.set_ylabel("accuracy (%)")
    b.set_ylim(50, 100)
    fig.suptitle("Training (test accuracy: float mode, then exact integer mode)")
    _save(fig, path)
    plt.close(fig)


def compare_runs(runs, labels, path):
    """Plot the validation and test accuracy per epoch of several training runs (``RUN/metrics.json``) into one
    PNG at ``path``, e.g. ``--init-from-cnn`` against training from scratch; returns their final figures."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    rows = []
    for run, label in zip(runs, labels):
        m = json.loads((Path(run) / "metrics.json").read_text())
        h = m["history"]
        ep = np.arange(1, len(h) + 1)
        for ax, key in zip(axes, ("val_acc", "test_acc")):
            ax.plot(ep, [100 * e[key] if e.get(key) is not None else np.nan for e in h], label=label)
        rows.append({"run": str(run), "label": label, "bit_true_accuracy": m.get("bit_true_accuracy"),
                     "qat_val_accuracy": m.get("qat_val_accuracy"), "cnn_accuracy": m.get("cnn_accuracy"),
                     "init_accuracy": m.get("init_accuracy"), "train_seconds": m.get("train_seconds")})
    for ax, title in zip(axes, ("validation speaker (model selection)", "test split (reported only)")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch (float, then quantization-aware)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("accuracy (%)")
    _save(fig, path)
    plt.close(fig)
    return rows


def _confusion(cm, classes, path, plt):
    fig, ax = plt.subplots(figsize=(5, 4.4))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("spoken digit")
    ax.set_title(f"Bit-true confusion matrix ({int(np.trace(cm))}/{int(cm.sum())})")
    _save(fig, path)
    plt.close(fig)


def _raster(spikes, sample, label, path, plt):
    names = list(spikes)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 4))
    for ax, name in zip(np.atleast_1d(axes), names):
        train = spikes[name][sample]
        t, n = np.nonzero(train)
        ax.scatter(t, n, s=2 if train.shape[1] > 500 else 8, marker="|" if train.shape[1] > 500 else "s")
        ax.set_xlim(-0.5, train.shape[0] - 0.5)
        ax.set_ylim(-0.5, train.shape[1] - 0.5)
        ax.set_xticks(range(train.shape[0]))
        ax.set_xlabel("time step")
        ax.set_title(f"{name}: {int(train.sum())} spikes / {train.shape[1]} neurons", fontsize=9)
    np.atleast_1d(axes)[0].set_ylabel("neuron (flat index)")
    fig.suptitle(f"Spike raster of test sample {sample} ({label})")
    _save(fig, path)
    plt.close(fig)


def _bars(rates, path, plt):
    fig, ax = plt.subplots(figsize=(5, 3.4))
    names = list(rates)
    ax.bar(names, [100 * rates[n] for n in names])
    for i, n in enumerate(names):
        ax.text(i, 100 * rates[n], f"{100 * rates[n]:.1f}%", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("spikes per neuron per step (%)")
    ax.set_title("Firing rate per layer (test split)")
    _save(fig, path)
    plt.close(fig)


def _steps(steps, accs, trained_t, path, plt):
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(steps, [100 * a for a in accs], marker="o")
    ax.axvline(trained_t, color="gray", ls="--", lw=1, label=f"trained with T = {trained_t}")
    ax.set_xlabel("time steps T")
    ax.set_ylabel("bit-true accuracy (%)")
    ax.set_title("Accuracy against the number of time steps")
    ax.legend(fontsize=8)
    _save(fig, path)
    plt.close(fig)


def make_report(model_dir, data_dir, out_dir, *, run_dir=None, split: str = "official", max_steps: int = 10,
                sample: int = 0, progress: bool = True) -> dict:
    """Compute the figures of a saved model, write the PNGs and ``report.json`` into ``out_dir``; return the dict."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tqdm import tqdm
    import golden.manifest as gm
    from golden.network import run
    from .evaluate import confusion
    from .export import with_time_steps
    from .features import FeatureParams
    from .fsdd import load_dataset

    out = Path(out_dir)
    model = gm.load(model_dir)
    ds = load_dataset(data_dir, split, FeatureParams.from_dict(model.features), fit=False, test_only=True,
                      progress=progress)
    res = run(model, ds.x_test)
    cm = confusion(ds.y_test, res.classes, len(model.classes))
    spiking = [l.name for l in model.layers if l.name in res.spikes]
    rates = {name: float(res.spikes[name].mean()) for name in spiking}
    ops = {l.name: {"event_ops_mean": float(np.mean(res.ops[l.name]["event_ops"])),
                    "dense_ops": int(np.mean(res.ops[l.name]["dense_ops"]))} for l in model.layers
           if l.type != "pool"}
    steps = list(range(1, max_steps + 1))
    accs = []
    for t in tqdm(steps, desc="time steps", disable=not progress, leave=False):
        r = res if t == model.time_steps else run(with_time_steps(model, t), ds.x_test)
        accs.append(float(np.mean(r.classes == ds.y_test)))
    figures = {
        "model": str(model_dir), "model_hash": gm.model_hash(model), "split": split,
        "samples": int(len(ds.y_test)), "accuracy": float(np.mean(res.classes == ds.y_test)),
        "weights": int(model.weight_count), "time_steps": model.time_steps,
        "confusion": cm.tolist(), "firing_rate": rates, "ops_per_sample": ops,
        "accuracy_vs_time_steps": dict(zip(map(str, steps), accs)),
        "raster_sample": {"index": sample, "file": ds.test_names[sample], "label": int(ds.y_test[sample]),
                          "predicted": int(res.classes[sample])},
    }
    _confusion(cm, model.classes, out / "confusion.png", plt)
    _raster({n: res.spikes[n] for n in spiking}, sample,
            f"{ds.test_names[sample]}, predicted {model.classes[res.classes[sample]]}", out / "raster.png", plt)
    _bars(rates, out / "firing.png", plt)
    _steps(steps, accs, model.time_steps, out / "steps.png", plt)
    if run_dir is not None:
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
        _curves(metrics["history"], out / "curves.png", plt)
        figures["training"] = {k: metrics.get(k) for k in ("float_accuracy", "int_accuracy_torch",
                                                            "bit_true_accuracy", "train_seconds", "seed",
                                                            "mem_bits", "membrane_peak_train", "budget")}
        figures["history"] = metrics["history"]
    atomic_write_json(out / "report.json", figures)
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.report",
        description="Write the plots (PNG) and a JSON of figures of a trained model, computed by the golden model.")
    parser.add_argument("--model", help="model directory (default: the shipped default model)")
    parser.add_argument("--data", help="directory of FSDD WAV files (required unless --compare)")
    parser.add_argument("--run", help="training run directory with metrics.json (for the training curves)")
    parser.add_argument("--out", default="runs/report", help="output folder (default: %(default)s)")
    parser.add_argument("--split", default="official", help="official or speaker:NAME (default: %(default)s)")
    parser.add_argument("--max-steps", type=int, default=10, help="largest T of the accuracy sweep")
    parser.add_argument("--sample", type=int, default=0, help="test sample of the spike raster")
    parser.add_argument("--compare", nargs="+", metavar="RUN",
                        help="instead: plot the validation and test accuracy per epoch of these training runs into "
                             "OUT/compare.png (e.g. --init-from-cnn against from scratch)")
    parser.add_argument("--labels", nargs="+", help="legend labels of the --compare runs (default: their folders)")
    args = parser.parse_args(argv)
    from .util import model_or_default
    args.model = model_or_default(args.model)
    if args.compare:
        labels = args.labels or [Path(r).name for r in args.compare]
        if len(labels) != len(args.compare):
            parser.error(f"--labels gives {len(labels)} labels for {len(args.compare)} runs")
        try:
            rows = compare_runs(args.compare, labels, Path(args.out) / "compare.png")
        except (OSError, KeyError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        atomic_write_json(Path(args.out) / "compare.json", rows)
        for r in rows:
            cells = [f"{k} {100 * r[k]:.2f}%" for k in ("bit_true_accuracy", "qat_val_accuracy", "cnn_accuracy",
                                                        "init_accuracy") if r[k] is not None]
            print(f"{r['label']}: " + ", ".join(cells))
        print(f"{Path(args.out) / 'compare.png'} written")
        return 0
    if not args.data:
        parser.error("--data is required (the test split the figures are computed on)")
    import golden.manifest as gm
    from .features import FeatureError
    from .fsdd import FsddError
    try:
        fig = make_report(args.model, args.data, args.out, run_dir=args.run, split=args.split,
                          max_steps=args.max_steps, sample=args.sample)
    except (gm.ManifestError, FeatureError, FsddError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"report of {fig['model']} written to {args.out}: accuracy {100 * fig['accuracy']:.2f}%, firing rates "
          + ", ".join(f"{k} {100 * v:.1f}%" for k, v in fig["firing_rate"].items()))
    print(json.dumps({k: fig[k] for k in ("accuracy", "samples", "weights", "firing_rate",
                                          "accuracy_vs_time_steps")}))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
