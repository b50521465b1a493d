"""The Tang Nano 9K (Sipeed): Gowin GW1NR-LV9QN88PC6/I5, 27 MHz clock, BL702 USB serial.

- Clock: the 27 MHz oscillator on pin 52, through an input buffer to the ``rPLL``.
- UART: the BL702's serial port on pins 18 (RX, into the FPGA) and 17 (TX). The default rate is a conservative
  115,200 baud for the BL702 bridge (not tried faster on a board; ``--baud`` sets another).
- LEDs: the six LEDs (active low, inverted by the platform) show the last class in binary on LEDs 0-3; LED 4
  flashes for every result, LED 5 for every error reply.
- Programming: ``openFPGALoader -b tangnano9k`` over the same USB port (``--program``; ``--flash`` writes the
  flash).

The build runs on :class:`TangNano9kHimbaechel`: amaranth 0.5's Gowin build script calls ``nextpnr-gowin``, which
the PyPI nextpnr no longer has; the Gowin architecture lives in ``nextpnr-himbaechel`` with its device options
given as ``--vopt``.
"""

from amaranth_boards.tang_nano_9k import TangNano9kPlatform

from hw.device.gowin import GW1NR_9

from .board import Board, LEDMap

__all__ = ["TangNano9kHimbaechel", "TANGNANO9K"]


class TangNano9kHimbaechel(TangNano9kPlatform):
    """The amaranth-boards Tang Nano 9K with place and route by ``nextpnr-himbaechel`` (environment
    ``NEXTPNR_HIMBAECHEL``) instead of the retired ``nextpnr-gowin``; synthesis and ``gowin_pack`` are as before."""

    _apicula_required_tools = ["yosys", "nextpnr-himbaechel", "gowin_pack"]
    _apicula_command_templates = [
        TangNano9kPlatform._apicula_command_templates[0],
        r"""
        {{invoke_tool("nextpnr-himbaechel")}}
            {{quiet("--quiet")}}
            {{get_override("nextpnr_opts")|options}}
            --log {{name}}.tim
            --device {{platform.part}}
            --vopt family={{platform._chipdb_device}}
            --vopt cst={{name}}.cst
            --json {{name}}.syn.json
            --write {{name}}.pnr.json
        """,
        TangNano9kPlatform._apicula_command_templates[2],
    ]


#: Tang Nano 9K; targets of issue 15 for the default model.
TANGNANO9K = Board(
    name="tangnano9k",
    title="Tang Nano 9K",
    platform=TangNano9kHimbaechel,
    clock="clk27",
    clock_hz=27e6,
    pll_primitive="rPLL",
    uart="uart",
    baud=115_200,
    leds=LEDMap(class_leds=(("led", 0), ("led", 1), ("led", 2), ("led", 3)), result_led=("led", 4),
                error_led=("led", 5)),
    device=GW1NR_9,
    notes="One USB-C cable programs the board and carries the UART (115,200 baud by default).",
    programmer=("-b", "tangnano9k"),
    clock_mhz=45.0,
    targets=(
        ("logic cells used (share)", "logic_share", "<=", 0.80),
        ("Fmax (MHz)", "fmax_mhz", ">=", 40.0),
        ("median latency (us)", "latency_us_median", "<=", 150.0),
    ),
)
