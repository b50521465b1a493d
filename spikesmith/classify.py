"""``python -m spikesmith.classify``: classify WAV files in software, bit-true.

    python -m spikesmith.classify recording.wav
    python -m spikesmith.classify --model models/fsdd_scnn --json a.wav b.wav

For each file: the class the hardware gives (the golden model is the specification the RTL equals spike for spike),
the readout values, and the cycles the generated hardware takes, with the latency at ``--clock``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_CLOCK_MHZ = 24.0


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m spikesmith.classify",
        description="Classify WAV files in software, bit-true: the model's own front-end, the golden model (which "
                    "the RTL equals spike for spike) and the cycles the generated hardware would take.")
    p.add_argument("wav", nargs="+", help="WAV files (any sample rate; resampled as in training)")
    p.add_argument("--model", metavar="DIR", help="model directory (default: the shipped default model)")
    p.add_argument("--clock", type=float, default=DEFAULT_CLOCK_MHZ, metavar="MHZ",
                   help="clock for the latency figure (default: %(default)g, the iCEBreaker build)")
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.clock > 0:
        print(f"error: --clock must be a positive frequency in MHz, not {args.clock}", file=sys.stderr)
        return 2
    from golden.manifest import ManifestError
    from train.features import FeatureError

    from .predict import features, load_model, predict
    try:
        model = load_model(args.model)
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    status = 0
    for wav in args.wav:
        try:
            x = features(Path(wav), model)
        except (FeatureError, OSError) as e:
            print(f"error: {e}" if str(wav) in str(e) else f"error: {wav}: {e}", file=sys.stderr)
            status = 2
            continue
        pred = predict(model, x)
        cls, cycles = int(pred.classes[0]), int(pred.cycles[0])
        latency = float(pred.latency_us(args.clock)[0])
        if args.json:
            print(json.dumps({"file": str(wav), "class": cls, "label": pred.labels[cls],
                              "readout": pred.readout[0].tolist(), "cycles": cycles,
                              "latency_us": round(latency, 3), "clock_mhz": args.clock}))
        else:
            print(f"{Path(wav).name}: class {cls} ({pred.labels[cls]}), readout {pred.readout[0].tolist()}, "
                  f"{cycles:,} cycles = {latency:.1f} us at {args.clock:g} MHz")
    return status


if __name__ == "__main__":
    from golden.cli import run_main
    sys.exit(run_main(main))
