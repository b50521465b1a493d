"""Benchmark of the golden model: inference throughput on a 300-sample batch, one process.

    python -m golden.bench [--model DIR] [--samples 300] [--repeat 5] [--json]

It prints figures; it is not a test. The inputs are random INT8 maps of the model's input shape (the golden model's
work does not depend on the values beyond the spike counts); the best of ``--repeat`` runs is reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .cli import run_main
from .manifest import ManifestError, load
from .network import run
from .randmodel import random_inputs

DEFAULT_MODELS = ("models/fsdd_scnn", "models/tiny")


def default_model():
    root = Path(__file__).resolve().parent.parent
    for m in DEFAULT_MODELS:
        if (root / m / "manifest.json").exists():
            return root / m
    raise SystemExit("error: no shipped model found; pass --model DIR")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m golden.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", metavar="DIR", help="model directory (default: the shipped default model)")
    p.add_argument("--samples", type=int, default=300, metavar="N",
                   help="random INT8 input maps in the batch (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=5, metavar="K",
                   help="timed runs of the batch; the best is reported (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = p.parse_args(argv)
    try:
        model = load(args.model or default_model())
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    x = random_inputs(model, args.samples, np.random.default_rng(0))
    run(model, x[:2])  # warm-up
    times = []
    for _ in range(max(args.repeat, 1)):
        t0 = time.perf_counter()
        run(model, x)
        times.append(time.perf_counter() - t0)
    best = min(times)
    figures = {"model": model.name, "samples": args.samples, "seconds_best": best,
               "seconds_median": float(np.median(times)), "samples_per_second": args.samples / best}
    print(f"golden model {model.name}: {args.samples} samples in {best * 1e3:.1f} ms (best of {len(times)}), "
          f"{figures['samples_per_second']:,.0f} samples/s")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
