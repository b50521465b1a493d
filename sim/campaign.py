"""``python -m sim.campaign``: verify the generator over many random models, not one.

Example::

    python -m sim.campaign --models 20 --samples 500 --seed 1

draws ``--models`` random valid models: from :func:`golden.randmodel.random_model` (a conv2d layer first, OR-pools or
none, zero to two hidden LIF dense layers, the integrating readout; random shapes, widths, time steps, leaks and
reset modes) and, for the last ``--deep`` of them (half by default), stacked ones from
:func:`golden.randmodel.random_deep_model` (one to three convolutions on spikes with and without pools, strides 1-2,
paddings 0-2, several dense layers, or a dense first layer); for each, random hardware parameters covering every
option of the plan (:func:`draw_params`: conv lanes, spike word width, spike logic ``pipeline`` or ``table``, input
memory ``bram`` or ``spram``, the lanes of every other core). Each design is built once (cached) and runs ``--samples`` input maps: the extreme maps of
:func:`sim.stimulus.extreme_inputs` and random maps. Every spike event, readout, class and cycle count is compared
with the golden and cycle models (:func:`sim.verify.verify`) under random input gaps and output backpressure.

The report gives models, samples, spike events compared, mismatches and simulated cycles per second (``--json``:
one JSON line at the end; ``campaign.json`` in the run directory either way). A model that fails is kept as a
reproducer in ``RUN_DIR/failures/<model>/``: the model directory, ``inputs.npy``, ``params.json`` and
``reproduce.json`` (seed, gaps, stalls and the command that runs it again). Exit status 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["draw_params", "run_campaign", "main"]

#: Spike bitmap word widths the campaign draws for the conv core.
WORD_BITS = (3, 8, 16)


#: The plan options :func:`draw_params` can draw.
OPTIONS = ("lanes", "word_bits", "spike_logic", "input_memory", "weights", "accumulators", "state")


def draw_params(model, rng, options=OPTIONS) -> dict:
    """Random hardware parameters for ``model`` over every option of the plan that the simulation can tell apart.

    The conv2d first layer: ``lanes`` (1 to the output channels), ``word_bits`` (:data:`WORD_BITS`),
    ``spike_logic`` (``"pipeline"`` or ``"table"``; ``"pipeline"`` where the layer has no spike table) and
    ``input_memory`` (``"spram"`` where the map fits the SPRAMs, else ``"bram"``); every other layer with lanes (a
    convolution on spikes, a dense first layer, dense and readout layers): ``lanes`` (1 to its output channels or
    features), where the kind places its weights (``weights``: ``"bram"``, or ``"spram"``: the harness loads
    the weight image first), its accumulators (``accumulators``: ``"registers"`` or ``"ram"``) and its membranes
    (``state``: ``"bram"`` or ``"spram"``, whose simulation model starts from garbage). Options not in ``options``
    are left to the plan's defaults (the same draws are made either way).
    """
    from hw.kinds import kinds_of

    params = {}
    for layer, kind in zip(model.layers, kinds_of(model.layers)):
        if kind.name == "conv2d":
            opts = {"lanes": int(rng.integers(1, layer.out_channels + 1)),
                    "word_bits": int(rng.choice(WORD_BITS)),
                    "spike_logic": str(rng.choice(["pipeline", "table"])),
                    "input_memory": str(rng.choice(["bram", "spram"]))}
            params[layer.name] = {k: v for k, v in opts.items() if k in options}
        elif "lanes" in kind.options:
            outputs = layer.out_channels if layer.type == "conv2d" else layer.out_features
            opts = {"lanes": int(rng.integers(1, outputs + 1))}
            if "weights" in kind.options:
                opts["weights"] = str(rng.choice(["bram", "spram"]))
            if "accumulators" in kind.options:
                opts["accumulators"] = str(rng.choice(["registers", "ram"]))
            if "state" in kind.options:
                opts["state"] = str(rng.choice(["bram", "spram"]))
            params[layer.name] = {k: v for k, v in opts.items() if k in options}
    return {name: opts for name, opts in params.items() if opts}


def _usable(model, params) -> dict:
    """``params`` with the options this model cannot take replaced by ones it can (``spike_logic="pipeline"`` for
    a layer without a spike table, ``input_memory="bram"`` for a map larger than the SPRAMs)."""
    from .verify import network_design

    fallbacks = {"table": ("spike_logic", "pipeline"), "SPRAM": ("input_memory", "bram")}
    for _ in range(len(fallbacks) + 1):
        try:
            network_design(model, params)._MustUse__silence = True
            return params
        except ValueError as exc:
            hit = [fix for word, fix in fallbacks.items() if word in str(exc)]
            if not hit:
                raise
            option, value = hit[0]
            for opts in params.values():
                if option in opts:
                    opts[option] = value
    raise AssertionError("unreachable")


def _inputs(model, samples: int, seed: int):
    from .stimulus import extreme_inputs, random_inputs
    extremes = extreme_inputs(model).take(samples)
    rest = samples - len(extremes)
    return extremes + random_inputs(model, rest, seed) if rest > 0 else extremes


def run_campaign(models: int, samples: int, *, seed: int = 0, run_dir: Path, cache_dir=None, gap=None,
                 stall=None, progress=None, jobs=None, options=OPTIONS, deep: int = 0) -> dict:
    """Draw, build and verify ``models`` random models on ``samples`` inputs each; return the report.

    Parameters
    ----------
    models, samples : int
        Number of random models, and of input maps per model (the extremes first).
    seed : int
        Seed of the whole campaign: model ``k`` is ``random_model(seed * 1000 + k)``, or
        ``random_deep_model(seed * 1000 + k)`` for the last ``deep`` models.
    run_dir : path
        Where the models, the runs and the reproducers of failures go.
    cache_dir : path, optional
        Build cache.
    gap, stall : optional
        As :func:`sim.verify.verify` (its defaults when omitted).
    progress : callable, optional
        ``progress(index, row)`` after each model.
    jobs : int, optional
        Simulator processes per model (see :func:`sim.verify.verify`).
    options : tuple of str
        The plan options to draw (:data:`OPTIONS`); the others keep the plan's defaults.
    deep : int
        How many of the models are stacked networks of manifest version 2 (:func:`golden.randmodel.
        random_deep_model`: convolutions on spikes with and without pools, dense first layers): the last ones.

    Returns
    -------
    dict
        ``models``, ``samples``, ``events_compared``, ``mismatches``, ``sim_cycles``, ``sim_seconds``,
        ``sim_cycles_per_second``, ``build_seconds``, ``wall_seconds``, ``rows`` (one per model) and ``failures``
        (reproducer directories).
    """
    from golden.manifest import load, save
    from golden.randmodel import random_deep_model, random_model

    from .verify import DEFAULT_GAP, DEFAULT_STALL, build_harness, verify

    gap = DEFAULT_GAP if gap is None else gap
    stall = dict(DEFAULT_STALL) if stall is None else dict(stall)
    run_dir = Path(run_dir)
    started = time.monotonic()
    rows, failures = [], []
    for k in range(models):
        model_seed = seed * 1000 + k
        path = run_dir / "models" / f"random_{model_seed}"
        save((random_deep_model if k >= models - deep else random_model)(model_seed), path)
        model = load(path)
        rng = np.random.default_rng(model_seed)
        params = _usable(model, draw_params(model, rng, options))
        stimulus = _inputs(model, samples, model_seed)
        t = time.monotonic()
        built = build_harness(model, params, cache_dir=cache_dir)
        build_seconds = built[1].seconds
        result = verify(model, stimulus.x, names=stimulus.names, params=params, run_dir=run_dir / "runs" / model.name,
                        seed=model_seed, gap=gap, stall=stall, built=built, jobs=jobs, cache_dir=cache_dir)
        summary = result.summary()
        row = {"model": model.name, "layers": [layer.type for layer in model.layers], "params": params,
               "samples": summary["samples"], "events_compared": summary["events_compared"],
               "mismatches": summary["mismatches"], "timed_out": summary["timed_out"],
               "sim_cycles": summary["sim_cycles"], "sim_seconds": summary["sim_seconds"],
               "build_seconds": round(build_seconds, 2), "wall_seconds": round(time.monotonic() - t, 2),
               "first_mismatch": summary["first_mismatch"]}
        if not result.passed:
            row["reproducer"] = str(_keep(run_dir / "failures" / model.name, path, stimulus.x, params,
                                          seed=model_seed, gap=gap, stall=stall, result=result))
            failures.append(row["reproducer"])
        rows.append(row)
        if progress is not None:
            progress(k, row)
    sim_seconds = sum(r["sim_seconds"] for r in rows)
    sim_cycles = sum(r["sim_cycles"] for r in rows)
    return {
        "models": len(rows),
        "samples": sum(r["samples"] for r in rows),
        "events_compared": sum(r["events_compared"] for r in rows),
        "mismatches": sum(r["mismatches"] for r in rows),
        "timed_out": sum(bool(r["timed_out"]) for r in rows),
        "sim_cycles": sim_cycles,
        "sim_seconds": round(sim_seconds, 2),
        "sim_cycles_per_second": round(sim_cycles / sim_seconds, 1) if sim_seconds else 0.0,
        "build_seconds": round(sum(r["build_seconds"] for r in rows), 2),
        "wall_seconds": round(time.monotonic() - started, 2),
        "layer_kinds": sorted({kind for r in rows for kind in r["layers"]}),
        "seed": seed,
        "options": list(options),
        "rows": rows,
        "failures": failures,
    }


def _keep(where: Path, model_dir: Path, x, params, *, seed, gap, stall, result) -> Path:
    """Copy what reproduces a failure into ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model_dir, where / "model", dirs_exist_ok=True)
    np.save(where / "inputs.npy", np.asarray(x, dtype=np.int8))
    (where / "params.json").write_text(json.dumps(params, indent=1))
    if result.waves is not None:
        shutil.copy2(result.waves, where / result.waves.name)
    (where / "reproduce.json").write_text(json.dumps({
        "seed": seed, "gap": gap, "stall": stall, "first_mismatch": result.report.get("first_mismatch"),
        "python": (f"sim.verify.verify(golden.manifest.load('{where / 'model'}'), numpy.load('{where / 'inputs.npy'}'), "
                   f"params={params!r}, seed={seed}, gap={gap}, stall={stall!r}, run_dir=...)"),
    }, indent=1))
    return where


def format_report(report: dict) -> str:
    """The human-readable summary of a campaign."""
    rows = [
        ("models", f"{report['models']:,} ({', '.join(report['layer_kinds'])})"),
        ("samples", f"{report['samples']:,}"),
        ("spike events compared", f"{report['events_compared']:,}"),
        ("mismatches", f"{report['mismatches']:,}" + (f", {report['timed_out']} model(s) timed out"
                                                      if report["timed_out"] else "")),
        ("simulated cycles", f"{report['sim_cycles']:,}"),
        ("simulated cycles per second", f"{report['sim_cycles_per_second']:,.0f}"),
        ("simulation / build / total", f"{report['sim_seconds']:.1f} s / {report['build_seconds']:.1f} s / "
                                       f"{report['wall_seconds']:.1f} s"),
    ]
    for path in report["failures"]:
        rows.append(("reproducer", path))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sim.campaign",
        description="Verify the generated RTL of many random models (every layer kind, every plan option) against "
                    "the golden and cycle models, on extreme and random inputs.",
        epilog="Exit status: 0 all equal, 1 a mismatch (reproducers in RUN_DIR/failures), 2 usage or build error.")
    p.add_argument("--models", type=int, required=True, help="number of random models")
    p.add_argument("--samples", type=int, required=True, help="input maps per model (the 5 extreme maps first)")
    p.add_argument("--seed", type=int, default=0, help="seed of the campaign (default 0)")
    p.add_argument("--run-dir", type=Path, default=None, help="default: a new temporary directory")
    p.add_argument("--cache", type=Path, default=None, help="build cache (default ~/.cache/spikesmith/sim)")
    p.add_argument("--jobs", type=int, default=None, help="simulator processes per model (default: see sim.verify)")
    p.add_argument("--options", default=",".join(OPTIONS),
                   help=f"plan options to draw, comma-separated (default: all of {','.join(OPTIONS)}); the others "
                        f"keep the plan's defaults")
    p.add_argument("--deep", type=int, default=None,
                   help="how many of the models are stacked (manifest version 2: convolutions on spikes, pools, a "
                        "dense first layer); the last ones (default: half of --models, rounded down)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON line at the end")
    args = p.parse_args(argv)
    deep = args.models // 2 if args.deep is None else args.deep
    if not 0 <= deep <= args.models:
        print(f"error: --deep must be from 0 to --models ({args.models}), not {deep}", file=sys.stderr)
        return 2
    options = tuple(o for o in args.options.split(",") if o)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        print(f"error: --options: unknown {', '.join(unknown)} (known: {', '.join(OPTIONS)})", file=sys.stderr)
        return 2
    for name in ("models", "samples"):
        if getattr(args, name) < 1:
            print(f"error: --{name} must be at least 1, not {getattr(args, name)}", file=sys.stderr)
            return 2
    from .build import BuildError
    from .runner import SimulationError
    from .toolchain import ToolchainError

    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="spikesmith-campaign-"))
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(total=args.models, desc="models", unit="model", file=sys.stderr)

    def progress(index, row):
        if bar is not None:
            bar.update(1)
            bar.set_postfix(samples=row["samples"], mismatches=row["mismatches"])
        else:
            print(f"model {index + 1}/{args.models} {row['model']}: {row['samples']} samples, "
                  f"{row['mismatches']} mismatches, {row['wall_seconds']:.1f} s", file=sys.stderr)

    print(f"campaign: {args.models} models ({deep} stacked) x {args.samples} samples, seed {args.seed}; run "
          f"directory {run_dir}",
          file=sys.stderr)
    try:
        report = run_campaign(args.models, args.samples, seed=args.seed, run_dir=run_dir, cache_dir=args.cache,
                              progress=progress, jobs=args.jobs, options=options, deep=deep)
    except (BuildError, ToolchainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"simulation failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    path = run_dir / "campaign.json"
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, path)
    print(format_report(report))
    print(f"report: {path}")
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "rows"}))
    return 0 if report["mismatches"] == 0 and not report["timed_out"] else 1


if __name__ == "__main__":
    from golden.cli import run_main
    sys.exit(run_main(main))
