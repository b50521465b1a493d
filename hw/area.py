"""Logic per core: each module of a board top synthesized alone by Yosys, for finding where the cells go.

    python -m hw.area --board icebreaker                  # the shipped model
    python -m hw.area --board icebreaker --model DIR --params '{"conv1": {"spike_logic": "pipeline"}}' --json

nextpnr reports the whole design only; this command makes the board top as ``hw.build`` does, writes its RTLIL, and
runs ``synth_ice40 -dsp`` (the options of the real build) once per module of interest with that module as the top,
so every count includes the module's own submodules. The figures are Yosys cells (``SB_LUT4``, flip-flops,
``SB_CARRY``, block RAMs, DSPs), before packing: a logic cell of the iCE40 holds one LUT4 and one flip-flop, so the
placed design needs at least ``max(LUT4, FF)`` cells of a core and usually somewhat more. A module synthesized alone
keeps logic that the flattened design could share or remove across its ports, so the sum of the rows is close to,
not equal to, the ``whole design`` row.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["module_names", "synthesize", "area", "main"]


def module_names(rtlil):
    """Module names of an RTLIL text, in order (``top``, ``top.core``, ...)."""
    return [line.split()[1].lstrip("\\") for line in rtlil.splitlines() if line.startswith("module ")]


def _cores(names):
    """The modules worth a row: the network's cores, and the board's parts beside the network."""
    picked = []
    for name in names:
        parts = name.split(".")
        if parts[:4] == ["top", "core", "network", "core"] and len(parts) == 5:
            picked.append(name)
        elif parts[:2] == ["top", "core"] and len(parts) == 3 and parts[2] != "network":
            picked.append(name)
    return picked


def synthesize(workdir, module, env):
    """Cell counts of ``module`` of ``workdir/top.il`` synthesized alone (:func:`boards.report.parse_yosys_log`)."""
    from boards.report import parse_yosys_log

    script = workdir / "area.ys"
    script.write_text(f"read_rtlil top.il\nsynth_ice40 -dsp -top \\{module}\nstat\n")
    log = workdir / "area.log"
    log.unlink(missing_ok=True)
    done = subprocess.run([env["YOSYS"], "-q", "-l", log.name, script.name], cwd=workdir, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"yosys failed on {module}: {done.stderr.strip()[-500:]}")
    cells = parse_yosys_log(log)
    return {
        "lut4": cells.get("SB_LUT4", 0),
        "flip_flops": cells.get("flip_flops", 0),
        "carry": cells.get("SB_CARRY", 0),
        "ebr": cells.get("SB_RAM40_4K", 0),
        "dsp": cells.get("SB_MAC16", 0),
    }


def area(*, board, model_dir=None, params=None, progress=True):
    """Rows ``{"module", "lut4", "flip_flops", "carry", "ebr", "dsp"}``, one per core, then the whole design.

    Parameters
    ----------
    board : str or boards.board.Board
    model_dir : path, optional
        Default: the shipped model.
    params : dict, optional
        Overrides for ``hw.network.plan``.
    progress : bool
    """
    from boards import get_board
    from boards.top import BoardTop
    from golden.manifest import load
    from hw.build import DEFAULT_CLOCK_MHZ, default_model_dir, toolchain_env

    board = get_board(board) if isinstance(board, str) else board
    model = load(Path(model_dir) if model_dir is not None else default_model_dir())
    top = BoardTop(board, model, clock_mhz=DEFAULT_CLOCK_MHZ, params=params)
    plan = board.make_platform().build(top, name="top", do_build=False, synth_opts="-dsp")
    env = toolchain_env()
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(prefix="spikesmith-area-") as tmp:
        work = Path(tmp)
        plan.extract(work)
        cores = _cores(module_names((work / "top.il").read_text()))
        rows = []
        for module in tqdm(cores + ["top"], desc="yosys", unit="module", disable=not progress, leave=False):
            row = {"module": "whole design" if module == "top" else module.split(".")[-1]}
            row.update(synthesize(work, module, env))
            rows.append(row)
    return rows


def main(argv=None):
    from boards import BOARDS

    parser = argparse.ArgumentParser(prog="python -m hw.area", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    parser.add_argument("--model", metavar="DIR", help="model directory (default: the shipped model)")
    parser.add_argument("--params", metavar="JSON", help="hw.network.plan overrides per layer, as JSON")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON list on the last line")
    args = parser.parse_args(argv)
    params = json.loads(args.params) if args.params else None
    rows = area(board=args.board, model_dir=args.model, params=params, progress=sys.stderr.isatty())
    print(f"{'module':<16} {'LUT4':>6} {'FF':>6} {'CARRY':>6} {'EBR':>4} {'DSP':>4}")
    for row in rows:
        print(f"{row['module']:<16} {row['lut4']:>6,} {row['flip_flops']:>6,} {row['carry']:>6,} {row['ebr']:>4} "
              f"{row['dsp']:>4}")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(__import__("golden.cli").cli.run_main(main))
