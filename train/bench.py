"""Benchmarks of the trainer: training wall time, and golden model against snnTorch float inference.

``python -m train.bench --data DIR [--model models/fsdd_scnn] [--skip-training]`` prints:

* the wall time of training ``fsdd_scnn``'s recipe (``python -m train`` with the first recipe's options, 80 float and 10
  quantization-aware epochs, one torch thread) on this machine, without writing a model;
* the throughput of the golden model (NumPy, bit-true) and of snnTorch float inference of the same network
  (:meth:`train.model.SCNN.from_model`, ``Leaky`` neurons) on the test split's 300 maps, each from one timed run
  of the whole batch, and their ratio; the torch integer mode is timed as well.

The last line is one JSON object with the figures. Timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np
import torch

from golden.cli import run_main

__all__ = ["bench_training", "bench_inference", "main"]


def bench_training(data_dir, *, seed: int = 0) -> dict:
    """Train ``fsdd_scnn``'s recipe once (no export); return its times and accuracies."""
    from .trainer import build_parser, train
    with tempfile.TemporaryDirectory(prefix="spikesmith-bench-") as tmp:
        args = build_parser().parse_args(["--data", str(data_dir), "--out", f"{tmp}/model", "--run-dir",
                                          f"{tmp}/run", "--seed", str(seed), "--no-export", "--quiet",
                                          # the recipe of models/fsdd_scnn
                                          "--front-end", "classic", "--augment-copies", "0", "--mask-p", "0",
                                          "--val-speaker", "none"])
        t0 = time.perf_counter()
        m = train(args)
        wall = time.perf_counter() - t0
    return {"train_seconds": m["train_seconds"], "wall_seconds": round(wall, 2),
            "epochs": args.epochs + args.qat_epochs, "bit_true_accuracy": m["bit_true_accuracy"],
            "float_accuracy": m["float_accuracy"]}


def bench_inference(model_dir, data_dir, *, threads: int = 1) -> dict:
    """Time the golden model, snnTorch float and the torch integer mode on the official test split (one run each)."""
    import golden.manifest as gm
    from golden.network import run
    from .features import FeatureParams
    from .fsdd import load_dataset
    from .model import SCNN
    torch.set_num_threads(threads)
    model = gm.load(model_dir)
    ds = load_dataset(data_dir, "official", FeatureParams.from_dict(model.features), fit=False, test_only=True,
                      progress=False)
    x = ds.x_test
    n = len(x)
    t0 = time.perf_counter()
    g = run(model, x)
    t_golden = time.perf_counter() - t0
    net = SCNN.from_model(model).eval()
    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        t0 = time.perf_counter()
        logits = net(xt)
        t_float = time.perf_counter() - t0
        net.mode = "int"
        t0 = time.perf_counter()
        readout = net(xt)
        t_int = time.perf_counter() - t0
    assert np.array_equal(readout.numpy().astype(np.int64), g.readout), "torch integer mode differs from golden"
    return {"samples": n, "golden_seconds": round(t_golden, 4), "snntorch_float_seconds": round(t_float, 4),
            "torch_int_seconds": round(t_int, 4), "golden_per_s": round(n / t_golden, 1),
            "snntorch_float_per_s": round(n / t_float, 1), "torch_int_per_s": round(n / t_int, 1),
            "golden_over_snntorch_float": round(t_float / t_golden, 3),
            "golden_accuracy": float(np.mean(g.classes == ds.y_test)),
            "snntorch_float_accuracy": float(np.mean(np.argmax(logits.numpy(), axis=1) == ds.y_test)),
            "torch_threads": threads}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.bench",
                                     description="Print the trainer's benchmark figures (see the module docstring).")
    parser.add_argument("--data", required=True, help="directory of FSDD WAV files")
    parser.add_argument("--model", default="models/fsdd_scnn", help="model for the inference figures")
    parser.add_argument("--skip-training", action="store_true", help="only the inference figures")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for inference (default: 1)")
    args = parser.parse_args(argv)
    out = {}
    inf = bench_inference(args.model, args.data, threads=args.threads)
    out["inference"] = inf
    print(f"inference on {inf['samples']} test maps (one run each): golden model {inf['golden_seconds']:.3f} s "
          f"({inf['golden_per_s']:.0f}/s), snnTorch float {inf['snntorch_float_seconds']:.3f} s "
          f"({inf['snntorch_float_per_s']:.0f}/s), torch integer mode {inf['torch_int_seconds']:.3f} s; "
          f"golden / snnTorch float throughput ratio {inf['golden_over_snntorch_float']:.2f}")
    if not args.skip_training:
        tr = bench_training(args.data)
        out["training"] = tr
        print(f"training of fsdd_scnn's recipe ({tr['epochs']} epochs): {tr['train_seconds']:.1f} s of epochs, "
              f"{tr['wall_seconds']:.1f} s wall in all (features, calibration, agreement check included); "
              f"bit-true accuracy {100 * tr['bit_true_accuracy']:.2f}%")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
