"""Board top-level: PLL clock with power-on reset, UART, protocol engine, the network, LEDs.

Two layers, so that the same logic is simulated and built:

- :class:`BoardCore` is board-independent: serial pins in and out, LED outputs, one clock domain. It holds the
  UART, a receive FIFO, the protocol engine (:class:`boards.engine.ProtocolEngine`) and the network
  (``hw.network.Network(plan, debug=False)``); when the plan keeps weights in SPRAM, the engine's load port feeds
  the network's and the engine knows the image's size and CRC (:func:`hw.weights.image`). The end-to-end
  simulation drives its ``rx`` pin and decodes its ``tx`` pin bit by bit.
- With ``flash_offset`` (``hw.build --flash``) and a weight image, :class:`BoardCore` also holds a
  :class:`boards.flash.FlashLoader` on its ``flash`` pins: after reset it reads the image from the SPI flash and
  feeds the same ``load`` port; its success marks the engine loaded (``preloaded``), and a UART load that starts
  meanwhile stops it (the engine's ``restart``), so the UART stays the fallback.
- :class:`BoardTop` puts a :class:`BoardCore` on a board: it makes the ``sync`` domain from the board's reference
  clock with the PLL (:class:`boards.pll.PLLDomain`, with its power-on reset) and connects the platform's UART and LED
  resources.
"""

from amaranth.hdl import ClockDomain, Module, Mux, Signal
from amaranth.lib import io, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from . import pll
from .engine import ProtocolEngine
from .protocol import LOAD_CHUNK, Identity, encode_identify
from .uart import UARTReceiver, UARTTransmitter, uart_divisor

__all__ = ["BoardCore", "BoardTop", "board_clock", "check_core_options", "padded_image_crc", "DEFAULT_TIMEOUT_US",
           "RX_FIFO_DEPTH", "FLASH_MS"]

#: A frame is abandoned after this long without a byte inside it (see docs/protocol.md).
DEFAULT_TIMEOUT_US = 10_000
#: Bytes buffered between the UART receiver and the protocol engine (while it replies or waits for the network).
#: The host sends a request only after the previous reply, so a few bytes suffice; they are kept in flip-flops.
RX_FIFO_DEPTH = 4
#: How long the result and error LEDs stay on after an event.
FLASH_MS = 50


def padded_image_crc(words):
    """The image CRC the board checks: :func:`hw.weights.image_crc` of ``words`` padded with zeros to whole
    :data:`boards.protocol.LOAD_CHUNK`-byte chunks (0 for an empty image)."""
    if not words:
        return 0
    from hw.weights import image_crc
    return image_crc(list(words) + [0] * (-len(words) % (LOAD_CHUNK // 2)))


def check_core_options(clock_hz, baud, timeout_us):
    """Check the serial options of a :class:`BoardCore` before it is built; return the UART divisor.

    Raises
    ------
    ValueError
        If ``baud`` cannot be made from ``clock_hz`` or the timeout is not positive.
    """
    divisor = uart_divisor(clock_hz, baud)
    if not timeout_us > 0:
        raise ValueError(f"timeout must be positive, not {timeout_us!r} us")
    return divisor


def board_clock(board, clock_mhz, baud=None, timeout_us=DEFAULT_TIMEOUT_US):
    """The clock of a :class:`BoardTop`, checked before anything is built: ``(PLL setting, baud rate)``.

    Raises
    ------
    boards.pll.PLLError
        If the board's PLL cannot make ``clock_mhz``.
    ValueError
        If the UART rate cannot be made from the clock.
    """
    config = pll.for_device(board.device).pll_config(board.clock_hz, clock_mhz * 1e6)
    baud = board.baud if baud is None else baud
    check_core_options(config.f_out, baud, timeout_us)
    return config, baud


class BoardCore(wiring.Component):
    """Board-independent logic around the network.

    Parameters
    ----------
    model : golden.manifest.Model
    clock_hz : float
        Frequency of the ``sync`` clock (for the UART divisor, the timeout and the identify reply).
    baud : int
        UART bit rate.
    timeout_us : float
        Inter-byte timeout inside a frame, in microseconds.
    params : dict, optional
        Overrides for ``hw.network.plan``.
    network : wiring.Component, optional
        The network to use instead of ``hw.network.Network(hw.plan.plan(model, params=params), debug=False)`` (for tests; it
        must have the same ``i`` and ``o`` ports).
    flash_offset : int, optional
        Load the weight image from the SPI flash at this byte address after reset (:mod:`boards.flash`); only with a
        weight image (None: no reader, the UART load only).

    Members
    -------
    rx : In(1)
        Serial input (idle high).
    tx : Out(1)
        Serial output (idle high).
    class_leds : Out(8)
        The class of the last result sent.
    result_led : Out(1)
        High for :data:`FLASH_MS` after a result is sent.
    error_led : Out(1)
        High for :data:`FLASH_MS` after an error reply.
    flash : Out(boards.flash.FLASH_PINS)
        Only with ``flash_offset``: the SPI flash pins.

    Raises
    ------
    ValueError
        If the baud rate cannot be made from the clock or a protocol parameter is out of range, or
        ``flash_offset`` is given for a design without a weight image.
    """

    def __init__(self, model, *, clock_hz, baud, timeout_us=DEFAULT_TIMEOUT_US, params=None, network=None,
                 flash_offset=None):
        self._divisor = check_core_options(clock_hz, baud, timeout_us)
        self._model = model
        self._clock_hz = float(clock_hz)
        self._baud = baud
        self._timeout_us = timeout_us
        self._timeout_cycles = max(2, int(round(timeout_us * 1e-6 * clock_hz)))
        self._flash_cycles = max(2, int(round(FLASH_MS * 1e-3 * clock_hz)))
        self._identity = Identity.for_model(model, clock_hz=clock_hz, baud=baud, timeout_us=timeout_us)
        if network is None:
            from hw.network import Network
            from hw.plan import plan
            network = Network(plan(model, params=params), debug=False)
        self._network = network
        members = {"rx": In(1, init=1), "tx": Out(1, init=1), "class_leds": Out(8), "result_led": Out(1),
                   "error_led": Out(1)}
        self._flash = None
        if flash_offset is not None:
            words = self.image
            if not words:
                raise ValueError(f"model {model.name} keeps no weights in SPRAM: there is nothing to load from the "
                                 f"flash (build without --flash)")
            from .flash import FLASH_PINS, FlashLoader
            self._flash = FlashLoader(words=words, clock_hz=clock_hz, offset=flash_offset)
            members["flash"] = Out(FLASH_PINS)
        super().__init__(members)

    @property
    def identity(self):
        """The :class:`boards.protocol.Identity` this design answers with."""
        return self._identity

    @property
    def divisor(self):
        """UART clock cycles per bit."""
        return self._divisor

    @property
    def timeout_cycles(self):
        return self._timeout_cycles

    @property
    def network(self):
        return self._network

    @property
    def flash_loader(self):
        """The :class:`boards.flash.FlashLoader` (None without ``flash_offset``)."""
        return self._flash

    @property
    def image(self):
        """The weight image the board must be loaded with (16-bit words; empty when it needs none)."""
        if "load" not in self._network.signature.members:
            return []
        from hw.weights import image
        return image(self._network.plan)

    def elaborate(self, platform):
        m = Module()
        from hw.layouts import result_layout

        m.submodules.uart_rx = uart_rx = UARTReceiver(divisor=self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTransmitter(divisor=self._divisor)
        m.submodules.rx_fifo = rx_fifo = SyncFIFO(width=8, depth=RX_FIFO_DEPTH)  # in flip-flops, no EBR
        c, h, w = self._model.input_shape
        words = self.image
        m.submodules.engine = engine = ProtocolEngine(
            input_len=c * h * w, result_layout=result_layout(self._model),
            identity=encode_identify(self._identity), timeout_cycles=self._timeout_cycles,
            image_words=len(words), image_crc=padded_image_crc(words))
        m.submodules.network = network = self._network
        if words and self._flash is None:
            wiring.connect(m, engine.load, network.load)
        elif words:
            # -- the flash reader and the UART load share the network's load port; a UART load stops the reader -----
            m.submodules.flash_loader = reader = self._flash
            wiring.connect(m, wiring.flipped(self.flash), reader.flash)
            m.d.comb += [
                network.load.words.valid.eq(Mux(reader.busy, reader.load.words.valid, engine.load.words.valid)),
                network.load.words.payload.eq(Mux(reader.busy, reader.load.words.payload,
                                                  engine.load.words.payload)),
                network.load.restart.eq(reader.load.restart | engine.load.restart),
                engine.load.words.ready.eq(network.load.words.ready),
                reader.load.words.ready.eq(network.load.words.ready),
                engine.load.full.eq(network.load.full),
                reader.load.full.eq(network.load.full),
                reader.abort.eq(engine.load.restart),
                engine.preloaded.eq(reader.done),
            ]

        # -- serial pins -> receiver -> FIFO -> engine -> transmitter -> serial pin ---------------------------
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        m.d.comb += [
            rx_fifo.w_data.eq(uart_rx.o.payload),
            rx_fifo.w_en.eq(uart_rx.o.valid),
            uart_rx.o.ready.eq(1),  # a byte that finds the FIFO full is lost; the frame then fails its CRC
        ]
        # One register between the FIFO and the engine (full rate), so that no path runs through both the FIFO's
        # read multiplexer and the engine's parser (the longest path of a design with a weight image otherwise).
        byte_valid = Signal()
        byte = Signal(8)
        take = rx_fifo.r_rdy & (~byte_valid | engine.i.ready)
        m.d.comb += [rx_fifo.r_en.eq(take), engine.i.valid.eq(byte_valid), engine.i.payload.eq(byte)]
        with m.If(take):
            m.d.sync += [byte_valid.eq(1), byte.eq(rx_fifo.r_data)]
        with m.Elif(engine.i.ready):
            m.d.sync += byte_valid.eq(0)
        wiring.connect(m, engine.o, uart_tx.i)
        # The input map passes a one-entry register (it takes a byte only when empty: half rate, far above the
        # UART's), so that no path runs from the network's input-ready through the engine's parser.
        feed_valid = Signal()
        feed_byte = Signal.like(network.i.payload)
        m.d.comb += [
            engine.features.ready.eq(~feed_valid),
            network.i.valid.eq(feed_valid),
            network.i.payload.eq(feed_byte),
        ]
        with m.If(~feed_valid):
            with m.If(engine.features.valid):
                m.d.sync += [feed_valid.eq(1), feed_byte.eq(engine.features.payload)]
        with m.Elif(network.i.ready):
            m.d.sync += feed_valid.eq(0)
        wiring.connect(m, network.o, engine.result)

        # -- LEDs ------------------------------------------------------------------------------------------------
        m.d.comb += self.class_leds.eq(engine.last_class)
        for pulse, led, name in ((engine.answered, self.result_led, "result"),
                                 (engine.error, self.error_led, "error")):
            m.d.comb += led.eq(_flash(m, pulse, self._flash_cycles, name))
        return m


def _flash(m, pulse, cycles, name):
    """A flag that is high for the ``cycles`` cycles after each one-cycle ``pulse`` (restarted by the next one).

    The timer counts up from ``2 ** width - cycles`` and the flag falls with the carry out of its adder, so that no
    comparison of the whole timer with zero is built (the cheaper form of a down-counter that ends at 0).
    """
    width = cycles.bit_length()
    on = Signal(name=f"{name}_led")
    timer = Signal(width, name=f"{name}_flash", reset_less=True)  # written before it is read
    step = Signal(width + 1, name=f"{name}_flash_inc")
    m.d.comb += step.eq(timer + 1)
    with m.If(pulse):
        m.d.sync += [on.eq(1), timer.eq(2 ** width - cycles)]
    with m.Elif(on):
        m.d.sync += [on.eq(~step[-1]), timer.eq(step)]
    return on


class BoardTop(wiring.Component):
    """A :class:`BoardCore` on a board, clocked by the PLL.

    Parameters
    ----------
    board : boards.board.Board
    model : golden.manifest.Model
    clock_mhz : float
        Requested clock; the PLL makes the closest frequency it can (:attr:`clock_hz`). The board's reference
        frequency itself (12 MHz) runs without the PLL.
    baud : int, optional
        UART bit rate (default: the board's).
    timeout_us : float
    params : dict, optional
        Overrides for ``hw.network.plan``.
    network : wiring.Component, optional
        The network, built by the caller (see :class:`BoardCore`); by default planned for the board's device.
    flash_offset : int, optional
        Read the weight image from the board's SPI flash at this address after reset (:mod:`boards.flash`; the
        board's ``flash`` resource).

    The options are checked by :func:`board_clock` before anything is built; call it first to refuse a clock or a
    rate without making a design.

    Raises
    ------
    boards.pll.PLLError
        If the PLL cannot make the clock.
    ValueError
        If the baud rate cannot be made from the clock, or ``flash_offset`` is given for a board without a flash
        resource or a design without a weight image.
    """

    def __init__(self, board, model, *, clock_mhz, baud=None, timeout_us=DEFAULT_TIMEOUT_US, params=None,
                 network=None, flash_offset=None):
        self._pll, self._baud = board_clock(board, clock_mhz, baud, timeout_us)
        self._board = board
        if network is None:  # planned for the board's device (BoardCore alone plans for the iCE40UP5K)
            from hw.network import Network
            from hw.plan import plan
            network = Network(plan(model, device=board.device, params=params), debug=False)
        self._clocks = pll.for_device(board.device)
        if flash_offset is not None:
            from .flash import check_flash_offset
            check_flash_offset(board, flash_offset)
        self._core = BoardCore(model, clock_hz=self._pll.f_out, baud=self._baud, timeout_us=timeout_us,
                               params=params, network=network, flash_offset=flash_offset)
        super().__init__({})

    @property
    def clock_hz(self):
        """The clock the PLL makes."""
        return self._pll.f_out

    @property
    def pll(self):
        return self._pll

    @property
    def baud(self):
        return self._baud

    @property
    def core(self):
        return self._core

    def elaborate(self, platform):
        m = Module()
        board = self._board

        # -- clock: reference -> PLL -> sync, with power-on reset ---------------------------------------------
        source = self._clocks.clock_source(m, platform.request(board.clock, 0, dir="-"), self._pll,
                                           board.pll_primitive)
        m.domains.sync = ClockDomain()  # its frequency reaches nextpnr as --freq (see flow.steps)
        m.submodules.pll = self._clocks.PLLDomain(config=self._pll, source=source, primitive=board.pll_primitive)

        m.submodules.core = core = self._core

        # -- UART ------------------------------------------------------------------------------------------------
        uart = platform.request(board.uart, 0, dir="-")
        m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(rx_buf.i), tx_buf.o.eq(core.tx)]

        # -- SPI flash (only with a flash reader): select, clock and data; write-protect and hold kept inactive ----
        if "flash" in core.signature.members:
            pins = platform.request(board.flash, 0, dir="-")
            for name, direction in (("cs", "o"), ("clk", "o"), ("copi", "o"), ("cipo", "i")):
                m.submodules[f"flash_{name}_buf"] = buf = io.Buffer(direction, getattr(pins, name))
                if direction == "o":
                    m.d.comb += buf.o.eq(getattr(core.flash, name))
                else:
                    m.d.comb += core.flash.cipo.eq(buf.i)
            for name in ("wp", "hold"):  # active low on the pads (the platform inverts): 0 is inactive
                if hasattr(pins, name):
                    m.submodules[f"flash_{name}_buf"] = buf = io.Buffer("o", getattr(pins, name))
                    m.d.comb += buf.o.eq(0)

        # -- LEDs ------------------------------------------------------------------------------------------------
        requested = {}

        def led(ref):
            key = tuple(ref[:2])
            if key not in requested:
                requested[key] = platform.request(*key, dir="-")
            port = requested[key]
            if len(ref) > 2:
                port = getattr(port, ref[2])
            name = "led_" + "_".join(str(part) for part in ref)
            m.submodules[name] = buf = io.Buffer("o", port)
            return buf.o

        for bit, ref in enumerate(board.leds.class_leds):
            m.d.comb += led(ref).eq(core.class_leds[bit])
        if board.leds.result_led is not None:
            m.d.comb += led(board.leds.result_led).eq(core.result_led)
        if board.leds.error_led is not None:
            m.d.comb += led(board.leds.error_led).eq(core.error_led)
        return m
