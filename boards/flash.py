"""Start-up load of the weight image from the board's SPI flash, beside the bitstream.

A design that keeps weights in SPRAM (which the bitstream does not initialize) can load them over the UART
(:mod:`boards.engine`) or, built with ``python -m hw.build --flash``, read them by itself after reset from the
board's configuration flash, where ``hw.build`` writes the *flash image* (:func:`flash_image`) at
:data:`FLASH_OFFSET`, behind the bitstream.

**The flash image** is a header of :data:`HEADER_BYTES` bytes, then the weight image's bytes (each 16-bit word least
significant byte first) padded with zeros to whole :data:`boards.protocol.LOAD_CHUNK`-byte chunks, exactly the bytes
a UART load sends:

====== ====== ===============================================================
offset bytes  field
====== ====== ===============================================================
0      4      magic ``b"SSWI"`` (an erased flash reads ``FF FF FF FF``)
4      4      length of the padded image in bytes, unsigned little-endian
8      2      CRC-16/CCITT-FALSE of the padded image, little-endian
10     ...    the padded image
====== ====== ===============================================================

**The reader** (:class:`FlashLoader`) speaks the 25-series SPI command set in mode 0, one data line each way, its
clock a division of the design's: after reset it sends *release from deep power-down* (``0xAB``; the iCE40 may leave
its flash powered down after configuration, and the command is harmless to an awake one), waits ``wake_us``, then
sends *read* (``0x03`` and a 24-bit address) and reads the header and the image in one transfer. The header must
equal the one the bitstream was built for, byte for byte (so an erased flash, another file, or the image of another
build is refused before a word is written); then ``load.restart`` empties the network's SPRAMs, every word goes out
on ``load.words`` as it arrives (the path of a UART load), and the CRC of the bytes read is compared with the
bitstream's at the end. Only a match pulses ``done``; :class:`boards.top.BoardCore` passes it to the protocol engine,
which then counts the board as loaded. Anything else ends in ``failed``: the board keeps refusing inference (*no
weight image loaded*) and still takes a UART load. A UART load that starts while the reader runs (``abort``) ends
the reader at once, so that the two never write the SPRAMs together.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.weights import LOAD_SIGNATURE

from .engine import crc16_step
from .protocol import LOAD_CHUNK, crc16

__all__ = ["check_flash_offset", "FLASH_PINS", "FLASH_OFFSET", "BITSTREAM_BYTES", "MAGIC", "HEADER_BYTES", "WAKE", "READ", "SCK_HZ", "WAKE_US",
           "padded_bytes", "flash_header", "flash_image", "FlashLoader"]

#: The SPI flash pins as the reader drives them: select (active high; the platform inverts ``cs_n``), clock,
#: controller-out and controller-in data.
FLASH_PINS = wiring.Signature({"cs": Out(1), "clk": Out(1), "copi": Out(1), "cipo": In(1)})
#: Where ``hw.build --flash`` puts the flash image: 1 MiB, a 64 KiB-sector boundary far behind an iCE40UP5K
#: bitstream (104,090 bytes).
FLASH_OFFSET = 0x100000
#: Bytes of the bitstream at the start of the flash, per device (icepack writes 104,090 for the iCE40UP5K).
BITSTREAM_BYTES = {"iCE40UP5K": 104_090}
MAGIC = b"SSWI"
HEADER_BYTES = 10
#: 25-series commands: release from deep power-down, read data.
WAKE = 0xAB
READ = 0x03
#: Fastest SPI clock the reader makes (the design's clock divided by an even number); 0x03 reads run to 33 MHz or
#: more on 25-series parts, so this leaves room for board wiring.
SCK_HZ = 6e6
#: Wait after the wake command (tRES1 is 3 us on the W25Q128JV of the iCEBreaker; ten times that).
WAKE_US = 30.0


def padded_bytes(words):
    """The bytes of a weight image (16-bit words, least significant byte first) padded with zeros to whole
    :data:`boards.protocol.LOAD_CHUNK`-byte chunks: what a UART load sends and the flash image holds."""
    data = bytearray()
    for word in words:
        word = int(word)
        if not 0 <= word <= 0xFFFF:
            raise ValueError(f"image word {word} is not a 16-bit value")
        data += word.to_bytes(2, "little")
    return bytes(data + bytes(-len(data) % LOAD_CHUNK))


def flash_header(words):
    """The :data:`HEADER_BYTES`-byte header of the flash image of ``words`` (see the module docstring)."""
    data = padded_bytes(words)
    return MAGIC + len(data).to_bytes(4, "little") + crc16(data).to_bytes(2, "little")


def flash_image(words):
    """The flash image of ``words``: :func:`flash_header`, then :func:`padded_bytes`.

    Raises
    ------
    ValueError
        If the image is empty (a design without SPRAM weights has nothing to load) or a word is not 16 bits.
    """
    if not len(words):
        raise ValueError("the weight image is empty: the design keeps no weights in SPRAM, so nothing is loaded "
                         "from the flash")
    return flash_header(words) + padded_bytes(words)


def check_flash_offset(board, offset, image_bytes=0):
    """Check that ``board`` has a flash the design can read and that an image of ``image_bytes`` bytes at
    ``offset`` lies in it, on a 64 KiB sector boundary, behind the bitstream.

    Raises
    ------
    ValueError
        Naming the board and the bound.
    """
    if board.flash is None:
        raise ValueError(f"--flash: board {board.name} ({board.title}) gives no SPI flash resource the design can "
                         f"read its weight image from; load the image over the UART (python -m boards.host)")
    bitstream = BITSTREAM_BYTES.get(board.device.name, 0)
    if not isinstance(offset, int) or offset % 0x10000 or offset < bitstream:
        raise ValueError(f"flash offset must be a multiple of 65,536 at or above the {bitstream:,}-byte bitstream "
                         f"of the {board.device.name}, not {offset!r}")
    if offset + image_bytes > min(board.flash_bytes, 1 << 24):
        raise ValueError(f"a {image_bytes:,}-byte flash image at {offset:#x} does not fit the "
                         f"{board.flash_bytes:,}-byte flash of board {board.name}")


class FlashLoader(wiring.Component):
    """Reads the flash image after reset and loads it through ``load`` (see the module docstring).

    Parameters
    ----------
    words : list of int
        The weight image the design is built for (:func:`hw.weights.image`), not empty.
    clock_hz : float
        The design's clock.
    offset : int
        Byte address of the flash image in the flash (24 bits).
    sck_hz : float
        Highest SPI clock; the reader uses ``clock_hz / (2 * k)`` for the smallest whole ``k`` that stays at or
        below it.
    wake_us : float
        Wait between the wake command and the read.

    Members
    -------
    flash : Out(FLASH_PINS)
        The SPI flash pins.
    load : Out(hw.weights.LOAD_SIGNATURE)
        The image's words, to the network's ``load`` (``full`` is not looked at: words past the end are dropped by
        the network).
    abort : In(1)
        End the read at once (a UART load has started).
    busy : Out(1)
        The reader is working (from reset until ``done``, ``failed`` or ``abort``).
    done : Out(1)
        One-cycle pulse: the whole image was loaded and its CRC matches.
    failed : Out(1)
        The header did not match or the CRC was wrong (stays high).

    Raises
    ------
    ValueError
        If the image is empty, the offset is not a 24-bit address that leaves room for the image, or a frequency
        or time is not positive.
    """

    def __init__(self, *, words, clock_hz, offset=FLASH_OFFSET, sck_hz=SCK_HZ, wake_us=WAKE_US):
        try:
            image = flash_image(words)
            if not isinstance(offset, int) or not 0 <= offset <= (1 << 24) - len(image):
                raise ValueError(f"flash offset must be 0 ... {(1 << 24) - len(image):,} (a 24-bit address that "
                                 f"leaves room for the {len(image):,}-byte image), not {offset!r}")
            for name, value in (("clock", clock_hz), ("SPI clock", sck_hz), ("wake time", wake_us)):
                if not value > 0:
                    raise ValueError(f"{name} must be positive, not {value!r}")
        except (TypeError, ValueError):
            self._MustUse__silence = True  # refused, not an unused design
            raise
        self._header = image[:HEADER_BYTES]
        self._payload = len(image) - HEADER_BYTES
        self._crc = crc16(image[HEADER_BYTES:])
        self._offset = offset
        self._half = max(1, -(-int(round(clock_hz)) // int(round(2 * sck_hz))))
        self._wake = max(1, int(round(wake_us * 1e-6 * clock_hz)))
        super().__init__({
            "flash": Out(FLASH_PINS),
            "load": Out(LOAD_SIGNATURE),
            "abort": In(1),
            "busy": Out(1),
            "done": Out(1),
            "failed": Out(1),
        })

    @property
    def half_period(self):
        """Clock cycles per half period of the SPI clock."""
        return self._half

    @property
    def wake_cycles(self):
        return self._wake

    @property
    def read_bytes(self):
        """Bytes of the read transfer: command, address, header and image."""
        return 4 + HEADER_BYTES + self._payload

    def elaborate(self, platform):
        m = Module()
        pins = self.flash

        # -- one byte at a time over SPI mode 0: out on the falling edge, in on the rising edge, MSB first ------
        run = Signal()                          # the clock runs (a byte is being moved)
        div = Signal(range(self._half))
        tick = Signal()
        m.d.comb += tick.eq(run & (div == self._half - 1))
        with m.If(~run | tick):
            m.d.sync += div.eq(0)
        with m.Else():
            m.d.sync += div.eq(div + 1)
        out = Signal(8)
        received = Signal(8)
        bit = Signal(3)
        byte_done = Signal()                    # the eighth falling edge: ``received`` holds the byte
        next_out = Signal(8)                    # the byte that follows, loaded at byte_done
        m.d.comb += pins.copi.eq(out[7])
        with m.If(tick):
            with m.If(~pins.clk):
                m.d.sync += [pins.clk.eq(1), received.eq(Cat(pins.cipo, received[:7]))]
            with m.Else():
                m.d.sync += [pins.clk.eq(0), out.eq(out << 1), bit.eq(bit + 1)]
                m.d.comb += byte_done.eq(bit == 7)
        with m.If(byte_done):
            m.d.sync += out.eq(next_out)

        # -- command, address and the expected header: byte ``head`` of the read transfer -----------------------
        table = [READ, *self._offset.to_bytes(3, "big"), *self._header]
        head = Signal(range(len(table)))
        expected = Signal(8)
        m.d.comb += [expected.eq(0), next_out.eq(0)]
        with m.Switch(head):
            for n in range(len(table)):
                with m.Case(n):
                    m.d.comb += expected.eq(table[n] if n >= 4 else 0)
                    if n + 1 < 4:
                        m.d.comb += next_out.eq(table[n + 1])
        # -- a down-counter for the wake-up wait, then for the image's bytes: ``last`` when it is at 0 -------------
        rest = Signal(max(self._wake, self._payload).bit_length())
        rest_dec = Signal(len(rest) + 1)
        m.d.comb += rest_dec.eq(rest - 1)
        last = rest_dec[-1]

        # -- the image: words to the network, the CRC of its bytes ----------------------------------------------
        crc = Signal(16)
        crc_next = crc16_step(m, crc, received, name="flash_crc_next")
        low = Signal(8)
        odd = Signal()
        m.d.comb += self.load.words.payload.eq(Cat(low, received))
        mismatch = Signal()

        with m.FSM():
            with m.State("START"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += out.eq(WAKE)
                with m.If(self.abort):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += pins.cs.eq(1)
                    m.next = "WAKE"
            with m.State("WAKE"):
                m.d.comb += [self.busy.eq(1), run.eq(1)]
                with m.If(self.abort):
                    m.d.sync += [pins.cs.eq(0), pins.clk.eq(0)]
                    m.next = "IDLE"
                with m.Elif(byte_done):
                    m.d.sync += [pins.cs.eq(0), rest.eq(self._wake - 1)]
                    m.next = "PAUSE"
            with m.State("PAUSE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [rest.eq(rest_dec), out.eq(READ), head.eq(0), mismatch.eq(0)]
                with m.If(self.abort):
                    m.next = "IDLE"
                with m.Elif(last):
                    m.d.sync += pins.cs.eq(1)
                    m.next = "HEADER"
            with m.State("HEADER"):
                # the command and the address go out; the header comes in and is compared byte by byte
                m.d.comb += [self.busy.eq(1), run.eq(1)]
                with m.If(self.abort):
                    m.d.sync += [pins.cs.eq(0), pins.clk.eq(0)]
                    m.next = "IDLE"
                with m.Elif(byte_done):
                    m.d.sync += head.eq(head + 1)
                    bad = mismatch | ((head >= 4) & (received != expected))
                    m.d.sync += mismatch.eq(bad)
                    with m.If(head == len(table) - 1):
                        with m.If(bad):
                            m.d.sync += pins.cs.eq(0)
                            m.next = "FAILED"
                        with m.Else():
                            m.d.comb += self.load.restart.eq(1)
                            m.d.sync += [crc.eq(0xFFFF), odd.eq(0), rest.eq(self._payload - 1)]
                            m.next = "IMAGE"
            with m.State("IMAGE"):
                m.d.comb += [self.busy.eq(1), run.eq(1)]
                with m.If(self.abort):
                    m.d.sync += [pins.cs.eq(0), pins.clk.eq(0)]
                    m.next = "IDLE"
                with m.Elif(byte_done):
                    m.d.comb += self.load.words.valid.eq(odd)
                    m.d.sync += [crc.eq(crc_next), odd.eq(~odd), low.eq(received), rest.eq(rest_dec)]
                    with m.If(last):
                        m.d.sync += pins.cs.eq(0)
                        m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(crc == self._crc):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "FAILED"
            with m.State("FAILED"):
                m.d.comb += self.failed.eq(1)
            with m.State("IDLE"):
                pass
        return m
