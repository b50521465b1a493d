# amaranth: UnusedElaboratable=no
"""ECP5 (ULX3S) and Gowin (Tang Nano 9K): devices, default lanes, PLLs, boards, programming and the whole board top
simulated through its pins; the bitstream builds are `slow`."""

import json
from pathlib import Path

import numpy as np
import pytest

from boards import BOARDS
from boards.pll import ecp5, for_device, gowin
from hw.device import get

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "models" / "tiny"
SHIPPED = REPO / "models" / "fsdd_scnn"
FAMILY_BOARDS = ["ulx3s-85f", "ulx3s-25f", "tangnano9k"]


def _load(path):
    from golden.manifest import load

    if not (path / "manifest.json").is_file():
        pytest.skip(f"{path}: the model is missing")
    return load(path)


# -- devices and the plan's defaults ------------------------------------------------------------------------------

def test_device_facts():
    for name, luts, blocks, dsp in (("LFE5U-25F", 24288, 56, 28), ("LFE5U-85F", 83640, 208, 156),
                                    ("GW1NR-9", 8640, 26, 40)):
        device = get(name)
        assert (device.logic_cells, device.block_ram.count, device.dsp.count) == (luts, blocks, dsp)
        assert device.block_ram.bits == 18432 and device.wide_ram is None
        # 18 kbit blocks: 512 x 36 (a 56-bit wide ROM of 1,536 words takes 2 x 3), 2048 x 9 for bytes
        assert device.block_ram.blocks(56, 1536) == 6 and device.block_ram.blocks(8, 2048) == 1
    assert get("GW1NR-9").flip_flops == 6480 and get("LFE5U-85F").bitstream == "top.bit"


def test_default_lanes_follow_the_device():
    """The iCE40UP5K keeps its lanes; the larger parts get more where their DSPs and block RAM allow."""
    from hw.plan import plan

    model = _load(SHIPPED)
    lanes = {name: {lp.name: lp.lanes for lp in plan(model, device=name).layers if lp.lanes}
             for name in ("iCE40UP5K", "LFE5U-25F", "LFE5U-85F", "GW1NR-9")}
    assert lanes["iCE40UP5K"] == {"conv1": 1, "fc1": 7, "out": 2}
    assert lanes["LFE5U-85F"] == {"conv1": 4, "fc1": 28, "out": 10}   # 36 of 156 multipliers, one pass
    assert lanes["LFE5U-25F"] == {"conv1": 2, "fc1": 14, "out": 5}    # 3 lanes (27 of 28) would still take 2 passes
    assert lanes["GW1NR-9"] == {"conv1": 2, "fc1": 14, "out": 5}      # block RAM: 22 of 26
    assert plan(model, device="GW1NR-9").ebr <= 26 and plan(model, device="LFE5U-85F").ebr <= 208
    # an override still wins
    assert plan(model, device="LFE5U-85F", params={"conv1": {"lanes": 1}}).layer("conv1").lanes == 1


def test_the_larger_parts_are_faster_in_cycles():
    from golden.randmodel import random_inputs
    from hw.cycles import predict

    model = _load(SHIPPED)
    x = random_inputs(model, 4, np.random.default_rng(3))
    cycles = {name: predict(model, x, device=name).total.sum()
              for name in ("iCE40UP5K", "GW1NR-9", "LFE5U-85F")}
    assert cycles["LFE5U-85F"] < cycles["GW1NR-9"] < cycles["iCE40UP5K"]


# -- PLLs ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("f_out, dividers", [
    (60e6, (5, 12, 10)),    # as yowasp-ecppll -i 25 -o 60: VCO 600 MHz
    (50e6, (1, 2, 12)),
    (100e6, (1, 4, 6)),
])
def test_ecp5_pll_settings(f_out, dividers):
    config = ecp5.pll_config(25e6, f_out)
    assert (config.clki_div, config.clkfb_div, config.clkop_div) == dividers
    assert config.f_out == f_out and config.f_vco == 600e6
    assert config.parameters["p_CLKOP_CPHASE"] == dividers[2] // 2 - 1


@pytest.mark.parametrize("f_out, dividers", [
    (81e6, (0, 2, 8)),      # as gowin_pll -i 27 -o 81
    (54e6, (0, 1, 16)),
    (45e6, (2, 4, 16)),
])
def test_gowin_pll_settings(f_out, dividers):
    config = gowin.pll_config(27e6, f_out)
    assert (config.idiv_sel, config.fbdiv_sel, config.odiv_sel) == dividers
    assert config.f_out == pytest.approx(f_out)


@pytest.mark.parametrize("module, f_in", [(ecp5, 25e6), (gowin, 27e6)])
def test_pll_limits_hold(module, f_in):
    clocks = module.achievable_clocks(f_in, low=10e6, high=200e6)
    assert clocks == sorted(clocks) and len(clocks) > 50 and f_in in clocks
    for f in clocks[::7]:
        config = module.pll_config(f_in, f)
        assert abs(config.f_out - f) <= 0.005 * f
        if not config.direct:
            assert module.PFD_MIN_HZ <= config.f_pfd <= module.PFD_MAX_HZ
            assert module.VCO_MIN_HZ <= config.f_vco <= module.VCO_MAX_HZ
    assert module.pll_config(f_in, f_in).direct and module.fastest_clock(f_in, 61e6) <= 61e6


def test_pll_refusals_name_the_bound():
    with pytest.raises(ecp5.PLLError, match=r"^PLL output 500 MHz is outside the ECP5 PLL's range of 3\.125 \.\.\. "
                                            r"400 MHz$"):
        ecp5.pll_config(25e6, 500e6)
    with pytest.raises(gowin.PLLError, match=r"^the Gowin PLL cannot make 40 MHz from 27 MHz: the closest is "
                                             r"40\.5000 MHz \(1\.25% off, at most 0\.50%\)$"):
        gowin.pll_config(27e6, 40e6)
    with pytest.raises(ValueError, match=r"^ECP5 PLL primitive must be 'EHXPLLL', not 'rPLL'$"):
        ecp5.PLLDomain(config=ecp5.pll_config(25e6, 50e6), source=None, primitive="rPLL")
    with pytest.raises(TypeError, match=r"^config must be a Gowin PLLConfig"):
        gowin.PLLDomain(config=ecp5.pll_config(25e6, 50e6), source=None)


# -- boards ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, device, part, pins", [
    ("ulx3s-85f", "LFE5U-85F", "LFE5U-85F", ['LOCATE COMP "clk25_0__io" SITE "G2"',
                                            'LOCATE COMP "uart_0__rx__io" SITE "M1"',
                                            'LOCATE COMP "uart_0__tx__io" SITE "L4"']),
    ("ulx3s-25f", "LFE5U-25F", "LFE5U-25F", ['LOCATE COMP "clk25_0__io" SITE "G2"']),
    ("tangnano9k", "GW1NR-9", "GW1NR-LV9QN88PC6/I5", ['IO_LOC "clk27_0__io" 52', 'IO_LOC "uart_0__rx__io" 18',
                                                     'IO_LOC "uart_0__tx__io" 17']),
])
def test_board_top_on_the_platform(name, device, part, pins):
    """The platform flow without the tools: the family's PLL with its dividers, the pins in the constraints."""
    from boards.top import BoardTop

    board = BOARDS[name]
    assert board.device is get(device) and for_device(board.device).__name__.endswith(board.device.family)
    top = BoardTop(board, _load(TINY), clock_mhz=board.clock_mhz)
    platform = board.make_platform()
    plan = platform.build(top, name="top", do_build=False, debug_verilog=True)
    assert (platform.part if board.device.family == "gowin" else platform.device) == part
    constraints = plan.files["top.lpf" if board.device.family == "ecp5" else "top.cst"]
    for line in pins:
        assert line in constraints
    verilog = plan.files["top.debug.v"]
    assert f"{board.pll_primitive} " in verilog
    if board.device.family == "gowin":
        # the Gowin script runs nextpnr-himbaechel with the device options, not the retired nextpnr-gowin
        script = plan.files["build_top.sh"]
        assert '"$NEXTPNR_HIMBAECHEL"' in script and "--vopt family=GW1N-9C" in script and "nextpnr-gowin" not in script


def test_program_command_per_board(tmp_path):
    from flow.build import BuildError, program_command

    expected = {"icebreaker": ["-b", "ice40_generic"], "ulx3s-85f": ["-b", "ulx3s"], "ulx3s-25f": ["-b", "ulx3s"],
                "tangnano9k": ["-b", "tangnano9k"], "upduino_v3": ["-c", "ft232"]}
    for name, board in BOARDS.items():
        out = tmp_path / name
        out.mkdir()
        with pytest.raises(BuildError, match=rf"{board.device.bitstream}: no bitstream for {name} there"):
            program_command(out, name)
        (out / board.device.bitstream).write_bytes(b"\0")
        command = program_command(out, name, flash=True, loader="ofl")
        assert command == ["ofl", *expected[name], "-f", str(out / board.device.bitstream)]


def test_toolchain_names_the_package_to_install(monkeypatch):
    from flow import tools

    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    monkeypatch.setattr(tools.sys, "executable", "/nonexistent/python")
    with pytest.raises(tools.ToolError, match=r"gowin_pack is not installed and GOWIN_PACK is not set: install the "
                                              r"PyPI toolchain \(pip install apycula\)"):
        tools.toolchain_env({"GOWIN_PACK": "gowin_pack"}, {})


def test_report_of_a_placed_ecp5_build():
    """nextpnr's ECP5 cell names reach the report's resources and summary."""
    from boards.report import make_report

    board = BOARDS["ulx3s-85f"]
    pnr = {"utilization": {"TRELLIS_COMB": {"used": 9000, "available": 83640},
                           "DP16KD": {"used": 30, "available": 208},
                           "MULT18X18D": {"used": 36, "available": 156}},
           "fmax": {"$glbnet$cd_sync.clk": {"achieved": 70.5, "constraint": 65.0}}}
    report = make_report(board=board, model=_load(TINY), clock_hz=65e6, pnr=pnr, yosys={"flip_flops": 5000})
    assert (report["logic_cells"], report["ebr"], report["dsp"], report["fmax_mhz"]) == (9000, 30, 36, 70.5)
    assert report["resources"][0] == {"resource": "LUT4s", "cell": "TRELLIS_COMB", "used": 9000, "available": 83640}
    assert report["resources"][1]["cell"] == "TRELLIS_FF*" and report["fits"] is True


# -- the whole board top through its pins (cocotb + Verilator, vendor cells as models) ------------------------------

@pytest.mark.parametrize("name, clock_mhz", [("ulx3s-85f", 50.0), ("tangnano9k", 54.0)])
def test_board_top_through_the_uart_pins(name, clock_mhz, tmp_path):
    """Identify, inferences and a bad frame through the board's own pads: PLL (model), power-on reset, IO buffers,
    the LEDs' polarity; every answer is the golden model's."""
    from boards import protocol as P
    from boards.board_sim import Step
    from boards.top_sim import simulate_top
    from golden.manifest import model_hash
    from golden.network import run
    from golden.randmodel import random_inputs
    from hw.cycles import predict

    board = BOARDS[name]
    model = _load(TINY)
    x = random_inputs(model, 2, np.random.default_rng(7))
    golden = run(model, x)
    cycles = predict(model, x, device=board.device).total
    broken = bytearray(P.encode_infer(x[0]))
    broken[10] ^= 0x40
    steps = [Step(send=P.encode_frame(P.IDENTIFY), replies=1),
             *[Step(send=P.encode_infer(sample), replies=1) for sample in x],
             Step(send=bytes(broken), replies=1),
             Step(send=P.encode_infer(x[0]), replies=1)]
    result = simulate_top(board, model, steps, run_dir=tmp_path, clock_mhz=clock_mhz)
    replies = [P.decode_reply(frame, len(model.classes)) for frame in result.frames]
    identity = replies[0]
    assert identity.model_hash == model_hash(model) and identity.clock_hz == int(clock_mhz * 1e6)
    expected = [P.Result(int(golden.classes[k]), int(cycles[k]), tuple(int(v) for v in golden.readout[k]))
                for k in range(2)]
    assert replies[1:3] == expected
    assert replies[3] == P.ErrorReply(P.BAD_CRC, P.INFER, int(np.prod(model.input_shape)))
    assert replies[4] == expected[0]
    assert result.class_leds == int(golden.classes[0])  # the LEDs show the last class, whatever their polarity


# -- bitstreams ------------------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILY_BOARDS)
def test_full_build_of_tiny_model(name, tmp_path):
    """The whole flow with the PyPI tools: synthesis, place and route, bitstream, report."""
    from flow.build import build

    board = BOARDS[name]
    result = build(board=name, model_dir=TINY, out=tmp_path / "b", progress=False, seeds=1)
    assert (result.out / board.device.bitstream).stat().st_size > 10_000
    report = json.loads((result.out / "report.json").read_text())
    assert report["placed"] and report["fmax_mhz"] >= report["clock_mhz"]
    assert 0 < report["logic_cells"] < board.device.logic_cells and report["ebr"] is not None
    assert report["flip_flops"] > 0  # Yosys' statistics of the family are read


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILY_BOARDS)
def test_full_build_with_accumulators_in_block_ram(name, tmp_path):
    """The dense and readout accumulators in block RAM (whole-word writes, a transparent read port) place and route
    on every family."""
    from flow.build import build

    board = BOARDS[name]
    params = {"fc1": {"accumulators": "ram", "lanes": 2}, "out": {"accumulators": "ram", "lanes": 1}}
    result = build(board=name, model_dir=TINY, out=tmp_path / "b", progress=False, seeds=1, params=params)
    assert (result.out / board.device.bitstream).stat().st_size > 10_000
    report = json.loads((result.out / "report.json").read_text())
    assert report["placed"] and report["fmax_mhz"] >= report["clock_mhz"]


# -- the conv core's whole-word bitmap writes (block RAM without bit writes) ---------------------------------------

@pytest.mark.parametrize("seed, lanes, word_bits, logic, stall_out", [
    (1, None, 16, "table", 0.0),
    (1, None, 16, "pipeline", 0.3),
    (3, 2, 5, "table", 0.4),
    (5, 1, 1, "pipeline", 0.0),
])
def test_conv_core_writes_whole_words(seed, lanes, word_bits, logic, stall_out):
    """On the ECP5 and Gowin the spike bitmaps are written a whole word at a time (no write mask, so they can go to
    block RAM), with the golden spikes and the cycle model's count."""
    from golden.randmodel import random_inputs, random_model
    from hw.plan import plan_layer
    from test_hw_conv import check

    model = random_model(seed)
    layer = model.layers[0]
    lanes = None if lanes is None else min(lanes, layer.out_channels)
    options = {"word_bits": word_bits, "spike_logic": logic} | ({} if lanes is None else {"lanes": lanes})
    plan = plan_layer(layer, model.input_shape, model.time_steps, on_map=True, device="GW1NR-9", options=options)
    ice40 = plan_layer(layer, model.input_shape, model.time_steps, on_map=True, options=options)
    assert plan.whole_words and not ice40.whole_words
    spikes = check(model, random_inputs(model, 3, np.random.default_rng(seed)), lanes=lanes, word_bits=word_bits,
                   spike_logic=logic, dsp_multipliers=4, stall_out=stall_out, device="GW1NR-9", seed=seed)
    assert spikes.any()


def test_yosys_statistics_of_the_other_families(tmp_path):
    """Gowin's and the ECP5's cells (``DFFRE``, ``TRELLIS_FF``) are counted, the statistics' own words are not."""
    from boards.report import parse_yosys_log

    log = tmp_path / "top.rpt"
    log.write_text("2.50. Printing statistics.\n\n=== top ===\n\n     4502 cells\n        9 ports\n"
                   "     1752   LUT4\n       18   MULT9X9\n     3371 submodules\n     1120   ALU\n      218   DFF\n"
                   "     1324   DFFRE\n       12   TRELLIS_FF\n\n=== design hierarchy ===\n     4502 top\n")
    cells = parse_yosys_log(log, "DFF")
    assert cells == {"LUT4": 1752, "MULT9X9": 18, "ALU": 1120, "DFF": 218, "DFFRE": 1324, "TRELLIS_FF": 12,
                     "flip_flops": 1542}
    assert parse_yosys_log(log, "TRELLIS_FF")["flip_flops"] == 12


def test_cli_builds_at_the_boards_clock(tmp_path, capsys):
    """Without --clock, the build asks for the board's own clock (the one its figures were measured at)."""
    from flow.cli import main

    _load(TINY)
    for name, clock in (("ulx3s-85f", 60.0), ("tangnano9k", 45.0)):
        assert main(["--board", name, "--model", str(TINY), "--no-pnr", "--json", "--out", str(tmp_path / name)]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["board"] == name and summary["clock_mhz"] == clock == BOARDS[name].clock_mhz
