"""The iCEBreaker (1bitsquared): iCE40UP5K-SG48, 12 MHz clock, FT2232H USB serial.

- Clock: 12 MHz on pin 35, the PLL's dedicated input pad (``SB_PLL40_PAD``).
- UART: FT2232H channel B on pins 6 (RX, into the FPGA) and 9 (TX); the FT2232H takes any rate of 3 MHz / n, so the
  default of 1,000,000 baud is exact on the host side (use ``--baud 115200`` for a conservative serial stack).
- LEDs: the break-off PMOD's five LEDs (``led`` 2-6) show the last class in binary on LEDs 2-5 (least significant
  bit on LED 2); the green user LED flashes for every result, the red one for every error reply.
- SPI flash: a 16 MiB W25Q128JV on pins 14-17 (``spi_flash_1x``), holding the bitstream at 0 and, with
  ``hw.build --flash``, the weight image at 1 MiB (:mod:`boards.flash`).
"""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from hw.device.ice40 import ICE40UP5K

from .board import Board, LEDMap

__all__ = ["ICEBREAKER"]

ICEBREAKER = Board(
    name="icebreaker",
    title="iCEBreaker",
    platform=ICEBreakerPlatform,
    clock="clk12",
    clock_hz=12e6,
    pll_primitive="SB_PLL40_PAD",
    uart="uart",
    baud=1_000_000,
    leds=LEDMap(class_leds=(("led", 2), ("led", 3), ("led", 4), ("led", 5)),
                result_led=("led_g", 0), error_led=("led_r", 0)),
    device=ICE40UP5K,
    extra_resources=tuple(ICEBreakerPlatform.break_off_pmod),
    notes="Plug in the break-off PMOD (or leave it attached) to see the class on LEDs 2-5.",
    # openFPGALoader has no "icebreaker" board; its generic iCE40 entry drives the FT2232H's SPI (measured with
    # openFPGALoader 1.1.1 --list-boards, docs/fpga-families.md)
    programmer=("-b", "ice40_generic"),
    flash="spi_flash_1x",
    flash_bytes=16 << 20,
    # issue 16's targets for the default model, fsdd_robust, whose dense weights lie in the four SPRAMs; the smaller
    # fsdd_scnn met issue 14's (at most 80% of the logic cells, a median latency of at most 500 us)
    targets=(
        ("Fmax (MHz)", "fmax_mhz", ">=", 24.0),
        ("median latency (us)", "latency_us_median", "<=", 1000.0),
    ),
    model="fsdd_robust",
)
