"""``python -m golden``: run the bit-true model on a batch of INT8 input maps and print a summary.

Examples::

    python -m golden --model models/tiny --random 16
    python -m golden --model models/fsdd_scnn --input features.npy --labels labels.npy --json
    python -m golden --model models/fsdd_scnn --input features.npy --save-spikes spikes.npz
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .cli import run_main
from .manifest import ManifestError, load, model_hash
from .network import run


def _parser():
    p = argparse.ArgumentParser(prog="python -m golden", description="Run the bit-true model on a batch of INT8 input maps and print a summary.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="The arithmetic is specified in docs/arithmetic.md, the model format in "
                                       "docs/manifest.md.")
    p.add_argument("--model", required=True, metavar="DIR", help="model directory (manifest.json + ROM files)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", metavar="FILE.npy", help="INT8 input maps, shape [N, C, H, W] or [C, H, W]")
    src.add_argument("--random", metavar="N", type=int, help="run N random INT8 input maps instead")
    p.add_argument("--seed", type=int, default=0, help="seed of --random (default 0)")
    p.add_argument("--labels", metavar="FILE.npy", help="true classes [N]: also report the accuracy")
    p.add_argument("--save-spikes", metavar="FILE.npz", help="save classes, readouts and every spike train")
    p.add_argument("--json", action="store_true", help="end with one line holding a JSON summary")
    return p


def _save_npz(path, arrays):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def summarize(model, result, labels=None):
    """A JSON-ready summary of a :class:`golden.network.Result`."""
    n = int(result.classes.shape[0])
    layers = {}
    for layer, (_, out) in zip(model.layers, model.shapes):
        o = result.ops[layer.name]
        entry = {"type": layer.type, "neurons": int(np.prod(out))}
        if layer.name in result.spikes:
            entry["firing_rate"] = float(result.spikes[layer.name].mean()) if n else 0.0
        if layer.type != "pool":
            entry["event_ops_mean"] = float(o["event_ops"].mean()) if n else 0.0
            entry["dense_ops"] = int(o["dense_ops"])
        layers[layer.name] = entry
    summary = {
        "model": model.name, "model_hash": model_hash(model), "samples": n, "time_steps": model.time_steps,
        "classes": result.classes.tolist(), "readout": result.readout.tolist(), "layers": layers,
        "event_ops_mean": float(result.event_ops.mean()) if n else 0.0,
        "dense_ops": int(result.dense_ops),
    }
    if labels is not None:
        summary["accuracy"] = float((result.classes == labels).mean()) if n else 0.0
    return summary


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        model = load(args.model)
    except ManifestError as e:
        print(f"error: model {args.model}: {e}", file=sys.stderr)
        return 2
    if args.random is not None:
        if args.random < 1:
            print(f"error: --random needs at least 1 sample, not {args.random}", file=sys.stderr)
            return 2
        from .randmodel import random_inputs
        x = random_inputs(model, args.random, np.random.default_rng(args.seed))
    else:
        try:
            x = np.load(args.input, allow_pickle=False)
        except (OSError, ValueError) as e:
            print(f"error: input {args.input}: cannot read a .npy array ({e})", file=sys.stderr)
            return 2
    labels = None
    if args.labels:
        try:
            labels = np.load(args.labels, allow_pickle=False).astype(np.int64).ravel()
        except (OSError, ValueError) as e:
            print(f"error: labels {args.labels}: cannot read a .npy array ({e})", file=sys.stderr)
            return 2
    try:
        result = run(model, x)
    except ValueError as e:
        print(f"error: input {args.input or 'random'}: {e}", file=sys.stderr)
        return 2
    if labels is not None and labels.shape != result.classes.shape:
        print(f"error: labels {args.labels} hold {labels.size} values for {result.classes.size} samples",
              file=sys.stderr)
        return 2

    s = summarize(model, result, labels)
    print(f"model {model.name} ({s['model_hash'][:12]}), {s['samples']} samples, T = {model.time_steps}")
    print(f"{'layer':<10} {'type':<8} {'neurons':>8} {'firing':>8} {'event ops':>11} {'dense ops':>11}")
    for name, e in s["layers"].items():
        rate = f"{e['firing_rate']:.1%}" if "firing_rate" in e else "-"
        ev = f"{e['event_ops_mean']:,.0f}" if "event_ops_mean" in e else "-"
        de = f"{e['dense_ops']:,}" if "dense_ops" in e else "-"
        print(f"{name:<10} {e['type']:<8} {e['neurons']:>8,} {rate:>8} {ev:>11} {de:>11}")
    ratio = s["dense_ops"] / s["event_ops_mean"] if s["event_ops_mean"] else float("inf")
    print(f"synaptic ops per sample: {s['event_ops_mean']:,.0f} with zero-skipping, {s['dense_ops']:,} dense "
          f"({ratio:.2f}x)")
    counts = np.bincount(result.classes, minlength=len(model.classes))
    print("classes: " + ", ".join(f"{model.classes[i]}: {c}" for i, c in enumerate(counts) if c))
    if labels is not None:
        print(f"accuracy: {s['accuracy']:.2%}")
    if args.save_spikes:
        arrays = {"classes": result.classes, "readout": result.readout}
        arrays.update({f"spikes_{k}": v for k, v in result.spikes.items()})
        _save_npz(args.save_spikes, arrays)
        print(f"spike trains written to {args.save_spikes}")
    if args.json:
        print(json.dumps(s))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
