"""The steps of a board build, in order, each writing its artifact and a record into the build directory.

A step is a function of the :class:`Context` that reads what earlier steps left on it, does one thing, and returns
its record (plain data) and the files it wrote. :func:`run` runs a list of steps with a progress line each and
writes ``steps/NN-name.json`` per step: its title, status (``done``, ``skipped`` with the reason, or ``failed`` with
the error), seconds, artifacts and record. :data:`STEPS` is the board build:

======== ============================================ ===========================================================
step     does                                         writes
======== ============================================ ===========================================================
load     reads the model                              ``model.json`` (name, hash, shapes, layers)
plan     the hardware plan and the board's clock      ``plan.json``, ``plan.txt`` (the generator's summary)
fit      the pre-synthesis fit check                  ``fit.json`` (estimate per part, warnings)
golden   the golden model over the latency inputs     ``golden.npz`` (classes, labels)
timing   the cycle model over the golden spikes       ``latency.json``
generate the board top through the platform           ``top.il``, ``top.debug.v``, ``top.pcf``, ``build_top.sh``;
                                                      ``weights.bin`` when weights are in SPRAM (the image the
                                                      board loads at start-up, docs/hardware.md); with ``--flash``
                                                      also ``weights_flash.bin`` (for the SPI flash)
verify   RTL simulation of N samples (``--verify N``) ``verify/verification.json``
synth    synthesis (Yosys)                            ``top.json`` (Gowin ``top.syn.json``), ``top.rpt``
pnr      place and route (nextpnr), its progress      ``top.asc`` (ECP5 ``top.config``, Gowin ``top.pnr.json``),
                                                      ``top.tim``, ``top.report.json``
pack     the bitstream (icepack, ecppack, gowin_pack) ``top.bin`` (ECP5 ``top.bit``, Gowin ``top.fs``)
report   the reports; the clock check                 ``report.json``, ``report.md``
======== ============================================ ===========================================================
"""

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from . import design, tools
from .timing import latency, latency_inputs

__all__ = ["Step", "Context", "STEPS", "run", "BuildError", "OverBudgetError", "TimingError", "NAME", "WEIGHTS",
           "FLASH_WEIGHTS"]

#: Name of the design's files (``top.il``, ``top.bin`` ...).
NAME = "top"
#: The weight image beside the bitstream: 16-bit words, least significant byte first (:func:`hw.weights.image`).
WEIGHTS = "weights.bin"
#: The flash image with ``--flash`` (:func:`boards.flash.flash_image`: header and padded image), for the board's SPI
#: flash at :data:`boards.flash.FLASH_OFFSET`.
FLASH_WEIGHTS = "weights_flash.bin"


class BuildError(RuntimeError):
    """The build failed (a tool failed, or the design misses the requested clock)."""


class OverBudgetError(BuildError):
    """nextpnr could not place the design: it needs more cells than the device has (``utilization`` from its log)."""

    def __init__(self, message, utilization):
        super().__init__(message)
        self.utilization = utilization


class TimingError(BuildError):
    """nextpnr did not meet the requested clock; ``fmax_mhz`` is what it reached, ``report`` the build's report."""

    def __init__(self, message, fmax_mhz, report=None):
        super().__init__(message)
        self.fmax_mhz = fmax_mhz
        self.report = report


@dataclasses.dataclass
class Context:
    """What a build is asked to do, and what its steps have found so far.

    Members
    -------
    board : boards.board.Board
    model_dir, work : pathlib.Path
        The model, and the directory the steps write into.
    clock_mhz : float
    baud : int or None
    params : dict or None
    do_build : bool
        Run the tools (synthesis, place and route, pack).
    data_dir : pathlib.Path or None
    latency_limit : int or None
    seed : int
        The first nextpnr placement seed.
    seeds : int
        Placement seeds to try, from ``seed`` on, until nextpnr meets the clock.
    force : bool
    verify_samples : int
        Simulate the RTL on this many latency inputs (0: no verification).
    progress : flow.progress.Progress
    flash : bool
        ``--flash``: a design with a weight image reads it from the board's SPI flash after reset
        (:mod:`boards.flash`), and the build writes the flash image (:data:`FLASH_WEIGHTS`).
    """

    board: object
    model_dir: Path
    work: Path
    clock_mhz: float
    baud: int | None
    params: dict | None
    do_build: bool
    data_dir: Path | None
    latency_limit: int | None
    seed: int
    force: bool
    verify_samples: int
    progress: object
    seeds: int = 1
    flash: bool = False
    warnings: list = dataclasses.field(default_factory=list)
    state: dict = dataclasses.field(default_factory=dict)

    def write_json(self, name, value):
        """Write ``value`` as JSON into the build directory; return the file's name."""
        (self.work / name).write_text(json.dumps(value, indent=2) + "\n")
        return name


@dataclasses.dataclass(frozen=True)
class Step:
    """One step: ``run(ctx) -> (record, artifacts)``; ``skip(ctx)`` gives the reason to leave it out, or None."""

    name: str
    title: str
    run: object
    skip: object = None


# -- the steps ---------------------------------------------------------------------------------------------------

def load(ctx):
    from golden.manifest import load as load_model, model_hash

    if not (ctx.model_dir / "manifest.json").is_file():
        raise FileNotFoundError(f"{ctx.model_dir}: no model here (manifest.json missing); train one with "
                                f"`python -m train` or pass --model DIR")
    model = load_model(ctx.model_dir)
    ctx.state["model"] = model
    record = {"model": model.name, "model_hash": model_hash(model), "input_shape": list(model.input_shape),
              "time_steps": model.time_steps, "layers": [layer.name for layer in model.layers],
              "directory": str(ctx.model_dir)}
    return record, [ctx.write_json("model.json", record)]


def plan(ctx):
    from boards.top import board_clock
    from hw.generate import summary, summary_text

    model = ctx.state["model"]
    hw_plan = design.make_plan(model, device=ctx.board.device, params=ctx.params)
    pll, baud = board_clock(ctx.board, ctx.clock_mhz, ctx.baud)
    ctx.state.update(plan=hw_plan, pll=pll, baud=baud, clock_hz=pll.f_out, flash_offset=_flash_offset(ctx, hw_plan))
    data = summary(model, hw_plan, debug=False)
    (ctx.work / "plan.txt").write_text(summary_text(data))
    record = {"clock_mhz": pll.f_out / 1e6, "baud": baud, "pll": _pll_record(pll), "params": design.plan_params(model, ctx.board.device, ctx.params) or {},
              "memory_bits": data["memory_bits"], "ebr_estimate": data["ebr_estimate"]}
    return record, [ctx.write_json("plan.json", data), "plan.txt"]


def _flash_offset(ctx, hw_plan):
    """Where the design reads its weight image from the flash (``--flash`` and a weight image), else None.

    Raises
    ------
    ValueError
        If the board has no flash the design can read, or the image does not fit it.
    """
    if not ctx.flash:
        return None
    from boards.flash import FLASH_OFFSET, check_flash_offset, flash_image
    from hw.weights import image

    words = image(hw_plan)
    if not words:
        ctx.warnings.append("--flash: the model keeps no weights in SPRAM, so the design has no flash reader; "
                            "with --program only the bitstream goes into the flash")
        return None
    check_flash_offset(ctx.board, FLASH_OFFSET, len(flash_image(words)))
    return FLASH_OFFSET


def _pll_record(pll):
    return pll.record


def fit(ctx):
    need, warnings = design.check_fit(ctx.state["plan"], board=ctx.board, force=ctx.force,
                                      flash=ctx.state["flash_offset"] is not None)
    ctx.state["need"] = need
    ctx.warnings += warnings
    wide = ctx.board.device.wide_ram
    record = {"logic_cells": need.logic_cells, "logic_cells_available": ctx.board.device.logic_cells,
              "ebr": need.ebr, "ebr_available": ctx.board.device.block_ram.count,
              "spram": need.spram, "spram_available": wide.count if wide is not None else 0,
              "spram_users": [list(row) for row in need.spram_users],
              "breakdown": [list(row) for row in need.breakdown], "warnings": warnings, "forced": ctx.force}
    return record, [ctx.write_json("fit.json", record)]


def golden(ctx):
    from golden.network import run as run_golden

    model = ctx.state["model"]
    x, labels, source = latency_inputs(model, ctx.data_dir, ctx.latency_limit)
    if labels is None:
        ctx.warnings.append(f"latency from {source}")
    else:
        ctx.progress.note(f"inputs: {source}")
    result = run_golden(model, np.asarray(x))
    ctx.state.update(x=x, labels=labels, source=source, golden=result)
    arrays = {"classes": np.asarray(result.classes)}
    if labels is not None:
        arrays["labels"] = np.asarray(labels)
    np.savez_compressed(ctx.work / "golden.npz", **arrays)
    accuracy = None if labels is None else float(np.mean(np.asarray(result.classes) == np.asarray(labels)))
    return {"samples": int(len(x)), "source": source, "accuracy": accuracy}, ["golden.npz"]


def timing(ctx):
    model = ctx.state["model"]
    lat = latency(model, ctx.state["plan"], ctx.state["golden"], ctx.state["clock_hz"], labels=ctx.state["labels"])
    ctx.state["latency"] = lat
    record = {"cycles": lat["cycles"], "us": lat["us"], "inferences_per_s": lat["inferences_per_s"]}
    return record, [ctx.write_json("latency.json", lat)]


def generate(ctx):
    from boards.top import BoardTop

    model = ctx.state["model"]
    network = design.make_network(ctx.state["plan"], debug=False)
    top = BoardTop(ctx.board, model, clock_mhz=ctx.clock_mhz, baud=ctx.baud, params=ctx.params, network=network,
                   flash_offset=ctx.state["flash_offset"])
    platform = ctx.board.make_platform()
    # --freq: the target of every clock nextpnr cannot derive (a PLL output it derives from the pin's reference)
    nextpnr_opts = (f"--report {NAME}.report.json --timing-allow-fail --seed {int(ctx.seed)} "
                    f"--freq {top.clock_hz / 1e6:.6f}")
    ctx.progress.update("elaborating the design")
    files = platform.build(top, name=NAME, do_build=False, debug_verilog=True, nextpnr_opts=nextpnr_opts,
                           **design.synthesis_overrides(ctx.board.device))
    files.extract(ctx.work)
    script = (ctx.work / f"build_{NAME}.sh").read_text()
    ctx.state["commands"] = {line[2:line.index('"', 2)]: line for line in script.splitlines() if line.startswith('"$')}
    names = sorted(files.files)
    record = {"files": names, "nextpnr_options": nextpnr_opts, "weight_image": None}
    words = top.core.image
    if words:
        from boards.protocol import LOAD_CHUNK
        from boards.top import padded_image_crc

        (ctx.work / WEIGHTS).write_bytes(b"".join(int(w).to_bytes(2, "little") for w in words))
        record["weight_image"] = {"file": WEIGHTS, "bytes": 2 * len(words),
                                  "chunks": -(-2 * len(words) // LOAD_CHUNK), "crc": padded_image_crc(words)}
        names.append(WEIGHTS)
        offset = ctx.state["flash_offset"]
        if offset is None:
            ctx.warnings.append(f"weights in SPRAM: the board classifies only after its weight image is loaded "
                                f"({2 * len(words):,} bytes, {WEIGHTS} in the build directory); python -m "
                                f"boards.host loads it (--weights, or --params as for this build), or build with "
                                f"--flash to load it from the board's SPI flash")
        else:
            from boards.flash import flash_image

            data = flash_image(words)
            (ctx.work / FLASH_WEIGHTS).write_bytes(data)
            record["weight_image"]["flash"] = {"file": FLASH_WEIGHTS, "offset": offset, "bytes": len(data),
                                               "sck_hz": top.clock_hz / (2 * top.core.flash_loader.half_period)}
            ctx.warnings.append(f"weights in SPRAM, loaded from the SPI flash after reset: write {FLASH_WEIGHTS} "
                                f"({len(data):,} bytes) at {offset:#x} behind the bitstream (--program --flash "
                                f"does, or iceprog -o {offset // 1024}k {FLASH_WEIGHTS}); until then the board "
                                f"refuses to classify and takes the image over the UART (python -m boards.host)")
            names.append(FLASH_WEIGHTS)
    ctx.state["weight_image"] = record["weight_image"]
    return record, names


def verify(ctx):
    from sim.verify import verify as verify_rtl

    model = ctx.state["model"]
    count = min(ctx.verify_samples, len(ctx.state["x"]))
    ctx.progress.update(f"simulating {count} samples")
    result = verify_rtl(model, np.asarray(ctx.state["x"][:count]), run_dir=ctx.work / "verify", params=ctx.params)
    record = result.summary()
    if not result.passed:
        raise BuildError(f"the RTL differs from the golden model on {result.mismatches} of {count} samples; see "
                         f"verify/verification.json in the build directory")
    return record, ["verify/verification.json"]


def _tool(stage, news_file, news):
    def step(ctx):
        env = ctx.state.get("env")
        if env is None:
            try:
                env = ctx.state["env"] = tools.toolchain_env(ctx.board.device.tools)
            except tools.ToolError as error:
                raise BuildError(str(error)) from None
            for command, cache in tools.first_runs(ctx.board.device.tools, env):
                ctx.progress.note(f"note: first run of {command}: YoWASP prepares its machine code once (a minute "
                                  f"or two) and keeps it in {cache}")
        var = ctx.board.device.stages[stage]
        try:
            seconds = tools.run_tool(ctx.state["commands"][var], cwd=ctx.work, env=env, log=ctx.work / "build.log",
                                     title=f"{stage} ({Path(env[var]).name})", progress=ctx.progress,
                                     news_file=None if news_file is None else ctx.work / news_file, news=news)
        except tools.ToolError as error:
            _raise_over_budget(ctx, error)
            raise BuildError(str(error)) from None
        ctx.state["tool_seconds"] = ctx.state.get("tool_seconds", 0.0) + seconds
        return {"tool": Path(env[var]).name, "seconds": seconds}, _outputs(ctx, stage)
    return step


def _place_and_route(ctx):
    """nextpnr with the placement seeds ``seed, seed + 1, ...`` until one meets the clock (at most ``ctx.seeds``).

    Placement is deterministic for one seed; near the clock limit another seed often places the same netlist a
    megahertz or two faster, which is cheaper than giving up the clock. The record lists each seed and its Fmax.
    """
    from boards.report import design_fmax, parse_nextpnr_report

    var = ctx.board.device.stages["place and route"]
    command = ctx.state["commands"][var]
    flag = f"--seed {int(ctx.seed)} "
    clock_hz = ctx.state["clock_hz"]
    tried, seconds = [], 0.0
    for seed in range(int(ctx.seed), int(ctx.seed) + max(1, int(ctx.seeds))):
        ctx.state["commands"][var] = command.replace(flag, f"--seed {seed} ")
        record, outputs = _PNR(ctx)
        seconds += record["seconds"]
        report = ctx.work / f"{NAME}.report.json"
        fmax = design_fmax(parse_nextpnr_report(report)["fmax"], clock_hz) if report.exists() else None
        tried.append({"seed": seed, "fmax_mhz": None if fmax is None else fmax["achieved_mhz"]})
        if fmax is None or fmax["achieved_mhz"] >= clock_hz / 1e6 or seed == int(ctx.seed) + int(ctx.seeds) - 1:
            break
        ctx.progress.note(f"seed {seed}: Fmax {fmax['achieved_mhz']:.2f} MHz < {clock_hz / 1e6:g} MHz requested; "
                          f"placing again with seed {seed + 1}")
    ctx.state["seed"] = tried[-1]["seed"]
    return record | {"seconds": seconds, "seed": tried[-1]["seed"], "seeds_tried": tried}, outputs


def _outputs(ctx, stage):
    device = ctx.board.device
    wanted = {"synthesis": [f"{NAME}.json", f"{NAME}.syn.json", f"{NAME}.rpt"],
              "place and route": [device.pnr_output, f"{NAME}.tim", f"{NAME}.report.json"],
              "pack": [device.bitstream]}[stage]
    return [name for name in wanted if (ctx.work / name).exists()]


def _raise_over_budget(ctx, error):
    from boards.report import over_budget, parse_nextpnr_utilization

    tim = ctx.work / f"{NAME}.tim"
    if tim.exists():
        utilization = parse_nextpnr_utilization(tim)
        over = over_budget(utilization, ctx.board.device)
        if over:
            raise OverBudgetError(f"{error}{over}", utilization) from None


def report(ctx):
    from boards.report import make_report, parse_nextpnr_log, parse_nextpnr_report, parse_yosys_log, to_markdown

    model = ctx.state["model"]
    pnr = yosys = log_fmax = None
    if ctx.do_build:
        pnr = parse_nextpnr_report(ctx.work / f"{NAME}.report.json")
        log_fmax = parse_nextpnr_log(ctx.work / f"{NAME}.tim")
        yosys = parse_yosys_log(ctx.work / f"{NAME}.rpt", ctx.board.device.flip_flop_prefix)
    c, h, w = model.input_shape
    clock_hz = ctx.state["clock_hz"]
    result = make_report(board=ctx.board, model=model, clock_hz=clock_hz, need=ctx.state["need"], pnr=pnr,
                         log_fmax=log_fmax, yosys=yosys, lat=ctx.state["latency"],
                         latency_source=ctx.state["source"],
                         build_seconds=ctx.state.get("tool_seconds") if ctx.do_build else None,
                         baud=ctx.state["baud"], input_len=c * h * w)
    result["pll"] = _pll_record(ctx.state["pll"])
    result["weight_image"] = ctx.state.get("weight_image")
    if ctx.do_build:
        result["seed"] = ctx.state.get("seed", ctx.seed)
    result["warnings"] = list(ctx.warnings)
    ctx.state["report"] = result
    ctx.write_json("report.json", result)
    (ctx.work / "report.md").write_text(to_markdown(result, ctx.board.targets))
    if ctx.do_build and result["fmax"] is None:
        raise BuildError(f"nextpnr reported no clock frequency; see {NAME}.tim")
    if ctx.do_build and result["fmax"]["achieved_mhz"] < clock_hz / 1e6:
        fmax = result["fmax"]["achieved_mhz"]
        raise TimingError(f"nextpnr does not meet the clock: Fmax {fmax:.2f} MHz < {clock_hz / 1e6:.2f} MHz "
                          f"requested with placement seed {result['seed']} (build again with --clock auto, or "
                          f"--clock {int(fmax)} or lower, or more --seeds)", fmax, result)
    return {"fits": result["fits"], "logic_cells": result["logic_cells"], "fmax_mhz": result["fmax_mhz"]}, \
        ["report.json", "report.md"]


_PNR = _tool("place and route", f"{NAME}.tim", tools.nextpnr_news)


def _no_tools(ctx):
    return None if ctx.do_build else "--no-pnr"


def _no_verify(ctx):
    return None if ctx.verify_samples else "not asked for (--verify N)"


#: The board build, in order.
STEPS = (
    Step("load", "load the model", load),
    Step("plan", "plan the hardware and the clock", plan),
    Step("fit", "check the fit", fit),
    Step("golden", "run the golden model", golden),
    Step("timing", "cycle model (latency)", timing),
    Step("generate", "generate the design", generate),
    Step("verify", "verify the RTL (simulation)", verify, _no_verify),
    Step("synth", "synthesis", _tool("synthesis", f"{NAME}.rpt", tools.yosys_news), _no_tools),
    Step("pnr", "place and route", _place_and_route, _no_tools),
    Step("pack", "pack the bitstream", _tool("pack", None, None), _no_tools),
    Step("report", "write the reports", report),
)


def run(ctx, steps=STEPS):
    """Run ``steps`` on ``ctx`` in order, writing a record of each into ``ctx.work / "steps"``.

    A step that raises gets a ``failed`` record with the error, and the error propagates.
    """
    folder = ctx.work / "steps"
    folder.mkdir(exist_ok=True)
    for number, step in enumerate(steps, 1):
        entry = {"step": step.name, "title": step.title, "number": number}
        path = folder / f"{number:02d}-{step.name}.json"
        reason = step.skip(ctx) if step.skip is not None else None
        if reason:
            path.write_text(json.dumps(entry | {"status": "skipped", "reason": reason}, indent=2) + "\n")
            continue
        started = time.monotonic()
        try:
            with ctx.progress.step(f"[{number}/{len(steps)}] {step.title}"):
                record, artifacts = step.run(ctx)
        except BaseException as error:
            path.write_text(json.dumps(entry | {"status": "failed", "seconds": time.monotonic() - started,
                                                "error": f"{type(error).__name__}: {error}"}, indent=2) + "\n")
            raise
        path.write_text(json.dumps(entry | {"status": "done", "seconds": time.monotonic() - started,
                                            "artifacts": list(artifacts), "record": record},
                                   indent=2, default=_plain) + "\n")


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON data")
