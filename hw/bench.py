"""Cycles per inference of the generated hardware over the FSDD test split, from the exact cycle model.

    python -m hw.bench --model models/fsdd_scnn --data DIR [--json] [--params JSON] [--clock-mhz 24]

For every test sample (official split, file index 0-4) it makes the INT8 map with the model's own feature
parameters (``train.features``), runs the golden model for the spikes, and asks the cycle model (:mod:`hw.cycles`)
for:

- the cycles of the hardware (zero-skipping), min / median / max;
- the cycles of the dense schedule (zero-skipping off: every input of every layer processed at every step);
- the lower bound: operations divided by the parallel units of each layer (:func:`hw.cycles.lower_bound`);
- per layer the median busy cycles, and for each core fed by a step buffer (the event-driven ones: a convolution on
  spikes, dense layers, the readout) its busy cycles against its own dense schedule (every input every step).

These are figures, not tests: they print, and with ``--json`` the last line is one JSON object with at least
``cycles_median``, ``dense_cycles_median`` and ``lower_bound_median``. A model without a feature front-end (a random
test model) is measured on random INT8 maps instead, and the output says so.
"""

import argparse
import json
import sys

import numpy as np

from hw.cycles import format_cycles

__all__ = ["bench", "main"]


def _stats(prefix, values):
    values = np.asarray(values)
    return {f"{prefix}_min": int(values.min()), f"{prefix}_median": float(np.median(values)),
            f"{prefix}_max": int(values.max())}


def _inputs(model, data_dir, samples, progress):
    """Real inputs by the rule of ``sim.stimulus.real_inputs`` (--data, the model's test vectors, the recordings
    found), else random maps; ``(x, description)``."""
    from sim.stimulus import random_inputs, real_inputs
    from train.datadir import search_text

    stimulus = real_inputs(model, data_dir, limit=samples, progress=progress)
    if stimulus is None:
        stimulus = random_inputs(model, samples or 300, 0)
        return stimulus.x, (f"{stimulus.source}: the model carries no test vectors and no recordings were found "
                            f"({search_text()})")
    return stimulus.x, stimulus.source


def bench(model, x, *, params=None, batch=100, progress=True):
    """Cycle figures of ``model`` on the INT8 maps ``x``; returns a dict (see the module docstring)."""
    from tqdm import tqdm

    from golden.network import run
    from hw.cycles import cycles, dense_cycles, lower_bound
    from hw.plan import plan

    p = plan(model, params=params)
    totals, bounds, busy = [], [], {layer.name: [] for layer in model.layers}
    for start in tqdm(range(0, len(x), batch), desc="cycle model", unit="batch", disable=not progress,
                      leave=False):
        golden = run(model, x[start:start + batch])
        report = cycles(p, golden.spikes)
        totals.append(report.total)
        bounds.append(lower_bound(p, golden))
        for name, figures in report.layers.items():
            busy[name].append(figures["busy"])
    totals, bounds = np.concatenate(totals), np.concatenate(bounds)
    dense_report = dense_cycles(p)
    dense = dense_report.total
    figures = {"model": model.name, "samples": int(len(x))}
    figures.update(_stats("cycles", totals))
    figures.update(_stats("dense_cycles", dense))
    figures.update(_stats("lower_bound", bounds))
    figures["dense_over_cycles"] = float(np.median(dense) / np.median(totals))
    figures["cycles_over_lower_bound"] = float(np.median(totals / bounds))
    figures["layer_busy_median"] = {name: float(np.median(np.concatenate(v))) for name, v in busy.items()}
    # the cores fed by a step buffer work per input spike: their cycles against their own dense schedule
    figures["layer_dense_busy"] = {lp.name: int(dense_report.layers[lp.name]["busy"][0]) for lp in p.layers
                                   if p.kind(lp).buffered}
    figures["lanes"] = {lp.name: lp.lanes for lp in p.layers if lp.lanes is not None}
    figures["ebr_estimate"] = p.ebr
    figures["spram_estimate"] = p.sprams
    figures["weights_in_spram"] = [lp.name for lp in p.layers if getattr(lp, "weights", "bram") == "spram"]
    figures["state_in_spram"] = [lp.name for lp in p.layers if getattr(lp, "state", "bram") == "spram"]
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m hw.bench",
        description="Cycles per inference of the generated hardware over the FSDD test split (exact cycle model), "
                    "against the dense schedule and the lower bound.")
    parser.add_argument("--model", required=True, metavar="DIR", help="model directory (holds manifest.json)")
    parser.add_argument("--data", metavar="DIR", help="FSDD recordings (default: the model's test vectors, else "
                                                      "$SPIKESMITH_DATA, else the download location)")
    parser.add_argument("--params", metavar="JSON", default=None,
                        help="hardware overrides per layer, inline JSON or a file, as for hw.generate")
    parser.add_argument("--samples", type=int, default=None,
                        help="use only N test samples, spread evenly over the split")
    parser.add_argument("--clock-mhz", type=float, default=24.0, help="clock for the latency figures (default 24)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    from golden.manifest import ManifestError, load
    from hw.params import ParamsError, parse_params
    try:
        params = parse_params(args.params)
    except ParamsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.samples is not None and args.samples < 1:
        print(f"error: --samples must be at least 1, not {args.samples}", file=sys.stderr)
        return 2
    try:
        model = load(args.model)
        x, source = _inputs(model, args.data, args.samples, not args.quiet)
        figures = bench(model, x, params=params, progress=not args.quiet)
    except (ManifestError, ValueError, TypeError) as e:  # FeatureError and FsddError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    figures["inputs"] = source
    us = 1.0 / args.clock_mhz
    print(f"model {model.name}: {source}")
    in_spram = [f"weights of {', '.join(figures['weights_in_spram'])} in SPRAM, loaded at start-up"] * bool(
        figures["weights_in_spram"])
    in_spram += [f"membranes of {', '.join(figures['state_in_spram'])} in SPRAM"] * bool(figures["state_in_spram"])
    print(f"lanes {figures['lanes']}, about {figures['ebr_estimate']} EBR, {figures['spram_estimate']} SPRAM"
          + (f" ({'; '.join(in_spram)})" if in_spram else ""))
    print(f"{'':<26} {'min':>8} {'median':>8} {'max':>8}   (us at {args.clock_mhz:g} MHz, median)")
    for key, label in (("cycles", "zero-skipping (hardware)"), ("dense_cycles", "dense schedule"),
                       ("lower_bound", "lower bound")):
        print(f"{label:<26} {figures[key + '_min']:>8,} {format_cycles(figures[key + '_median']):>8} "
              f"{figures[key + '_max']:>8,}   {figures[key + '_median'] * us:,.1f}")
    print(f"dense / zero-skipping: {figures['dense_over_cycles']:.2f}x; "
          f"zero-skipping / lower bound: {figures['cycles_over_lower_bound']:.2f}x (median)")
    print("busy cycles per layer (median): " + ", ".join(f"{k} {v:,.0f}"
                                                         for k, v in figures["layer_busy_median"].items()))
    print("event-driven layers, busy cycles against their dense schedule (median): " + ", ".join(
        f"{k} {format_cycles(figures['layer_busy_median'][k])} / {v:,} "
        f"({v / figures['layer_busy_median'][k]:.2f}x fewer)" for k, v in figures["layer_dense_busy"].items()))
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    from golden.cli import run_main
    sys.exit(run_main(main))
