"""``python -m train.nir import|export``: the command line of :mod:`train.nir`."""

from __future__ import annotations

import argparse
import json
import sys

from golden.cli import run_main

from .graph import DEFAULT_DT

__all__ = ["build_parser", "main"]


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m train.nir",
        description="Import a NIR graph (snnTorch, Norse, Sinabs, Rockpool, Lava-DL, Spyx, ...) as a spikesmith "
                    "model, or export a spikesmith model as a NIR graph. docs/nir.md has the mapping.")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser(
        "import", help="NIR graph -> spikesmith model, quantized to INT8 (calibrated on the FSDD training side), "
                       "optionally fine-tuned; prints the per-layer mapping and the float and bit-true accuracy",
        description="Map a NIR graph to a spikesmith model: Conv2d/Affine/Linear + LIF/IF/CubaLIF (tau_syn = dt) "
                    "layers, SumPool2d/AvgPool2d + Threshold as OR-pooling, Flatten, and an Affine + I/LI (or "
                    "Output) readout. Refuses anything else, naming the node, its kind and why. A graph that "
                    "`python -m train.nir export` wrote comes back bit for bit.")
    i.add_argument("graph", help="the .nir file")
    i.add_argument("--data", required=True, help="directory of FSDD WAV files: calibration on the training side, "
                                                 "accuracy on the test side (official split)")
    i.add_argument("--out", help="model directory to write (atomic); without it nothing is written")
    i.add_argument("--name", help="model name (default: the name of --out)")
    i.add_argument("--dt", type=float, default=DEFAULT_DT,
                   help="the time step that discretizes the graph's time constants, in seconds (default: %(default)s,"
                        " snnTorch's; Norse 1.1.0 writes tau = dt / tau_mem_inv, so give its step squared, 1e-6 "
                        "for its default)")
    i.add_argument("--time-steps", type=int, help="time steps T (default: the graph's own if spikesmith wrote it, "
                                                  "else 4)")
    i.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="quantization-aware fine-tuning epochs with the trainer's recipe (default: none)")
    i.add_argument("--finetune-lr", type=float, default=1e-4,
                   help="learning rate of the fine-tuning (Adam, cosine schedule; default: %(default)s)")
    i.add_argument("--requantize", action="store_true",
                   help="quantize afresh even when the graph carries spikesmith's own integers")
    i.add_argument("--limit-train", type=int, help="use only this many training files (quick runs)")
    i.add_argument("--seed", type=int, default=0, help="seed of the fine-tuning (default: %(default)s)")
    i.add_argument("--quiet", action="store_true", help="no progress bars")
    i.add_argument("--json", action="store_true", help="end with one JSON line of the report")
    e = sub.add_parser("export", help="spikesmith model -> NIR graph (written atomically)",
                       description="Write a spikesmith model as a NIR graph: Conv2d/Affine + LIF in continuous-time "
                                   "form for --dt, SumPool2d + Threshold for OR-pools, Affine + I for the readout, "
                                   "the integers in metadata.")
    e.add_argument("--model", required=True, help="model directory")
    e.add_argument("--out", required=True, help="the .nir file to write")
    e.add_argument("--dt", type=float, default=DEFAULT_DT, help="time step in seconds (default: %(default)s)")
    e.add_argument("--json", action="store_true", help="end with one JSON line")
    return p


def _table(report):
    lines = [f"{'layer':6} {'NIR nodes':28} {'mapped to':72} {'w err':>7} {'thr err':>8} {'leak err':>9}"]
    for r in report["layers"] or []:
        lines.append(f"{r['layer']:6} {'+'.join(r['nodes'])[:28]:28} {r['mapped'][:72]:72} "
                     f"{r.get('weight_error', 0):7.2%} {r.get('threshold_error', 0):8.2%} "
                     f"{r.get('leak_error', 0):+9.4f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "export":
        import golden.manifest as gm
        from .write import write_graph
        model = gm.load(args.model)
        notes = write_graph(model, args.out, dt=args.dt)
        for n in notes:
            print(f"note: {n}", file=sys.stderr)
        print(f"model {model.name} written to {args.out} as a NIR graph ({len(model.layers)} layers, dt {args.dt:g} s)")
        if args.json:
            print(json.dumps({"model": args.model, "out": args.out, "dt": args.dt, "notes": notes,
                              "model_hash": gm.model_hash(model)}))
        return 0
    from ..features import warnings_to_stderr
    from .importer import import_graph
    with warnings_to_stderr():
        rep = import_graph(args.graph, args.data, args.out, name=args.name, dt=args.dt, time_steps=args.time_steps,
                           finetune_epochs=args.finetune, finetune_lr=args.finetune_lr, requantize=args.requantize, limit_train=args.limit_train,
                           progress=not args.quiet, seed=args.seed)
    rep.pop("model")
    if rep["exact"]:
        print(f"{args.graph}: spikesmith's own integers taken from the graph's metadata (bit for bit)")
    else:
        print(_table(rep))
    n = rep["test_samples"]
    print(f"accuracy on {n} FSDD test recordings: float graph in snnTorch {rep['float_accuracy']:.2%}, bit-true "
          f"{rep['ptq_bit_true_accuracy']:.2%}" + ("" if rep["exact"] else " after quantization") +
          (f", {rep['bit_true_accuracy']:.2%} after {rep['finetune_epochs']} fine-tuning epochs"
           if rep["finetune_epochs"] else "") +
          f" (golden = torch integer mode on all {rep['agreement']['samples']} samples)")
    print("float/bit-true spike agreement per layer (100 test maps): " +
          ", ".join(f"{k} {v:.2%}" for k, v in rep["float_spike_agreement"].items()))
    print(f"fits: {rep['fits']}")
    if args.out:
        print(f"model {rep['name']} written to {rep['model_dir']} ({rep['weights']:,} INT8 weights)")
    if args.json:
        print(json.dumps(rep))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
