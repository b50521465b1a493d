"""FPGA families as data: what the plan, the fit check, the build and the reports need to know about a device.

One module per family (:mod:`hw.device.ice40`, :mod:`hw.device.ecp5`, :mod:`hw.device.gowin`). A module describes its parts as :class:`Device` values and
registers them in :data:`DEVICES`; a board names its device by ``Device.name``. Nothing here imports Amaranth: the plan
is pure Python, and the gateware that a family needs (its PLL, its SPRAM primitive) lives beside the cores that use it.
"""

from dataclasses import dataclass, field

__all__ = ["BlockRam", "WideRam", "Dsp", "Device", "DEVICES", "get"]


@dataclass(frozen=True)
class BlockRam:
    """The device's block RAM: ``count`` blocks of ``bits``, each usable as one of ``modes`` (width, depth).

    ``initialized``: the bitstream sets its contents (so it can hold ROMs). ``primitive``: the synthesis cell;
    ``cell``: nextpnr's name for it in the utilization report. ``bit_write``: a write may change single bits of a
    word (the iCE40's write mask); without it (ECP5, Gowin: byte enables at most) synthesis puts a memory written
    bit by bit into LUT RAM, so cores write whole words there.
    """
    count: int
    bits: int
    modes: tuple
    primitive: str
    cell: str
    initialized: bool = True
    bit_write: bool = True

    def blocks(self, width, depth):
        """Blocks a ``width`` x ``depth`` memory needs in its best mode (0 when empty)."""
        if width <= 0 or depth <= 0:
            return 0
        return min(-(-width // w) * -(-depth // d) for w, d in self.modes)


@dataclass(frozen=True)
class WideRam:
    """Large single-port RAMs (iCE40 SPRAM): ``count`` blocks of ``width`` x ``depth``, not initialized at
    configuration."""
    count: int
    width: int
    depth: int
    primitive: str
    cell: str
    initialized: bool = False

    @property
    def bits(self):
        return self.width * self.depth

    def blocks(self, width, depth):
        """Blocks a ``width`` x ``depth`` memory takes: ``ceil(width / self.width)`` banks side by side, each
        ``ceil(depth / self.depth)`` blocks deep (0 when empty)."""
        if width <= 0 or depth <= 0:
            return 0
        return -(-width // self.width) * -(-depth // self.depth)


@dataclass(frozen=True)
class Dsp:
    """Hard multipliers: ``count`` blocks of ``width`` x ``width`` bits."""
    count: int
    width: int
    primitive: str
    cell: str


@dataclass(frozen=True)
class Device:
    """One FPGA part in one package.

    Members
    -------
    family, name, package : str
        ``"ice40"``, ``"iCE40UP5K"``, ``"SG48"``.
    logic_cells : int
        LUT + flip-flop cells, and ``logic_cell``: nextpnr's name for them (LUT4s on families that count
        flip-flops apart).
    flip_flops : int
        Flip-flops, where not one per logic cell (0: as many as :attr:`logic_cells`).
    dsp_inference : bool
        Synthesis maps a core's ``*`` to the DSP blocks (False where :attr:`synth_options` leaves them out, and
        the conv core builds its products from adders by default).
    conv_multipliers : int
        Products per cycle a conv core may have by default (its lanes times taps): the DSP blocks, or a logic
        budget where they are not used (0: the DSP count).
    block_ram : BlockRam
    wide_ram : WideRam or None
    dsp : Dsp or None
    io, pll, global_buffers : int
    logic_calibration : float
        Ratio of the placed logic cells to the plan's per-core estimate, measured on real builds.
    board_logic : int
        Logic cells of the board logic around the network (UART, protocol engine, reset, LEDs).
    flash_reader_logic : int
        Logic cells of the SPI flash reader that a ``--flash`` build adds to the board logic
        (:class:`boards.flash.FlashLoader`), measured on placed builds.
    small_rom_words : int
        ROMs of at most this many words become logic, not block RAM.
    tools : dict of str to str
        Environment variable of each tool of the Amaranth build script and the PyPI (YoWASP) command it defaults to.
    report_cells : dict of str to str
        nextpnr's cell names and the label each gets in the reports.
    stages : dict of str to str
        The build's tool stages in order (``synthesis``, ``place and route``, ``pack``) and the variable of
        :attr:`tools` that runs each.
    io_cell, pll_cell, global_buffer_cell : str
        nextpnr's names of the IO, PLL and global buffer cells (for the counts the report shows beside its own).
    flip_flop_prefix : str
        The synthesis cells that are flip-flops start with this (Yosys' ``SB_DFF``, ``SB_DFFE`` ...).
    synthesis, synth_options : str
        Yosys' synthesis command for the family and the options every build gives it.
    lut_cell, carry_cell : str
        The synthesis cells of a LUT (a prefix: Gowin's ``LUT1`` ... ``LUT4``) and of a carry (for the per-core
        area).
    pnr_output, bitstream : str
        The files place and route and the packer write (``top.asc``, ``top.bin`` on the iCE40).
    max_groups : int
        Cycles per input spike that the dense layers' default lanes aim for (``hw.kinds.dense.default_lanes``).
    rom_block_slack : int
        Block RAMs a weight ROM may take beyond its fewest to reach :attr:`max_groups` (0: block RAM is scarce,
        the fewest blocks come first).
    accumulator_block_cells : int
        Flip-flops a dense or readout core's accumulators must save per block RAM they take for the plan to put
        them in block RAM by default (``hw.kinds.dense.default_accumulators``); 0: the device's logic cells per
        block RAM (:attr:`cells_per_block`), i.e. a block is worth its average share of the logic.
    """
    family: str
    name: str
    package: str
    logic_cells: int
    logic_cell: str
    block_ram: BlockRam
    wide_ram: WideRam | None
    dsp: Dsp | None
    io: int
    pll: int
    global_buffers: int
    logic_calibration: float
    board_logic: int
    small_rom_words: int
    tools: dict = field(default_factory=dict)
    report_cells: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    io_cell: str = ""
    pll_cell: str = ""
    global_buffer_cell: str = ""
    flip_flop_prefix: str = ""
    synthesis: str = ""
    synth_options: str = ""
    lut_cell: str = ""
    carry_cell: str = ""
    pnr_output: str = "top.asc"
    bitstream: str = "top.bin"
    max_groups: int = 4
    rom_block_slack: int = 0
    flip_flops: int = 0
    dsp_inference: bool = True
    conv_multipliers: int = 0
    accumulator_block_cells: int = 0
    flash_reader_logic: int = 0

    def __str__(self):
        return self.name

    @property
    def cells_per_block(self):
        """Logic cells per block RAM of the device (the iCE40UP5K: 5,280 / 30 = 176)."""
        return self.logic_cells // max(1, self.block_ram.count)

    @property
    def accumulator_threshold(self):
        """Flip-flops saved per block RAM above which accumulators go to block RAM by default
        (:attr:`accumulator_block_cells`, or :attr:`cells_per_block` when that is 0)."""
        return self.accumulator_block_cells or self.cells_per_block

    def cell_counts(self):
        """How many of each cell of :attr:`report_cells` the device has (nextpnr's ``available``)."""
        counts = {self.logic_cell: self.logic_cells, self.block_ram.cell: self.block_ram.count,
                  self.io_cell: self.io, self.pll_cell: self.pll, self.global_buffer_cell: self.global_buffers}
        if self.wide_ram is not None:
            counts[self.wide_ram.cell] = self.wide_ram.count
        if self.dsp is not None:
            counts[self.dsp.cell] = self.dsp.count
        return {cell: counts.get(cell) for cell in self.report_cells}


#: Every device known, by name (filled by the family modules).
DEVICES = {}


def register(device):
    DEVICES[device.name] = device
    return device


def get(name):
    """The :class:`Device` called ``name``."""
    try:
        return DEVICES[name]
    except KeyError:
        raise ValueError(f"unknown device {name!r} (known: {', '.join(sorted(DEVICES))})") from None


from . import ecp5, gowin, ice40  # noqa: E402,F401  (register their devices)
