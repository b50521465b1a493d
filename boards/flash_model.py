"""A behavioural model of a 25-series SPI flash, for the simulations of :class:`boards.flash.FlashLoader`.

:class:`SPIFlashModel` is plain Python, stepped once per clock cycle of the design with the levels of the flash
pins after that cycle's edge (``step(cs, clk, copi) -> cipo``), so that the ``amaranth.sim`` unit tests
(``tests/test_flash.py``) and the cocotb board simulation (:mod:`boards.board_sim`) drive the same model. It knows
what the reader needs, as a W25Q-series part does it:

- SPI mode 0, most significant bit first: ``copi`` is taken on the rising edge of ``clk``, ``cipo`` changes after
  the falling edge; a transfer starts when ``cs`` (select, active high here) rises and ends when it falls;
- ``0xAB`` *release from deep power-down*: the part starts powered down (``asleep=True``), ignores every other
  command and leaves ``cipo`` high (pulled up) until a complete ``0xAB`` transfer has ended and ``wake_cycles`` more
  cycles have passed (a transfer that starts before then is ignored whole);
- ``0x03`` *read data*: a 24-bit address, then bytes from it for as long as the clock runs, wrapping at ``size``.

Unwritten bytes read ``0xFF``, as on an erased part.
"""

__all__ = ["SPIFlashModel"]


class SPIFlashModel:
    """A 25-series SPI flash (see the module docstring).

    Parameters
    ----------
    contents : dict of int to bytes
        Data written at byte addresses; the rest of the part is erased.
    size : int
        Bytes of the part (16 MiB: the W25Q128JV of the iCEBreaker).
    asleep : bool
        Start in deep power-down.
    wake_cycles : int
        Cycles after the wake command before the part answers (tRES1).

    Members
    -------
    commands : list of int
        The command byte of every transfer that reached one, in order (ignored ones included).
    reads : list of (int, int)
        ``(address, bytes)`` of every read the part answered.
    """

    WAKE = 0xAB
    READ = 0x03

    def __init__(self, contents=None, *, size=1 << 24, asleep=True, wake_cycles=0):
        self._data = {}
        for address, data in (contents or {}).items():
            for n, byte in enumerate(bytes(data)):
                if not 0 <= address + n < size:
                    raise ValueError(f"byte {address + n:#x} is outside the {size:,}-byte part")
                self._data[address + n] = byte
        self._size = size
        self._asleep = asleep
        self._wake_cycles = wake_cycles
        self._awake_at = None
        self._now = 0
        self._cs = self._clk = 0
        self._cipo = 1
        self._bits = 0
        self._shift = 0
        self._command = None
        self._address = 0
        self._answering = False
        self._deaf = asleep
        self.commands = []
        self.reads = []

    @property
    def awake(self):
        return not self._asleep

    @property
    def waking(self):
        """A wake command has ended and the part is not awake yet (its time counts in steps)."""
        return self._awake_at is not None

    def byte(self, address):
        return self._data.get(address % self._size, 0xFF)

    def step(self, cs, clk, copi):
        """Advance one cycle with the pins' new levels; return the level of ``cipo`` for the next cycle."""
        self._now += 1
        if self._asleep and self._awake_at is not None and self._now >= self._awake_at:
            self._asleep, self._awake_at = False, None
        cs, clk, copi = int(cs), int(clk), int(copi)
        if cs and not self._cs:
            self._bits, self._shift, self._command, self._address, self._answering = 0, 0, None, 0, False
            self._deaf = self._asleep     # a part still powered down ignores the whole transfer (but a wake)
        elif self._cs and not cs:
            if self._command == self.WAKE and self._bits == 8:
                self._awake_at = self._now + self._wake_cycles
            if self._answering:
                self.reads[-1] = (self._address, (self._bits - 32) // 8)
            self._cipo = 1
        elif cs and clk and not self._clk:
            self._rising(copi)
        elif cs and self._clk and not clk:
            self._falling()
        self._cs, self._clk = cs, clk
        return self._cipo

    def _rising(self, copi):
        self._shift = ((self._shift << 1) | copi) & 0xFF
        self._bits += 1
        if self._bits % 8:
            return
        if self._bits == 8:
            self._command = self._shift
            self.commands.append(self._shift)
        elif self._command == self.READ and self._bits <= 32:
            self._address = ((self._address << 8) | self._shift) & 0xFFFFFF
            if self._bits == 32 and not self._deaf:
                self._answering = True
                self.reads.append((self._address, 0))

    def _falling(self):
        if not self._answering:
            self._cipo = 1
            return
        k = self._bits - 32
        self._cipo = (self.byte(self._address + k // 8) >> (7 - k % 8)) & 1
