"""Gateware side of the host protocol: frame parser, network feeder and reply serializer.

:class:`ProtocolEngine` sits between the UART byte streams and the network. It implements the board's half of
``docs/protocol.md``:

- it hunts for the sync ``A5 5A``, reads type and length, and checks the length against the type *before* the
  payload (a wrong length or an unknown type is answered at once and the search for a sync restarts, so the payload
  of a bad frame is scanned as ordinary garbage);
- an infer payload is streamed straight into the network's input while the CRC is computed; the network's result is
  only sent when the CRC matches, otherwise it is taken and dropped and an error is sent;
- a gap of ``timeout_cycles`` without a byte inside a frame abandons it (an infer payload is completed with zeros so
  that the network finishes its sample and stays in step; that result is dropped) and answers a timeout error.

So no byte sequence can leave it waiting: every state other than the sync search either consumes a byte, counts
towards the timeout, or waits for the network or the transmitter, which always finish.
"""

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import protocol

__all__ = ["ProtocolEngine", "crc16_step"]


def crc16_step(m, crc, byte, *, name="crc_next"):
    """CRC-16/CCITT-FALSE update of the 16-bit value ``crc`` by the 8-bit value ``byte``.

    The byte-wise form ``x = (crc >> 8) ^ byte; x ^= x >> 4; crc = (crc << 8) ^ (x << 12) ^ (x << 5) ^ x`` is purely
    linear (XORs only), so it maps to a few LUTs per bit. The result is a new signal driven from ``m.d.comb``.
    """
    x = Signal(8, name=f"{name}_x")
    m.d.comb += x.eq(crc[8:16] ^ byte)
    y = Signal(8, name=f"{name}_y")
    m.d.comb += y.eq(x ^ (x >> 4))
    result = Signal(16, name=name)
    m.d.comb += result.eq(((crc[:8] << 8) ^ (y << 12) ^ (y << 5) ^ y)[:16])
    return result


_KIND_IDENTIFY, _KIND_RESULT, _KIND_ERROR = range(3)


class ProtocolEngine(wiring.Component):
    """Frame parser and responder between a UART and a network.

    Parameters
    ----------
    input_len : int
        Number of INT8 values of one input map (the payload length of an infer frame), 1 ... 65,535.
    result_layout : amaranth.lib.data.StructLayout
        The network's result layout (``hw.layouts.result_layout``): fields ``cls`` (at most 8 bits), ``cycles``
        (32 bits) and ``readout`` (an array of signed values of at most 32 bits).
    identity : bytes
        Payload of the identify reply (:func:`boards.protocol.encode_identify`).
    timeout_cycles : int
        Clock cycles without a byte after which a frame in progress is abandoned, at least 2.

    Members
    -------
    i : In(stream.Signature(8))
        Received bytes (from the UART receiver, through a FIFO).
    o : Out(stream.Signature(8))
        Bytes to send (to the UART transmitter).
    features : Out(stream.Signature(signed(8)))
        The input map, to the network's ``i``.
    result : In(stream.Signature(result_layout))
        The network's results. A result that is sent is taken only with the last byte of its reply: its payload
        is read in place while the reply goes out (the stream rules keep it stable), so no copy is needed.
    last_class : Out(unsigned(8))
        Class of the last result that was sent.
    answered : Out(1)
        One-cycle pulse when a result reply starts.
    error : Out(1)
        One-cycle pulse when an error reply starts.

    Raises
    ------
    ValueError
        If a parameter is out of range or the result layout lacks a field.
    """

    def __init__(self, *, input_len, result_layout, identity, timeout_cycles):
        try:
            self._validate(input_len, result_layout, identity, timeout_cycles)
        except (TypeError, ValueError):
            self._MustUse__silence = True  # refused, not an unused design
            raise
        self._input_len = input_len
        self._layout = result_layout
        self._identity = bytes(identity)
        self._timeout = timeout_cycles
        super().__init__({
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(8)),
            "features": Out(stream.Signature(signed(8))),
            "result": In(stream.Signature(result_layout)),
            "last_class": Out(unsigned(8)),
            "answered": Out(1),
            "error": Out(1),
        })

    @staticmethod
    def _validate(input_len, result_layout, identity, timeout_cycles):
        if not isinstance(input_len, int) or isinstance(input_len, bool) or not 1 <= input_len <= protocol.MAX_PAYLOAD:
            raise ValueError(f"input length must be 1 ... {protocol.MAX_PAYLOAD:,} bytes, not {input_len!r}")
        if not isinstance(result_layout, data.StructLayout):
            raise TypeError(f"result layout must be a StructLayout, not {result_layout!r}")
        for name in ("cls", "cycles", "readout"):
            if name not in result_layout.members:
                raise ValueError(f"result layout has no field {name!r} (fields: {list(result_layout.members)})")
        readout = result_layout.members["readout"]
        if not isinstance(readout, data.ArrayLayout):
            raise ValueError(f"result field 'readout' must be an ArrayLayout, not {readout!r}")
        if Shape.cast(result_layout.members["cls"]).width > 8:
            raise ValueError("result field 'cls' is wider than the 8 bits of a result reply")
        if Shape.cast(result_layout.members["cycles"]).width > 32:
            raise ValueError("result field 'cycles' is wider than the 32 bits of a result reply")
        if readout.elem_shape.width > 32:
            raise ValueError(f"readout values of {readout.elem_shape.width} bits do not fit the 32 bits of a "
                             f"result reply")
        if not bytes(identity):
            raise ValueError("identity payload must not be empty")
        if not isinstance(timeout_cycles, int) or isinstance(timeout_cycles, bool) or timeout_cycles < 2:
            raise ValueError(f"timeout must be an integer of at least 2 cycles, not {timeout_cycles!r}")

    @property
    def n_classes(self):
        return self._layout.members["readout"].length

    @property
    def result_payload_len(self):
        return 5 + 4 * self.n_classes

    def elaborate(self, platform):
        m = Module()
        n_classes = self.n_classes
        reply_lens = {
            _KIND_IDENTIFY: len(self._identity),
            _KIND_RESULT: self.result_payload_len,
            _KIND_ERROR: 4,
        }
        reply_types = {_KIND_IDENTIFY: protocol.IDENTIFY_REPLY, _KIND_RESULT: protocol.RESULT,
                       _KIND_ERROR: protocol.ERROR}

        byte = self.i.payload
        take = self.i.valid & self.i.ready

        mtype = Signal(8)
        length_lo = Signal(8)
        count = Signal(16)
        crc = Signal(16)
        crc_lo = Signal(8)
        timer = Signal(range(self._timeout))
        timed_out = Signal()
        discard = Signal()

        kind = Signal(range(3))
        err_code = Signal(8)
        expected_len = Signal(16)
        m.d.comb += expected_len.eq(Mux(mtype == protocol.INFER, self._input_len, 0))

        # -- inter-byte timeout while inside a frame -------------------------------------------------------------
        m.d.comb += timed_out.eq(~self.i.valid & (timer == self._timeout - 1))

        def reply_error(code):
            m.d.sync += [kind.eq(_KIND_ERROR), err_code.eq(code)]
            m.d.comb += self.error.eq(1)
            m.next = "SEND"

        # -- reply serializer: per reply kind, a case per byte position (no arithmetic on positions) -------------
        # The identify reply is a constant frame (CRC included); result and error replies take their payload from
        # the network's held result and the error registers, and their CRC from tx_crc, computed as they go out.
        identify_frame = protocol.encode_frame(protocol.IDENTIFY_REPLY, self._identity)
        total = max(len(identify_frame), max(reply_lens.values()) + protocol.OVERHEAD_BYTES)
        idx = Signal(range(total))
        tx_crc = Signal(16, init=0xFFFF)
        out_byte = Signal(8)
        last = Signal()      # idx is the last byte of the reply
        in_body = Signal()   # idx is a byte covered by the CRC (type, length, payload)

        result = self.result.payload  # held by the network until the reply has been sent
        fields = [Signal(8, name="result_cls"), Signal(32, name="result_cycles")]
        fields += [Signal(signed(32), name=f"result_readout{k}") for k in range(n_classes)]
        m.d.comb += [fields[0].eq(result.cls), fields[1].eq(result.cycles)]
        m.d.comb += [fields[2 + k].eq(result.readout[k]) for k in range(n_classes)]
        result_bytes = Cat(*fields)
        error_bytes = Cat(err_code, mtype, expected_len)

        def header(kind_):
            body_len = reply_lens[kind_]
            return [protocol.SYNC[0], protocol.SYNC[1], reply_types[kind_], body_len & 0xFF, body_len >> 8]

        with m.Switch(kind):
            with m.Case(_KIND_IDENTIFY):
                with m.Switch(idx):
                    for index, value in enumerate(identify_frame):
                        with m.Case(index):
                            m.d.comb += out_byte.eq(value)
                m.d.comb += last.eq(idx == len(identify_frame) - 1)
            for kind_, source in ((_KIND_RESULT, result_bytes), (_KIND_ERROR, error_bytes)):
                with m.Case(kind_):
                    body_len = reply_lens[kind_]
                    with m.Switch(idx):
                        for index, value in enumerate(header(kind_)):
                            with m.Case(index):
                                m.d.comb += out_byte.eq(value)
                        for index in range(body_len):
                            with m.Case(protocol.HEADER_BYTES + index):
                                m.d.comb += out_byte.eq(source.word_select(index, 8))
                        with m.Case(protocol.HEADER_BYTES + body_len):
                            m.d.comb += out_byte.eq(tx_crc[:8])
                        with m.Case(protocol.HEADER_BYTES + body_len + 1):
                            m.d.comb += [out_byte.eq(tx_crc[8:]), last.eq(1)]
                    m.d.comb += in_body.eq((idx >= 2) & (idx < protocol.HEADER_BYTES + body_len))

        rx_crc_next = crc16_step(m, crc, byte, name="rx_crc_next")
        tx_crc_next = crc16_step(m, tx_crc, out_byte, name="tx_crc_next")

        # -- parser and responder ----------------------------------------------------------------------------------
        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take & (byte == protocol.SYNC[0])):
                    m.d.sync += timer.eq(0)
                    m.next = "SYNC1"

            def count_timer():
                with m.If(take):
                    m.d.sync += timer.eq(0)
                with m.Elif(~self.i.valid):
                    m.d.sync += timer.eq(timer + 1)

            with m.State("SYNC1"):
                m.d.comb += self.i.ready.eq(1)
                count_timer()
                with m.If(take):
                    with m.If(byte == protocol.SYNC[1]):
                        m.d.sync += crc.eq(0xFFFF)
                        m.next = "TYPE"
                    with m.Elif(byte != protocol.SYNC[0]):
                        m.next = "HUNT"
                with m.Elif(timed_out):
                    m.next = "HUNT"

            with m.State("TYPE"):
                m.d.comb += self.i.ready.eq(1)
                count_timer()
                with m.If(take):
                    m.d.sync += [mtype.eq(byte), crc.eq(rx_crc_next)]
                    m.next = "LEN0"
                with m.Elif(timed_out):
                    m.d.sync += mtype.eq(0)
                    reply_error(protocol.TIMEOUT)

            with m.State("LEN0"):
                m.d.comb += self.i.ready.eq(1)
                count_timer()
                with m.If(take):
                    m.d.sync += [length_lo.eq(byte), crc.eq(rx_crc_next)]
                    m.next = "LEN1"
                with m.Elif(timed_out):
                    reply_error(protocol.TIMEOUT)

            with m.State("LEN1"):
                m.d.comb += self.i.ready.eq(1)
                count_timer()
                with m.If(take):
                    m.d.sync += crc.eq(rx_crc_next)
                    with m.If(mtype == protocol.IDENTIFY):
                        with m.If(Cat(length_lo, byte) == 0):
                            m.next = "CRC0"
                        with m.Else():
                            reply_error(protocol.BAD_LENGTH)
                    with m.Elif(mtype == protocol.INFER):
                        with m.If(Cat(length_lo, byte) == self._input_len):
                            m.d.sync += count.eq(self._input_len)
                            m.next = "PAYLOAD"
                        with m.Else():
                            reply_error(protocol.BAD_LENGTH)
                    with m.Else():
                        reply_error(protocol.UNKNOWN_TYPE)
                with m.Elif(timed_out):
                    reply_error(protocol.TIMEOUT)

            with m.State("PAYLOAD"):
                m.d.comb += [
                    self.i.ready.eq(self.features.ready),
                    self.features.valid.eq(self.i.valid),
                    self.features.payload.eq(byte),
                ]
                count_timer()
                with m.If(take):
                    m.d.sync += [crc.eq(rx_crc_next), count.eq(count - 1)]
                    with m.If(count == 1):
                        m.next = "CRC0"
                with m.Elif(timed_out):
                    m.d.sync += [discard.eq(1), err_code.eq(protocol.TIMEOUT)]
                    m.next = "PAD"

            with m.State("PAD"):
                m.d.comb += [self.features.valid.eq(1), self.features.payload.eq(0)]
                with m.If(self.features.ready):
                    m.d.sync += count.eq(count - 1)
                    with m.If(count == 1):
                        m.next = "WAIT"

            with m.State("CRC0"):
                m.d.comb += self.i.ready.eq(1)
                count_timer()
                with m.If(take):
                    m.d.sync += crc_lo.eq(byte)
                    m.next = "CRC1"
                with m.Elif(timed_out):
                    with m.If(mtype == protocol.INFER):
                        m.d.sync += [discard.eq(1), err_code.eq(protocol.TIMEOUT)]
                        m.next = "WAIT"
                    with m.Else():
                        reply_error(protocol.TIMEOUT)

            with m.State("CRC1"):
                m.d.comb += self.i.ready.eq(1)
                count_timer()
                good = Cat(crc_lo, byte) == crc
                with m.If(take):
                    with m.If(mtype == protocol.INFER):
                        m.d.sync += [discard.eq(~good), err_code.eq(protocol.BAD_CRC)]
                        m.next = "WAIT"
                    with m.Elif(good):
                        m.d.sync += kind.eq(_KIND_IDENTIFY)
                        m.next = "SEND"
                    with m.Else():
                        reply_error(protocol.BAD_CRC)
                with m.Elif(timed_out):
                    with m.If(mtype == protocol.INFER):
                        m.d.sync += [discard.eq(1), err_code.eq(protocol.TIMEOUT)]
                        m.next = "WAIT"
                    with m.Else():
                        reply_error(protocol.TIMEOUT)

            with m.State("WAIT"):
                # a result to drop is taken at once; a result to send stays in the network's output (its payload
                # is the reply's source) and is taken with the reply's last byte
                m.d.comb += self.result.ready.eq(discard)
                with m.If(self.result.valid):
                    with m.If(discard):
                        m.d.sync += kind.eq(_KIND_ERROR)
                        m.d.comb += self.error.eq(1)
                    with m.Else():
                        m.d.sync += [kind.eq(_KIND_RESULT), self.last_class.eq(self.result.payload.cls)]
                        m.d.comb += self.answered.eq(1)
                    m.next = "SEND"

            with m.State("SEND"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(out_byte)]
                with m.If(self.o.ready):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(in_body):
                        m.d.sync += tx_crc.eq(tx_crc_next)
                    with m.If(last):
                        m.d.sync += [idx.eq(0), tx_crc.eq(0xFFFF), discard.eq(0)]
                        m.d.comb += self.result.ready.eq(kind == _KIND_RESULT)
                        m.next = "HUNT"

        return m
