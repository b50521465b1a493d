"""What a spikesmith board top needs to know about a board: a small description on top of an amaranth-boards platform.

A board is data (as in ``amaranth_boards``): the platform class, its device (``hw.device``: the FPGA family's facts
for the plan, the fit check, the build and the reports), the clock pin and how it reaches the PLL, the UART pins,
the LEDs and the default serial rate. :mod:`boards.top` turns a
:class:`Board` and a model into a design; the build (:mod:`flow`) looks boards up by name in :data:`boards.BOARDS`.
"""

import dataclasses

from hw.device import Device

__all__ = ["Board", "LEDMap"]


@dataclasses.dataclass(frozen=True)
class LEDMap:
    """Which platform LEDs show what.

    Members
    -------
    class_leds : tuple of LED references
        LEDs that show the last class in binary, least significant bit first. A reference is ``(name, number)``
        for a one-pin resource or ``(name, number, subsignal)`` for one colour of an RGB LED.
    result_led : LED reference or None
        Flashes when a result is sent.
    error_led : LED reference or None
        Flashes when an error reply is sent.
    """

    class_leds: tuple
    result_led: tuple | None = None
    error_led: tuple | None = None


@dataclasses.dataclass(frozen=True)
class Board:
    """Description of one board.

    Members
    -------
    name : str
        The name used on the command line (``--board``).
    title : str
        Human-readable name.
    platform : type
        The ``amaranth_boards`` platform class.
    clock : str
        Resource name of the reference clock.
    clock_hz : float
        Its frequency.
    pll_primitive : str
        ``"SB_PLL40_PAD"`` when the clock pin is the PLL's dedicated input, else ``"SB_PLL40_CORE"`` (the clock
        goes through a global buffer to the PLL's reference input).
    uart : str
        Resource name of the UART (``rx``/``tx`` subsignals), with number 0.
    baud : int
        Default UART bit rate.
    leds : LEDMap
    device : hw.device.Device
        The FPGA on the board: its resources for the plan and the fit check, its tools and report cells for the
        build, its family's clock module (:func:`boards.pll.for_device`).
    extra_resources : tuple
        Resources to add to the platform (``platform.add_resources``) before requesting pins.
    notes : str
        What a user must know to use the board (jumpers, adapters); printed by the build and in the docs.
    programmer : tuple of str
        ``openFPGALoader`` arguments that select the board's programming cable.
    flash : str or None
        Resource name of the configuration SPI flash with one data line each way (``cs``, ``clk``, ``copi``,
        ``cipo``: amaranth-boards' ``spi_flash_1x``) where the design can read its weight image after
        configuration (``hw.build --flash``, :mod:`boards.flash`); None when the board offers none.
    flash_bytes : int
        Size of that flash.
    clock_mhz : float
        The clock a build asks for unless told otherwise (``--clock``): one the default model meets there.
    targets : tuple of (str, str, str, float)
        The project's targets for a build of the board's default model, as ``(name, report key, "<=" or ">=",
        bound)``; the reports show each as met or missed (``boards.report.check_targets``).
    model : str
        The shipped model (a directory under ``models/``) that a build, the virtual board and the area report use
        on this board unless told otherwise (``--model``): the most robust one that fits the board and was measured
        there (``flow.build.default_model_dir``).
    """

    name: str
    title: str
    platform: type
    clock: str
    clock_hz: float
    pll_primitive: str
    uart: str
    baud: int
    leds: LEDMap
    device: Device
    extra_resources: tuple = ()
    notes: str = ""
    programmer: tuple = ()
    targets: tuple = ()
    clock_mhz: float = 24.0
    flash: str | None = None
    flash_bytes: int = 0
    model: str = "fsdd_scnn"

    def __repr__(self):
        return f"Board({self.name!r}: {self.title}, {self.device.name}-{self.device.package})"

    def make_platform(self):
        """A fresh platform instance with :attr:`extra_resources` added."""
        platform = self.platform()
        if self.extra_resources:
            platform.add_resources(list(self.extra_resources))
        return platform
