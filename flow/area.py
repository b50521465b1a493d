"""Logic per core: each module of a board top synthesized alone by Yosys, for finding where the cells go.

    python -m hw.area --board icebreaker                  # the shipped model
    python -m hw.area --board icebreaker --model DIR --params '{"conv1": {"spike_logic": "pipeline"}}' --json
    python -m hw.area --board icebreaker --model DIR --params '{"fc1": {"weights": "spram"}}' --flash

nextpnr reports the whole design only; this command makes the board top as ``hw.build`` does, writes its RTLIL, and
runs the device's synthesis with the options of the real build (``synth_ice40 -dsp``, ``synth_ecp5 -nodsp``,
``synth_gowin``) once per module of interest with that module as the top,
so every count includes the module's own submodules. The figures are Yosys cells (``SB_LUT4``, flip-flops,
``SB_CARRY``, block RAMs, DSPs), before packing: a logic cell of the iCE40 holds one LUT4 and one flip-flop, so the
placed design needs at least ``max(LUT4, FF)`` cells of a core and usually somewhat more. A module synthesized alone
keeps logic that the flattened design could share or remove across its ports, so the sum of the rows is close to,
not equal to, the ``whole design`` row.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .progress import Progress
from .tools import ToolError, first_runs, run_tool, toolchain_env, yosys_news

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


def synthesize(workdir, module, env, *, device, progress=None):
    """Cell counts of ``module`` of ``workdir/top.il`` synthesized alone (:func:`boards.report.parse_yosys_log`).

    Raises
    ------
    flow.tools.ToolError
        If Yosys fails.
    """
    from boards.report import parse_yosys_log
    from hw.exclusive import SYNTHESIS_SCRIPT

    script = workdir / "area.ys"
    script.write_text(f"read_rtlil top.il\n{SYNTHESIS_SCRIPT}\n{device.synthesis} {device.synth_options} "
                      f"-top \\{module}\nstat\n")
    log = workdir / "area.log"
    log.unlink(missing_ok=True)
    synthesis = device.stages["synthesis"]
    run_tool(f'"${synthesis}" -q -l {log.name} {script.name}', cwd=workdir, env=env,
             log=workdir / "area.out", title=f"yosys on {module}", progress=progress or Progress(enabled=False),
             news_file=log, news=yosys_news)
    cells = parse_yosys_log(log, device.flip_flop_prefix)
    return {
        "lut4": sum(n for cell, n in cells.items() if cell.startswith(device.lut_cell)),
        "flip_flops": cells.get("flip_flops", 0),
        "carry": cells.get(device.carry_cell, 0),
        "ebr": cells.get(device.block_ram.primitive, 0),
        "dsp": cells.get(device.dsp.primitive, 0) if device.dsp is not None else 0,
    }


def area(*, board, model_dir=None, params=None, progress=True, flash=False):
    """Rows ``{"module", "lut4", "flip_flops", "carry", "ebr", "dsp"}``, one per core, then the whole design.

    Parameters
    ----------
    board : str or boards.board.Board
    model_dir : path, optional
        Default: the board's shipped model (:func:`flow.build.default_model_dir`).
    params : dict, optional
        Hardware overrides per layer (``hw.params.parse_params``).
    progress : bool or flow.progress.Progress
    flash : bool
        As ``hw.build --flash``: a design with a weight image gets the SPI flash reader (row ``flash_loader``).

    Raises
    ------
    ValueError
        If the board, the model or an override is refused (the message names it).
    flow.tools.ToolError
        If a tool is missing or fails.
    """
    from boards.top import BoardTop
    from golden.manifest import load

    from . import design
    from .build import _board, default_model_dir

    reporter = progress if isinstance(progress, Progress) else Progress(enabled=bool(progress), prefix="area: ")
    board = _board(board)
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir(board)
    if not (model_dir / "manifest.json").is_file():
        raise FileNotFoundError(f"{model_dir}: no model here (manifest.json missing); pass --model DIR")
    env = toolchain_env(board.device.tools)
    with tempfile.TemporaryDirectory(prefix="spikesmith-area-") as tmp:
        work = Path(tmp)
        with reporter.step("generate the board top"):
            model = load(model_dir)
            plan = design.make_plan(model, device=board.device, params=params)
            network = design.make_network(plan, debug=False)
            offset = None
            if flash:
                from boards.flash import FLASH_OFFSET, check_flash_offset
                from hw.weights import image

                if not image(plan):
                    raise ValueError(f"--flash: model {model.name} keeps no weights in SPRAM, so the design has no "
                                     f"flash reader (place some there with --params)")
                check_flash_offset(board, FLASH_OFFSET)
                offset = FLASH_OFFSET
            top = BoardTop(board, model, clock_mhz=board.clock_mhz, params=params, network=network,
                           flash_offset=offset)
            board.make_platform().build(top, name="top", do_build=False,
                                        **design.synthesis_overrides(board.device)).extract(work)
        synthesis = board.device.stages["synthesis"]
        for command, cache in first_runs({synthesis: board.device.tools[synthesis]}, env):
            reporter.note(f"note: first run of {command}: YoWASP prepares its machine code once (a minute or two) "
                          f"and keeps it in {cache}")
        cores = _cores(module_names((work / "top.il").read_text()))
        rows = []
        for number, module in enumerate(cores + ["top"], 1):
            name = "whole design" if module == "top" else module.split(".")[-1]
            with reporter.step(f"[{number}/{len(cores) + 1}] yosys: {name}"):
                rows.append({"module": name} | synthesize(work, module, env, device=board.device, progress=reporter))
    return rows


def main(argv=None):
    """``python -m hw.area``; return the exit status."""
    from boards import BOARDS, MODEL_HELP
    from hw.params import ParamsError, add_params_argument, parse_params

    parser = argparse.ArgumentParser(prog="python -m hw.area", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    parser.add_argument("--model", metavar="DIR", help=MODEL_HELP)
    add_params_argument(parser)
    parser.add_argument("--flash", action="store_true",
                        help="with the SPI flash reader of hw.build --flash (a model with weights in SPRAM)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--json", action="store_true",
                        help="print the rows as one JSON list on the last line (no progress)")
    args = parser.parse_args(argv)
    try:
        params = parse_params(args.params)
        rows = area(board=args.board, model_dir=args.model, params=params, progress=not (args.quiet or args.json),
                    flash=args.flash)
    except (ParamsError, ValueError, FileNotFoundError, ToolError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1 if isinstance(error, ToolError) else 2
    print(f"{'module':<16} {'LUT4':>6} {'FF':>6} {'CARRY':>6} {'EBR':>4} {'DSP':>4}")
    for row in rows:
        print(f"{row['module']:<16} {row['lut4']:>6,} {row['flip_flops']:>6,} {row['carry']:>6,} {row['ebr']:>4} "
              f"{row['dsp']:>4}")
    if args.json:
        print(json.dumps(rows))
    return 0
