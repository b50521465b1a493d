"""The ULX3S (Radiona): Lattice ECP5 LFE5U-85F or LFE5U-25F in CABGA381, 25 MHz clock, FT231X USB serial.

- Clock: the 25 MHz oscillator on pin G2, through an input buffer to the ``EHXPLLL`` PLL.
- UART: the FT231X on pins M1 (RX, into the FPGA) and L4 (TX), on the same USB port as the programmer; the FT231X
  takes rates up to 3 Mbaud, the default is 1,000,000 baud (use ``--baud 115200`` for a conservative serial stack).
- LEDs: the eight LEDs show the last class in binary on LEDs 0-3 (least significant bit on LED 0); LED 6 flashes
  for every result, LED 7 for every error reply.
- Programming: ``openFPGALoader -b ulx3s`` over the same USB port (``--program``; ``--flash`` writes the SPI flash).
"""

from amaranth_boards.ulx3s import ULX3S_25F_Platform, ULX3S_85F_Platform

from hw.device.ecp5 import LFE5U_25F, LFE5U_85F

from .board import Board, LEDMap

__all__ = ["ULX3S_85F", "ULX3S_25F"]

_LEDS = LEDMap(class_leds=(("led", 0), ("led", 1), ("led", 2), ("led", 3)), result_led=("led", 6),
               error_led=("led", 7))


def _ulx3s(name, title, platform, device, clock_mhz, targets):
    return Board(
        name=name,
        title=title,
        platform=platform,
        clock="clk25",
        clock_hz=25e6,
        pll_primitive="EHXPLLL",
        uart="uart",
        baud=1_000_000,
        leds=_LEDS,
        device=device,
        notes="One USB cable (the US1 port) programs the board and carries the UART.",
        programmer=("-b", "ulx3s"),
        targets=targets,
        clock_mhz=clock_mhz,
    )


#: ULX3S with the LFE5U-85F; targets of issue 15 for the default model. The clock is 60 MHz: at 65 MHz the
#: default model's conv products (built from adders) reach only 61.06-64.37 MHz over placement seeds 1-5, so the
#: board's own build command failed.
ULX3S_85F = _ulx3s("ulx3s-85f", "ULX3S (LFE5U-85F)", ULX3S_85F_Platform, LFE5U_85F, 60.0, (
    ("logic cells used (share)", "logic_share", "<=", 0.80),
    ("Fmax (MHz)", "fmax_mhz", ">=", 60.0),
    ("median latency (us)", "latency_us_median", "<=", 50.0),
))
#: ULX3S with the LFE5U-25F.
ULX3S_25F = _ulx3s("ulx3s-25f", "ULX3S (LFE5U-25F)", ULX3S_25F_Platform, LFE5U_25F, 50.0, (
    ("logic cells used (share)", "logic_share", "<=", 0.80),
    ("Fmax (MHz)", "fmax_mhz", ">=", 40.0),
))
