"""An 8N1 UART: receiver and transmitter with byte streams.

The line format is 8 data bits, no parity, one stop bit, least significant bit first, idle high. Both directions run
from one integer ``divisor`` (clock cycles per bit) computed by :func:`uart_divisor` from the clock and the baud
rate, which refuses a pair whose rate error would break the framing.

- :class:`UARTReceiver`: a two flip-flop synchronizer on the line, start bit detection with a check at the middle of
  the start bit (a glitch shorter than half a bit is ignored), every data bit sampled at its middle, and a stop bit
  check: a byte whose stop bit reads 0 is dropped with a ``frame_error`` pulse, and the receiver then waits for the
  line to return high (a break or a wrong baud rate cannot make it emit bytes on every falling edge).
- :class:`UARTTransmitter`: takes one byte per transfer on ``i`` and shifts it out.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["uart_divisor", "UARTReceiver", "UARTTransmitter", "MAX_BAUD_ERROR"]

#: Largest relative error between the requested and the generated baud rate that :func:`uart_divisor` accepts. Over
#: the 9.5 bits from the start edge to the middle of the stop bit, 2% leaves half of the margin to the other end.
MAX_BAUD_ERROR = 0.02

#: Smallest number of clock cycles per bit (the receiver needs a middle and some resolution around it).
MIN_DIVISOR = 4


def uart_divisor(clock_hz, baud):
    """Clock cycles per bit for a UART at ``baud`` on a ``clock_hz`` clock.

    Parameters
    ----------
    clock_hz : int or float
        Frequency of the clock that runs the UART, in Hz.
    baud : int
        Bit rate in bits per second.

    Returns
    -------
    int
        ``round(clock_hz / baud)``.

    Raises
    ------
    ValueError
        If the divisor is below :data:`MIN_DIVISOR` or the generated rate differs from ``baud`` by more than
        :data:`MAX_BAUD_ERROR`.
    """
    if not clock_hz > 0:
        raise ValueError(f"UART clock must be positive, not {clock_hz!r}")
    if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
        raise ValueError(f"UART baud rate must be a positive integer, not {baud!r}")
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"UART at {baud:,} baud needs at least {MIN_DIVISOR} clock cycles per bit; "
                         f"a {clock_hz / 1e6:g} MHz clock gives {clock_hz / baud:.2f}")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"UART at {baud:,} baud from a {clock_hz / 1e6:g} MHz clock: divisor {divisor} gives "
                         f"{clock_hz / divisor:,.0f} baud, {error:.1%} off (at most {MAX_BAUD_ERROR:.0%})")
    return divisor


def _check_divisor(divisor, component):
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < MIN_DIVISOR:
        component._MustUse__silence = True  # refused, not an unused design
        raise ValueError(f"UART divisor must be an integer of at least {MIN_DIVISOR}, not {divisor!r}")


class _UARTPart(wiring.Component):
    """What the receiver and the transmitter share: a checked ``divisor`` (clock cycles per bit)."""

    def __init__(self, *, divisor):
        _check_divisor(divisor, self)
        self._divisor = divisor
        super().__init__()

    @property
    def divisor(self):
        return self._divisor


class UARTReceiver(_UARTPart):
    """UART receiver (8N1) with a byte stream output.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (see :func:`uart_divisor`), at least 4.

    Members
    -------
    rx : In(1)
        The serial line (asynchronous to the clock; synchronized inside). Idle high.
    o : Out(stream.Signature(8))
        Received bytes. The receiver does not wait for ``ready``: a byte that arrives while the previous one has not
        been taken is dropped and ``overrun`` pulses, so put a FIFO behind it if the consumer can stall.
    frame_error : Out(1)
        One-cycle pulse when a byte's stop bit reads 0 (the byte is dropped).
    overrun : Out(1)
        One-cycle pulse when a received byte is dropped because ``o`` still holds the previous one.

    Raises
    ------
    ValueError
        If ``divisor`` is not an integer of at least 4.
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    frame_error: Out(1)
    overrun: Out(1)

    def elaborate(self, platform):
        m = Module()
        div = self._divisor

        # -- two flip-flop synchronizer, idle high from reset -----------------------------------------------------
        meta = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [meta.eq(self.rx), line.eq(meta)]

        timer = Signal(range(div))
        # the data bits come in from the top behind a marker bit loaded at the start bit: the sample that pushes
        # the marker out of bit 0 is the eighth (no bit counter)
        shift = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"  # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), shift.eq(0x80)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq((line << 7) | (shift >> 1)), timer.eq(div - 1)]
                    with m.If(shift[0]):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    with m.If(self.o.valid & ~self.o.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += self.frame_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTransmitter(_UARTPart):
    """UART transmitter (8N1) with a byte stream input.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (see :func:`uart_divisor`), at least 4.

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send; ``ready`` is high while the transmitter is idle.
    tx : Out(1)
        The serial line, idle high.
    busy : Out(1)
        High while a byte is being shifted out.

    Raises
    ------
    ValueError
        If ``divisor`` is not an integer of at least 4.
    """

    i: In(stream.Signature(8))
    tx: Out(1, init=1)
    busy: Out(1)

    def elaborate(self, platform):
        m = Module()
        div = self._divisor

        timer = Signal(range(div))
        # start bit, 8 data bits, stop bit, shifted out from the least significant bit, zeros coming in behind a
        # marker bit: the byte is done when the marker alone is left, in bit 0 (which is the idle level; no counter)
        frame = Signal(11, init=1)
        idle = Signal()

        m.d.comb += [idle.eq(frame[1:] == 0), self.i.ready.eq(idle), self.busy.eq(~idle), self.tx.eq(frame[0])]
        with m.If(idle):
            with m.If(self.i.valid):
                m.d.sync += [frame.eq((0b11 << 9) | (self.i.payload << 1)), timer.eq(div - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [frame.eq(frame >> 1), timer.eq(div - 1)]
        return m
