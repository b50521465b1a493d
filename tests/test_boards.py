# amaranth: UnusedElaboratable=no
"""Tests of the board descriptions, the PLL divider computation and the board top (the fit check: test_hw_resources)."""

from pathlib import Path

import pytest

from boards import BOARDS, get_board
from boards.pll import PLLError, filter_range, pll_config
from hw.device.ice40 import ICE40UP5K
from hw_streams import simulator

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "models" / "tiny"


def _tiny():
    from golden.manifest import load

    if not (TINY / "manifest.json").is_file():
        pytest.skip(f"{TINY}: the tiny test model is missing")
    return load(TINY)


# -- PLL -------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("f_out, divr, divf, divq", [
    (24e6, 0, 63, 5),     # 12 * 64 / 32
    (48e6, 0, 63, 4),
    (36e6, 0, 47, 4),     # VCO 576 MHz
])
def test_pll_exact_settings(f_out, divr, divf, divq):
    config = pll_config(12e6, f_out)
    assert (config.divr, config.divf, config.divq) == (divr, divf, divq)
    assert config.f_out == f_out
    assert config.filter_range == 1  # 12 MHz phase detector


def test_pll_limits_hold_for_many_requests():
    for mhz in range(16, 100):
        config = pll_config(12e6, mhz * 1e6, tolerance=0.02)
        assert 10e6 <= config.f_pfd <= 133e6
        assert 533e6 <= config.f_vco <= 1066e6
        assert config.f_out == 12e6 * (config.divf + 1) / ((config.divr + 1) * 2 ** config.divq)
        assert abs(config.f_out - mhz * 1e6) <= 0.02 * mhz * 1e6


def test_pll_closest_setting_is_found():
    # 30 MHz from 12 MHz: VCO 960 = 12 * 80, / 32 = 30 exactly
    config = pll_config(12e6, 30e6)
    assert config.f_out == 30e6 and config.f_vco == 960e6


def test_pll_refuses_out_of_range():
    with pytest.raises(PLLError, match=r"PLL output 14 MHz is outside the iCE40 PLL's range of 16 ... 275 MHz "
                                       r"\(below it: the 12 MHz reference divided by 1 ... 12\)"):
        pll_config(12e6, 14e6)
    with pytest.raises(PLLError, match=r"PLL output 300 MHz is outside"):
        pll_config(12e6, 300e6)


def test_pll_bypass_at_the_reference_and_divided():
    config = pll_config(12e6, 12e6)
    assert config.direct and config.divide == 1 and config.f_out == 12e6
    config = pll_config(12e6, 6e6)
    assert config.direct and config.divide == 2 and config.f_out == 6e6


def test_fastest_clock():
    from boards.pll import achievable_clocks, fastest_clock

    assert fastest_clock(12e6, 23.9e6) == 23.625e6
    assert fastest_clock(12e6, 13e6) == 12e6
    assert fastest_clock(12e6, 8.5e6) == 6e6
    assert 12e6 / 7 in achievable_clocks(12e6, high=2e6)
    with pytest.raises(PLLError, match="Fmax of 0.50 MHz is below"):
        fastest_clock(12e6, 0.5e6)


def test_pll_refuses_inexact_with_tight_tolerance():
    with pytest.raises(PLLError, match=r"cannot make 25\.1 MHz from 12 MHz: the closest is 25\.1250 MHz"):
        pll_config(12e6, 25.1e6, tolerance=0.0001)


def test_pll_refuses_unusable_reference():
    with pytest.raises(PLLError, match="no PLL setting exists for a 5 MHz reference"):
        pll_config(5e6, 24e6)


def test_filter_range_table():
    assert [filter_range(f * 1e6) for f in (12, 20, 30, 50, 80, 120)] == [1, 2, 3, 4, 5, 6]


# -- boards ----------------------------------------------------------------------------------------------------------

def test_board_registry():
    assert set(BOARDS) == {"icebreaker", "upduino_v3", "ulx3s-85f", "ulx3s-25f", "tangnano9k"}
    for name in ("icebreaker", "upduino_v3"):
        board = BOARDS[name]
        assert board.device is ICE40UP5K
        assert board.make_platform().device == board.device.name and board.make_platform().package == "SG48"
    with pytest.raises(KeyError, match=r"unknown board 'nope' \(known: icebreaker, tangnano9k, ulx3s-25f, "
                                       r"ulx3s-85f, upduino_v3\)"):
        get_board("nope")


@pytest.mark.parametrize("name, mhz", [("icebreaker", 12), ("upduino_v3", 6)])
def test_board_top_without_pll(name, mhz):
    from boards.top import BoardTop

    board = BOARDS[name]
    top = BoardTop(board, _tiny(), clock_mhz=mhz)
    plan = board.make_platform().build(top, name="top", do_build=False, debug_verilog=True)
    assert "SB_PLL40" not in plan.files["top.debug.v"]
    assert ("SB_GB " in plan.files["top.debug.v"]) == (mhz == 6)
    assert top.clock_hz == mhz * 1e6 and top.core.divisor == mhz


@pytest.mark.parametrize("name", ["icebreaker", "upduino_v3"])
def test_board_top_writes_files(name, tmp_path):
    """The platform flow without the tools: RTLIL, Verilog, constraints with the UART and LED pins."""
    from boards.top import BoardTop

    board = BOARDS[name]
    top = BoardTop(board, _tiny(), clock_mhz=24)
    plan = board.make_platform().build(top, name="top", do_build=False, debug_verilog=True)
    pcf = plan.files["top.pcf"]
    expected = {"icebreaker": ["set_io clk12_0__io 35", "set_io uart_0__rx__io 6", "set_io uart_0__tx__io 9"],
                "upduino_v3": ["set_io clk12_0__io 20", "set_io uart_0__rx__io 4", "set_io uart_0__tx__io 3"]}
    for line in expected[name]:
        assert line in pcf
    verilog = plan.files["top.debug.v"]
    assert board.pll_primitive in verilog
    assert "SB_PLL40" in verilog and "DIVF" in verilog
    assert top.clock_hz == 24e6
    assert top.core.divisor == 24  # 1 Mbaud at 24 MHz


# -- end-to-end: the board logic with the real network, through the serial pins (cocotb + Verilator) ----------------

def _golden(model, x):
    from hw.cycles import predict
    from golden.network import run

    result = run(model, x)
    return result, predict(model, x).total


def test_board_end_to_end_serial(tmp_path):
    """Identify, inferences and a fuzz burst through the UART pins at bit level give the golden answers."""
    import random

    import numpy as np

    from boards import protocol as P
    from boards.board_sim import Step, simulate
    from golden.manifest import model_hash
    from golden.randmodel import random_inputs

    model = _tiny()
    x = random_inputs(model, 3, np.random.default_rng(7))
    golden, cycles = _golden(model, x)
    rng = random.Random(11)
    garbage = bytes(rng.randrange(256) for _ in range(40)) + P.SYNC + b"\x02\x60\x00" + bytes(20)
    broken = bytearray(P.encode_infer(x[0]))
    broken[10] ^= 0x40
    timeout = 1600
    steps = [
        Step(send=P.encode_frame(P.IDENTIFY), replies=1),
        *[Step(send=P.encode_infer(sample), replies=1) for sample in x],
        Step(send=bytes(broken), replies=1),                 # bad CRC: error, the network stays in step
        Step(send=P.encode_infer(x[2])[:40], replies=0),     # cut short: after the timeout the board pads the
        Step(idle=3 * timeout + 3000),                       # map with zeros, drops the result, answers an error
        Step(send=P.encode_frame(P.INFER, b"\x00" * 5), replies=1),  # wrong length
        Step(send=garbage, replies=0),                       # garbage ending inside a plausible frame
        Step(idle=2 * timeout),
        Step(send=P.encode_infer(x[1]), replies=1),          # answered correctly after the idle gap
    ]
    frames, report = simulate(model, steps, run_dir=tmp_path, timeout_cycles=timeout)
    replies = [P.decode_reply(frame, len(model.classes)) for frame in frames]
    identity = replies[0]
    assert identity.model_hash == model_hash(model) and identity.input_shape == tuple(model.input_shape)
    for k in range(3):
        assert replies[1 + k] == P.Result(int(golden.classes[k]), int(cycles[k]),
                                          tuple(int(v) for v in golden.readout[k]))
    size = int(np.prod(model.input_shape))
    assert replies[4] == P.ErrorReply(P.BAD_CRC, P.INFER, size)
    assert replies[5] == P.ErrorReply(P.TIMEOUT, P.INFER, size)
    assert replies[6] == P.ErrorReply(P.BAD_LENGTH, P.INFER, size)
    # the garbage may draw error replies (its fake header times out); the last reply is the right answer
    assert all(isinstance(r, P.ErrorReply) for r in replies[7:-1])
    assert replies[-1] == P.Result(int(golden.classes[1]), int(cycles[1]), tuple(int(v) for v in golden.readout[1]))


@pytest.mark.slow
def test_board_end_to_end_fsdd(tmp_path):
    """FSDD test recordings through the serial pins of the board logic with the shipped model."""
    import numpy as np

    from boards import protocol as P
    from boards.board_sim import Step, simulate
    from golden.manifest import load

    model_dir = REPO / "models" / "fsdd_scnn"
    from conftest import FSDD as data
    if not (model_dir / "manifest.json").is_file():
        pytest.skip(f"{model_dir}: the shipped model is missing")
    if not data.is_dir():
        pytest.skip(f"{data}: FSDD recordings are missing")
    from train.features import FeatureParams
    from train.fsdd import load_dataset

    model = load(model_dir)
    dataset = load_dataset(data, "official", FeatureParams.from_dict(model.features), fit=False, test_only=True,
                           progress=False)
    pick = np.linspace(0, len(dataset.x_test) - 1, 6).round().astype(int)
    x = dataset.x_test[pick]
    golden, cycles = _golden(model, x)
    frames, _ = simulate(model, [Step(send=P.encode_infer(sample), replies=1) for sample in x], run_dir=tmp_path)
    replies = [P.decode_reply(frame, len(model.classes)) for frame in frames]
    assert replies == [P.Result(int(golden.classes[k]), int(cycles[k]), tuple(int(v) for v in golden.readout[k]))
                       for k in range(len(x))]


def test_board_top_refuses_baud_the_clock_cannot_make():
    from boards.top import BoardTop, board_clock

    message = r"UART at 1,000,000 baud needs at least 4 clock cycles per bit; a 3 MHz clock gives 3\.00"
    with pytest.raises(ValueError, match=message):
        board_clock(BOARDS["icebreaker"], 3)  # before anything is built
    with pytest.raises(ValueError, match=message):
        BoardTop(BOARDS["icebreaker"], _tiny(), clock_mhz=3)
    config, baud = board_clock(BOARDS["icebreaker"], 24, 115_200)
    assert config.f_out == 24e6 and baud == 115_200


# -- LED flash -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cycles", [2, 5, 8, 13])
def test_led_flash_lasts_its_cycles_after_each_pulse(cycles):
    """The LED timer (an up-counter that ends on its carry) is high exactly ``cycles`` cycles after each pulse,
    restarted by a pulse while it runs, as a down-counter that ends at zero would be."""
    import random

    from amaranth.hdl import Module, Signal

    from boards.top import _flash

    m = Module()
    pulse = Signal()
    led = _flash(m, pulse, cycles, "test")
    rng = random.Random(cycles)
    pulses = [rng.random() < 0.08 for _ in range(40 * cycles)]
    expected, left = [], 0
    for p in pulses:            # what the LED shows in the cycle after each pulse value
        left = cycles if p else max(left - 1, 0)
        expected.append(left != 0)
    seen = []

    async def bench(ctx):
        for p in pulses:
            ctx.set(pulse, p)
            await ctx.tick()
            seen.append(bool(ctx.get(led)))

    sim = simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == expected
    assert any(seen) and not all(seen)
