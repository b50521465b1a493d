"""Leave-one-speaker-out study: the speaker-independent accuracy beside the official split's figure.

FSDD's official split puts every speaker on both sides, so its accuracy does not show how a model does on a voice
it never heard. ``python -m train.loso --data DIR [TRAINER OPTIONS]`` trains one network per speaker with that
speaker's 500 recordings held out (``python -m train --split speaker:NAME``, same recipe and options, no model
written), and reports each held-out speaker's bit-true accuracy (golden model, after the exact agreement check),
their mean, the worst speaker, and the float accuracies, with a progress bar over the folds. With ``--neuron relu``
(the non-spiking CNN of the same layout, which has no integer model) the float accuracy is the figure, and the
summary's keys say so (``mean_float_accuracy``, ``worst_float_accuracy``, ``measure``). Inside each fold the
model is chosen on a validation speaker taken from the five training speakers (``--val-speaker``, see
``python -m train --help``), never on the held-out one. Figures go to ``--out``/summary.json; the last printed line
is that JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from golden.cli import run_main

from .util import atomic_write_json

__all__ = ["run_loso", "main"]


_LABEL = {"bit_true_accuracy": "bit-true", "float_accuracy": "float"}


def _measure(fold: dict) -> str:
    """The figure a fold is judged by: bit-true for the spiking network, float for the non-spiking control
    (``--neuron relu``, which has no integer model)."""
    return "bit_true_accuracy" if fold["bit_true_accuracy"] is not None else "float_accuracy"


def run_loso(data_dir, speakers, trainer_argv, out_dir, *, progress=True) -> dict:
    """Train and measure one held-out speaker after the other; returns the summary dict."""
    from tqdm import tqdm

    from .trainer import build_parser, train
    out = Path(out_dir)
    per = {}
    folds = tqdm(speakers, desc="folds", unit="speaker", disable=not progress)
    for who in folds:
        folds.set_postfix(held_out=who)
        args = build_parser().parse_args(["--data", str(data_dir), "--split", f"speaker:{who}", "--no-export",
                                          "--out", str(out / who / "model"), "--run-dir", str(out / who),
                                          *(["--quiet"] if not progress else []), *trainer_argv])
        m = train(args)
        per[who] = {k: m.get(k) for k in ("bit_true_accuracy", "float_accuracy", "test_samples", "train_seconds",
                                          "val_speakers", "qat_epoch_chosen")}
        key = _measure(per[who])
        folds.write(f"speaker {who}: {_LABEL[key]} {100 * per[who][key]:.2f}% on {per[who]['test_samples']} "
                    f"held-out recordings", file=sys.stderr)
    key = _measure(next(iter(per.values())))
    worst = min(per, key=lambda k: per[k][key])
    tag = key.removesuffix("_accuracy")
    summary = {"speakers": per, "measure": _LABEL[key],
               f"mean_{tag}_accuracy": float(np.mean([v[key] for v in per.values()])),
               "worst_speaker": worst, f"worst_{tag}_accuracy": per[worst][key],
               "mean_float_accuracy": float(np.mean([v["float_accuracy"] for v in per.values()])),
               f"pooled_{tag}_accuracy": float(sum(v[key] * v["test_samples"] for v in per.values())
                                               / sum(v["test_samples"] for v in per.values())),
               "trainer_options": list(trainer_argv)}
    atomic_write_json(out / "summary.json", summary)
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.loso",
        description="Leave-one-speaker-out accuracy: one training per FSDD speaker held out. Options not listed "
                    "here (--seed, --epochs, --hidden, --layers, --arch, ...) are passed to `python -m train`.")
    parser.add_argument("--data", required=True, help="directory of FSDD WAV files")
    parser.add_argument("--speakers", nargs="*", help="speakers to hold out (default: all)")
    parser.add_argument("--out", default="runs/loso", help="run folder (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args, rest = parser.parse_known_args(argv)
    from .fsdd import FsddError, list_recordings, speakers
    try:
        names = args.speakers or speakers(list_recordings(args.data))
        summary = run_loso(args.data, names, rest, args.out, progress=not args.quiet)
    except FsddError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    key = _measure(next(iter(summary["speakers"].values())))
    tag, label = key.removesuffix("_accuracy"), _LABEL[key]
    for who, v in summary["speakers"].items():
        also = f"  float {100 * v['float_accuracy']:6.2f}%" if key != "float_accuracy" else ""
        print(f"  {who:<10} {label} {100 * v[key]:6.2f}%{also}  ({v['test_samples']} recordings)")
    print(f"leave-one-speaker-out: mean {label} accuracy {100 * summary[f'mean_{tag}_accuracy']:.2f}% over "
          f"{len(names)} speakers (float {100 * summary['mean_float_accuracy']:.2f}%), worst "
          f"{summary['worst_speaker']} {100 * summary[f'worst_{tag}_accuracy']:.2f}%")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
