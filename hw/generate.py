"""Generate the Verilog of a model's accelerator and a summary of the design.

    python -m hw.generate --model models/fsdd_scnn --out build/fsdd_scnn [--no-debug] [--params '{"fc1": {"lanes": 7}}']

writes ``OUT/<top>.v`` (the :class:`hw.network.Network` through ``amaranth.back.verilog``), ``OUT/summary.txt``
(per layer: neurons, lanes, memories and their bits, step buffers) and ``OUT/summary.json`` (the same as data). Every file
is written to a temporary name and renamed into place, so an interrupted run leaves no half-written output.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

__all__ = ["summary", "summary_text", "generate", "main"]


def _top_name(model):
    return "spikesmith_" + "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in model.name)


def summary(model, plan, *, debug=True):
    """The design summary as plain data (what ``summary.json`` holds).

    Parameters
    ----------
    model : golden.manifest.Model
    plan : hw.network.Plan
    debug : bool

    Returns
    -------
    dict
    """
    layers = []
    for lp in plan.layers:
        entry = {
            "name": lp.name, "kind": lp.kind, "in_shape": list(lp.in_shape), "out_shape": list(lp.out_shape),
            "neurons": lp.neurons, "lanes": lp.lanes, "cycles_per_spike": lp.cycles_per_spike, "lif_units": lp.lif_units,
            "memories": [dict(asdict(mem), bits=mem.bits, ebr=mem.ebr) for mem in lp.memories],
            "memory_bits": lp.memory_bits,
        }
        if lp.buffer_row is not None:
            entry["buffer"] = {"row": lp.buffer_row, "rows_per_step": lp.buffer_rows,
                               "bits": lp.buffer_row * lp.buffer_rows * model.time_steps}
        layers.append(entry)
    return {"model": model.name, "top": _top_name(model), "time_steps": model.time_steps,
            "input_shape": list(model.input_shape), "debug": debug, "layers": layers,
            "memory_bits": plan.memory_bits, "ebr_estimate": plan.ebr, "spram_estimate": plan.sprams}


def summary_text(data):
    """Human-readable form of :func:`summary`."""
    lines = [f"spikesmith design {data['top']} (model {data['model']}, T = {data['time_steps']}, "
             f"input {'x'.join(map(str, data['input_shape']))}, debug stream {'on' if data['debug'] else 'off'})",
             ""]
    head = f"{'layer':<10} {'kind':<9} {'in':>10} {'out':>10} {'neurons':>8} {'lanes':>6} {'cyc/spike':>9} {'LIF':>4}"
    lines += [head, "-" * len(head)]
    for layer in data["layers"]:
        lines.append(f"{layer['name']:<10} {layer['kind']:<9} {'x'.join(map(str, layer['in_shape'])):>10} "
                     f"{'x'.join(map(str, layer['out_shape'])):>10} {layer['neurons']:>8} "
                     f"{layer['lanes'] if layer['lanes'] is not None else '-':>6} "
                     f"{layer['cycles_per_spike'] if layer['cycles_per_spike'] is not None else '-':>9} "
                     f"{layer['lif_units']:>4}")
    lines += ["", f"{'memory':<24} {'kind':<10} {'width':>6} {'depth':>6} {'bits':>9} {'EBR':>4} {'SPRAM':>5}"]
    lines.append("-" * 70)
    for layer in data["layers"]:
        for mem in layer["memories"]:
            lines.append(f"{mem['name']:<24} {mem['kind']:<10} {mem['width']:>6} {mem['depth']:>6} "
                         f"{mem['bits']:>9,} {mem['ebr']:>4} {mem['sprams']:>5}")
    lines.append("-" * 70)
    lines.append(f"{'total':<24} {'':<10} {'':>6} {'':>6} {data['memory_bits']:>9,} {data['ebr_estimate']:>4} "
                 f"{data['spram_estimate']:>5}")
    lines += ["", "step buffers (spike bitmaps of a whole sample, one in front of each back-end core):"]
    for layer in data["layers"]:
        if "buffer" in layer:
            b = layer["buffer"]
            lines.append(f"  in front of {layer['name']}: {data['time_steps']} steps x {b['rows_per_step']} words "
                         f"x {b['row']} bits = {b['bits']:,} bits")
    lines.append("EBR: estimated iCE40 4-kbit blocks (best aspect ratio; registers and ROMs of at most 16 words "
                 "as logic); iCE40UP5K has 30. SPRAM: 16K x 16 blocks (banks side by side for wide words, stacked "
                 "for depth); iCE40UP5K has 4. Kind spram_rom: weights in SPRAM, loaded at start-up "
                 "(docs/hardware.md).")
    return "\n".join(lines) + "\n"


def _write_atomic(path, text):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def generate(model, out_dir, *, params=None, debug=True, progress=None):
    """Write the Verilog and the summary of ``model`` into ``out_dir`` (created if missing).

    Parameters
    ----------
    model : golden.manifest.Model
    out_dir : path
    params : dict, optional
        Hardware overrides per layer (``hw.params.parse_params``).
    debug : bool
        Include the debug spike stream.
    progress : flow.progress.Progress, optional
        Told about the two long parts: building the network, converting it to Verilog.

    Returns
    -------
    dict
        The summary (:func:`summary`), with ``verilog`` set to the path of the Verilog file.
    """
    from amaranth.back import verilog

    from .network import Network
    from .plan import plan

    stage = progress.step if progress is not None else _no_progress
    with stage("plan and build the network"):
        network = Network(plan(model, params=params), debug=debug)
        data = summary(model, network.plan, debug=debug)
    with stage("convert to Verilog (elaborate, Yosys)"):
        text = verilog.convert(network, name=data["top"], emit_src=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    verilog_path = out_dir / f"{data['top']}.v"
    _write_atomic(verilog_path, text)
    _write_atomic(out_dir / "summary.txt", summary_text(data))
    _write_atomic(out_dir / "summary.json", json.dumps(data, indent=2) + "\n")
    data["verilog"] = str(verilog_path)
    return data


@contextlib.contextmanager
def _no_progress(title):
    yield


def main(argv=None):
    """``python -m hw.generate``; return the exit status."""
    from .params import add_params_argument, parse_params

    parser = argparse.ArgumentParser(
        prog="python -m hw.generate",
        description="Generate the Verilog of a spikesmith model's accelerator and a summary of the design "
                    "(per layer: neurons, lanes, memories and their bits, step buffers).")
    parser.add_argument("--model", required=True, metavar="DIR", help="model directory (holds manifest.json)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    parser.add_argument("--no-debug", action="store_true", help="leave out the debug spike stream (board builds)")
    add_params_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)

    from golden.manifest import ManifestError, load
    model_dir = Path(args.model)
    if not (model_dir / "manifest.json").is_file():
        print(f"error: {model_dir} is not a model directory (no manifest.json)", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"error: output {out} exists and is not a directory", file=sys.stderr)
        return 2
    from flow.progress import Progress

    try:
        params = parse_params(args.params)
        model = load(model_dir)
        data = generate(model, out, params=params, debug=not args.no_debug,
                        progress=Progress(enabled=not args.quiet, prefix="generate: "))
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # the params parser's and the plan's refusals name the layer and the bound
        print(f"error: model {model_dir}: {e}", file=sys.stderr)
        return 2
    print(summary_text(data), end="")
    print(f"wrote {data['verilog']}, {out / 'summary.txt'} and {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    from golden.cli import run_main
    sys.exit(run_main(main))
