"""The UPduino v3 (tinyVision.ai): iCE40UP5K-SG48, 12 MHz oscillator, RGB LED, no on-board UART to the FPGA.

- Clock: the 12 MHz oscillator on pin 20 (on a v3.0 solder the OSC jumper; the internal 48 MHz oscillator is not
  used because its +-10% tolerance breaks a UART). Pin 20 is not the PLL's dedicated pad, so the clock reaches the
  PLL through the fabric (``SB_PLL40_CORE``); the design runs at 21 MHz from it (``clock_mhz``, below).
- UART: the FT232H is wired to the SPI flash only, so the UART is on header pins: FPGA pin 4 is RX (connect the
  adapter's TX) and pin 3 is TX (the adapter's RX), 3.3 V levels; default 1,000,000 baud (use ``--baud 115200`` for an
  adapter that cannot do 1 Mbaud).
- SPI flash: 4 MiB on pins 14-17 (``spi_flash_1x``), the bitstream at 0 and, with ``hw.build --flash``, the weight
  image at 1 MiB (:mod:`boards.flash`).
- LEDs: the RGB LED shows the last class in binary (red = bit 0, green = bit 1, blue = bit 2).
"""

from amaranth.build import Attrs
from amaranth_boards.resources import UARTResource
from amaranth_boards.upduino_v3 import UpduinoV3Platform

from hw.device.ice40 import ICE40UP5K

from .board import Board, LEDMap

__all__ = ["UPDUINO_V3"]

UPDUINO_V3 = Board(
    name="upduino_v3",
    title="UPduino v3",
    platform=UpduinoV3Platform,
    clock="clk12",
    clock_hz=12e6,
    pll_primitive="SB_PLL40_CORE",
    uart="uart",
    baud=1_000_000,
    leds=LEDMap(class_leds=(("rgb_led", 0, "r"), ("rgb_led", 0, "g"), ("rgb_led", 0, "b"))),
    device=ICE40UP5K,
    extra_resources=(UARTResource(0, rx="4", tx="3", attrs=Attrs(IO_STANDARD="SB_LVCMOS", PULLUP=1)),),
    notes="Connect a 3.3 V USB-serial adapter: its TX to FPGA pin 4, its RX to FPGA pin 3, and GND. "
          "On a v3.0 board solder the OSC jumper to bring the 12 MHz clock to pin 20.",
    programmer=("-c", "ft232"),
    flash="spi_flash_1x",
    flash_bytes=4 << 20,
    model="fsdd_robust",
    # 21 MHz, not the iCEBreaker's 24: the 12 MHz clock reaches the PLL through the fabric, and fsdd_robust's
    # placements asked for 24 MHz reached 21.63 to 23.20 MHz over seeds 1-5; asked for 21 MHz, 24.26 at seed 1
    clock_mhz=21.0,
)
