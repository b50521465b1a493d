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

- with a weight image (the plan keeps weights in SPRAM, which the bitstream does not initialize): a load frame's
  chunk is written through ``load`` as it arrives and its bytes also go into a second CRC register, the image CRC;
  chunks must come in order from 0 (chunk 0 restarts the load); after the last chunk the image CRC is compared with
  the one the bitstream was built for, and only then is the image ``loaded``. Every load reply or error on a load
  frame that is not that success leaves the board unloaded, and until it is loaded an infer frame is refused at its
  length field with the error *no weight image loaded*. Without an image none of this logic is built.

So no byte sequence can leave it waiting: every state other than the sync search either consumes a byte, counts
towards the timeout, waits for the network or the transmitter, which always finish, or (``LAUNCH``, the start of a
reply) moves on after one cycle.

The engine is sized for a small FPGA: its registers do double duty, its counters end on the carry out of their
adder, and each reply byte is assembled from gated sources rather than picked by a byte multiplexer.

- One CRC register checks the received frame and then computes the CRC of the reply as it goes out.
- The inter-byte timer restarts from one value after every received byte and overflows when the timeout is reached.
  While a reply goes out it numbers the reply's bytes (the *reply index*, which starts from the same value; the
  identify reply's indices have their top bit flipped). The payload counter also ends on its overflow.
- A reply byte is the OR of its sources, each gated by an enable, and goes through a register: the identify frame
  comes from 16-entry tables indexed by the low bits of the reply index; the headers and the fields in front of the
  readout values of result and error replies are marked by a one-hot slot register that walks along their first
  bytes; the readout values of the network's result (read in place) are selected by a one-hot ring that steps at
  every 4-byte field; the CRC comes from the CRC register. The selected readout value and the few enables decoded
  from the reply index are registered, so a byte is loaded only once the index has been stable for a cycle.
- A reply starts a cycle after the byte (or the timeout, or the result) that made it due, from registers only: the
  decoding of a received byte and the set-up of a reply are never one combinational path, which was the longest
  path of the iCEBreaker's design (12 LUTs).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.weights import LOAD_SIGNATURE

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


#: Bytes at the start of a result or an error reply that the slot register marks: the header, then the class and the
#: cycle count of a result, or the error code, the type, the expected length and the CRC of an error.
_SLOTS = protocol.HEADER_BYTES + 6


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
    image_words : int
        16-bit words of the network's weight image (``len(hw.weights.image(plan))``), 0 when it has none.
    image_crc : int
        :func:`hw.weights.image_crc` of the image padded to whole :data:`boards.protocol.LOAD_CHUNK` chunks.

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
    load : Out(hw.weights.LOAD_SIGNATURE)
        Only with an image: the image's words, to the network's ``load``.
    loaded : Out(1)
        Only with an image: a complete image with the right CRC has been loaded.
    preloaded : In(1)
        Only with an image: a one-cycle pulse from another loader (:class:`boards.flash.FlashLoader`) that has put
        the whole image through the network's ``load`` and checked its CRC; the board counts as loaded, as after
        the last chunk of a UART load. Tied to 0 when there is no other loader.

    Raises
    ------
    ValueError
        If a parameter is out of range or the result layout lacks a field.
    """

    def __init__(self, *, input_len, result_layout, identity, timeout_cycles, image_words=0, image_crc=0):
        try:
            self._validate(input_len, result_layout, identity, timeout_cycles)
            if not isinstance(image_words, int) or not 0 <= image_words <= 0xFFFF * protocol.LOAD_CHUNK // 2:
                raise ValueError(f"image must be 0 ... {0xFFFF * protocol.LOAD_CHUNK // 2:,} words, not "
                                 f"{image_words!r}")
            if not isinstance(image_crc, int) or not 0 <= image_crc <= 0xFFFF:
                raise ValueError(f"image CRC must be 0 ... 0xFFFF, not {image_crc!r}")
        except (TypeError, ValueError):
            self._MustUse__silence = True  # refused, not an unused design
            raise
        self._input_len = input_len
        self._layout = result_layout
        self._identity = bytes(identity)
        self._timeout = timeout_cycles
        self._image_words = image_words
        self._image_crc = image_crc
        members = {
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(8)),
            "features": Out(stream.Signature(signed(8))),
            "result": In(stream.Signature(result_layout)),
            "last_class": Out(unsigned(8)),
            "answered": Out(1),
            "error": Out(1),
        }
        if image_words:
            members |= {"load": Out(LOAD_SIGNATURE), "loaded": Out(1), "preloaded": In(1)}
        super().__init__(members)

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

    @property
    def image_chunks(self):
        """Load frames of the image (0 without one)."""
        return -(-2 * self._image_words // protocol.LOAD_CHUNK)

    def elaborate(self, platform):
        m = Module()
        input_len = self._input_len
        timeout = self._timeout

        # The timer restarts from the same value after every received byte and at the start of a reply (so its
        # adder needs no other input), and overflows after timeout - 1 steps. Replies are numbered from there: byte
        # n of a result or an error reply has the reply index restart + n, byte n of the identify reply the same
        # with the top bit of the index flipped; the index is wide enough for these ranges not to overlap.
        id_table = protocol.encode_frame(protocol.IDENTIFY_REPLY, self._identity)[:-2]
        longest = max(len(id_table) + 2, self.result_payload_len + protocol.OVERHEAD_BYTES)
        index_width = (longest - 1).bit_length() + 1
        timer_width = max((timeout - 1).bit_length(), index_width)
        restart = 2 ** timer_width - (timeout - 1)
        start_index = restart % 2 ** index_width

        byte = self.i.payload
        take = self.i.valid & self.i.ready

        # -- registers: only the state machine and the outputs are reset, the others are written before they are read
        image = self._image_words > 0
        mtype = Signal(8, reset_less=True)
        err_code = Signal(4 if image else 3, reset_less=True)  # 0 unless the frame has failed: this is sent
        len_ok = Signal(reset_less=True)        # the low byte of the length fits the type
        crc_ok = Signal(reset_less=True)        # the low byte of the CRC matches
        crc = Signal(16, reset_less=True)
        count_width = (max(input_len, protocol.LOAD_CHUNK if image else 1) - 1).bit_length()
        count = Signal(count_width, reset_less=True)
        count_inc = Signal(count_width + 1)
        m.d.comb += count_inc.eq(count + 1)
        timer = Signal(timer_width, reset_less=True)
        timer_inc = Signal(timer_width + 1)
        m.d.comb += timer_inc.eq(timer + 1)
        expire = Signal(reset_less=True)        # the timer has run out
        is_identify = Signal(reset_less=True)   # the reply being sent is the identify reply
        is_error = Signal(reset_less=True)      # the reply being sent is an error reply
        out_byte = Signal(8, reset_less=True)
        out_full = Signal()
        out_body = Signal(reset_less=True)      # out_byte is covered by the reply's CRC
        out_last = Signal(reset_less=True)
        settled = Signal(reset_less=True)       # the reply index has not moved in the last cycle

        is_infer = Signal()
        m.d.comb += is_infer.eq(mtype == protocol.INFER)
        is_load = Signal()
        if image:
            m.d.comb += is_load.eq(mtype == protocol.LOAD)
        timed_out = Signal()
        m.d.comb += timed_out.eq(~self.i.valid & expire)

        # -- register updates, driven by the state machine -------------------------------------------------------
        sending = Signal()
        crc_init = Signal()
        crc_update = Signal()
        count_load = Signal()
        count_step = Signal()
        frame_start = Signal()
        mtype_load = Signal()
        set_error = Signal()
        error_code = Signal(len(err_code))
        launch = Signal()                       # a reply is due: it starts in the next cycle (state LAUNCH)
        want_identify = Signal()                # ... and is the identify reply
        want_ack = Signal()                     # ... and is a load reply
        start = Signal()                        # a reply starts (state LAUNCH)
        start_identify = Signal(reset_less=True)
        start_ack = Signal(reset_less=True)     # the reply is a load reply
        with m.If(launch):
            m.d.sync += [start_identify.eq(want_identify), start_ack.eq(want_ack)]
        is_ack = Signal(reset_less=True)
        advance = Signal()                      # the next reply byte goes into out_byte

        crc_in = Signal(8)
        m.d.comb += crc_in.eq(Mux(sending, out_byte, byte))
        crc_next = crc16_step(m, crc, crc_in)
        with m.If(crc_init):
            m.d.sync += crc.eq(0xFFFF)
        with m.Elif(crc_update):
            m.d.sync += crc.eq(crc_next)

        with m.If(take | start):
            m.d.sync += [timer.eq(restart), expire.eq(0)]
        with m.Elif(Mux(sending, advance, ~self.i.valid)):
            m.d.sync += [timer.eq(timer_inc), expire.eq(timer_inc[-1])]
        index = Cat(timer[:index_width - 1], timer[index_width - 1] ^ is_identify)

        with m.If(count_load):
            m.d.sync += count.eq(Mux(is_load, 2 ** count_width - protocol.LOAD_CHUNK, 2 ** count_width - input_len)
                                 if image else 2 ** count_width - input_len)
        with m.Elif(count_step):
            m.d.sync += count.eq(count_inc)
        last_feature = count_inc[-1]

        with m.If(frame_start):
            m.d.sync += [mtype.eq(0), err_code.eq(0)]
        with m.Else():
            with m.If(mtype_load):
                m.d.sync += mtype.eq(byte)
            with m.If(set_error):
                m.d.sync += err_code.eq(error_code)

        m.d.sync += settled.eq(~(start | advance))
        error_reply = err_code != 0             # the error, if any, was registered when the reply was due
        m.d.sync += [self.error.eq(start & error_reply),
                     self.answered.eq(start & ~error_reply & ~start_identify & ~start_ack)]
        with m.If(start):
            m.d.sync += [is_identify.eq(start_identify), is_error.eq(error_reply | start_ack), out_full.eq(0),
                         is_ack.eq(start_ack)]
        with m.Elif(advance):
            m.d.sync += out_full.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += out_full.eq(0)
        m.d.comb += self.o.payload.eq(out_byte)

        reply_byte, in_body, is_last = self._reply_byte(
            m, index=index, start_index=start_index, advance=advance, start=start, start_identify=start_identify,
            is_error=is_error, is_infer=is_infer, err_code=err_code, mtype=mtype, crc=crc, id_table=id_table,
            is_ack=is_ack, is_load=is_load)
        with m.If(advance):
            m.d.sync += [out_byte.eq(reply_byte), out_body.eq(in_body), out_last.eq(is_last)]

        # -- parser and responder ----------------------------------------------------------------------------------
        def mark_error(code):
            m.d.comb += [set_error.eq(1), error_code.eq(code)]

        def reply_error(code):
            mark_error(code)
            send()

        def send():
            m.d.comb += launch.eq(1)
            m.next = "LAUNCH"

        # -- weight image: its words to the network, its CRC, the chunk expected next, whether it is loaded ------
        fail = Signal()                         # a load frame failed: the image must be loaded again from chunk 0
        if image:
            n_chunks = self.image_chunks
            loaded = Signal()
            next_chunk = Signal(range(n_chunks + 1))
            index_lo = Signal(8, reset_less=True)
            low_byte = Signal(8, reset_less=True)
            odd = Signal(reset_less=True)
            img_crc = Signal(16, reset_less=True)
            img_init = Signal()
            img_update = Signal()
            img_next = crc16_step(m, img_crc, byte, name="img_crc_next")
            with m.If(img_init):
                m.d.sync += img_crc.eq(0xFFFF)
            with m.Elif(img_update):
                m.d.sync += img_crc.eq(img_next)
            m.d.comb += [self.loaded.eq(loaded), self.load.words.payload.eq(Cat(low_byte, byte))]
            with m.If(self.preloaded):
                m.d.sync += [loaded.eq(1), next_chunk.eq(n_chunks)]
            with m.If(fail):
                m.d.sync += [loaded.eq(0), next_chunk.eq(0)]

        def time_out_after_payload():
            # an infer frame's sample is in the network: its result is dropped and the error sent in its place
            with m.If(is_infer):
                mark_error(protocol.TIMEOUT)
                m.next = "WAIT"
            with m.Else():
                m.d.comb += fail.eq(is_load)
                reply_error(protocol.TIMEOUT)

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take & (byte == protocol.SYNC[0])):
                    m.next = "SYNC1"

            with m.State("SYNC1"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take):
                    with m.If(byte == protocol.SYNC[1]):
                        m.d.comb += [crc_init.eq(1), frame_start.eq(1)]
                        m.next = "TYPE"
                    with m.Elif(byte != protocol.SYNC[0]):
                        m.next = "HUNT"
                with m.Elif(timed_out):
                    m.next = "HUNT"

            with m.State("TYPE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take):
                    m.d.comb += [mtype_load.eq(1), crc_update.eq(1)]
                    m.next = "LEN0"
                with m.Elif(timed_out):
                    reply_error(protocol.TIMEOUT)

            with m.State("LEN0"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take):
                    expected_lo = Mux(is_infer, input_len & 0xFF, 0)
                    if image:
                        expected_lo = Mux(is_load, protocol.LOAD_PAYLOAD & 0xFF, expected_lo)
                    m.d.sync += len_ok.eq(byte == expected_lo)
                    m.d.comb += crc_update.eq(1)
                    m.next = "LEN1"
                with m.Elif(timed_out):
                    reply_error(protocol.TIMEOUT)

            with m.State("LEN1"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take):
                    m.d.comb += crc_update.eq(1)
                    with m.If(mtype == protocol.IDENTIFY):
                        with m.If(len_ok & (byte == 0)):
                            m.next = "CRC0"
                        with m.Else():
                            reply_error(protocol.BAD_LENGTH)
                    with m.Elif(is_infer):
                        with m.If(len_ok & (byte == input_len >> 8)):
                            if image:
                                with m.If(loaded):
                                    m.d.comb += count_load.eq(1)
                                    m.next = "PAYLOAD"
                                with m.Else():
                                    reply_error(protocol.NOT_LOADED)
                            else:
                                m.d.comb += count_load.eq(1)
                                m.next = "PAYLOAD"
                        with m.Else():
                            reply_error(protocol.BAD_LENGTH)
                    if image:
                        with m.Elif(is_load):
                            with m.If(len_ok & (byte == protocol.LOAD_PAYLOAD >> 8)):
                                m.next = "INDEX0"
                            with m.Else():
                                m.d.comb += fail.eq(1)
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
                with m.If(take):
                    m.d.comb += [crc_update.eq(1), count_step.eq(1)]
                    with m.If(last_feature):
                        m.next = "CRC0"
                with m.Elif(timed_out):
                    mark_error(protocol.TIMEOUT)
                    m.next = "PAD"

            with m.State("PAD"):
                m.d.comb += [self.features.valid.eq(1), self.features.payload.eq(0)]
                with m.If(self.features.ready):
                    m.d.comb += count_step.eq(1)
                    with m.If(last_feature):
                        m.next = "WAIT"

            if image:
                with m.State("INDEX0"):
                    m.d.comb += self.i.ready.eq(1)
                    with m.If(take):
                        m.d.sync += index_lo.eq(byte)
                        m.d.comb += crc_update.eq(1)
                        m.next = "INDEX1"
                    with m.Elif(timed_out):
                        m.d.comb += fail.eq(1)
                        reply_error(protocol.TIMEOUT)

                with m.State("INDEX1"):
                    # chunk 0 restarts the load; any other chunk must be the one expected next
                    m.d.comb += self.i.ready.eq(1)
                    chunk = Cat(index_lo, byte)
                    with m.If(take):
                        m.d.comb += crc_update.eq(1)
                        m.d.sync += [loaded.eq(0), odd.eq(0)]
                        with m.If(chunk == 0):
                            m.d.comb += [self.load.restart.eq(1), img_init.eq(1), count_load.eq(1)]
                            m.d.sync += next_chunk.eq(0)
                            m.next = "CHUNK"
                        with m.Elif(chunk == next_chunk):
                            m.d.comb += count_load.eq(1)
                            m.next = "CHUNK"
                        with m.Else():
                            m.d.comb += fail.eq(1)
                            reply_error(protocol.BAD_SEQUENCE)
                    with m.Elif(timed_out):
                        m.d.comb += fail.eq(1)
                        reply_error(protocol.TIMEOUT)

                with m.State("CHUNK"):
                    # two bytes make a word, least significant first; the network takes every word at once
                    m.d.comb += self.i.ready.eq(1)
                    with m.If(take):
                        m.d.comb += [crc_update.eq(1), img_update.eq(1), count_step.eq(1),
                                     self.load.words.valid.eq(odd)]
                        m.d.sync += [odd.eq(~odd), low_byte.eq(byte)]
                        with m.If(last_feature):
                            m.next = "CRC0"
                    with m.Elif(timed_out):
                        m.d.comb += fail.eq(1)
                        reply_error(protocol.TIMEOUT)

            with m.State("CRC0"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take):
                    m.d.sync += crc_ok.eq(byte == crc[:8])
                    m.next = "CRC1"
                with m.Elif(timed_out):
                    time_out_after_payload()

            with m.State("CRC1"):
                m.d.comb += self.i.ready.eq(1)
                good = crc_ok & ((crc[8:] ^ crc_in) == 0)
                with m.If(take):
                    with m.If(is_infer):
                        m.d.comb += [set_error.eq(~good), error_code.eq(protocol.BAD_CRC)]
                        m.next = "WAIT"
                    if image:
                        with m.Elif(is_load):
                            with m.If(~good):
                                m.d.comb += fail.eq(1)
                                reply_error(protocol.BAD_CRC)
                            with m.Elif(next_chunk != n_chunks - 1):
                                m.d.sync += next_chunk.eq(next_chunk + 1)
                                m.d.comb += want_ack.eq(1)
                                send()
                            with m.Elif(img_crc == self._image_crc):
                                m.d.sync += [next_chunk.eq(n_chunks), loaded.eq(1)]
                                m.d.comb += want_ack.eq(1)
                                send()
                            with m.Else():
                                m.d.comb += fail.eq(1)
                                reply_error(protocol.BAD_IMAGE)
                    with m.Elif(good):
                        m.d.comb += want_identify.eq(1)
                        send()
                    with m.Else():
                        reply_error(protocol.BAD_CRC)
                with m.Elif(timed_out):
                    time_out_after_payload()

            with m.State("WAIT"):
                # a result to drop is taken at once; a result to send stays in the network's output (its payload
                # is the reply's source) and is taken with the reply's last byte
                discard = err_code != 0
                m.d.comb += self.result.ready.eq(discard)
                with m.If(self.result.valid):
                    with m.If(~discard):
                        m.d.sync += self.last_class.eq(self.result.payload.cls)
                    send()

            with m.State("LAUNCH"):
                # the reply starts from registers only, a cycle after the byte that made it due: the decoding of
                # a received byte and the set-up of a reply are never one combinational path
                m.d.comb += [start.eq(1), crc_init.eq(1)]
                m.next = "SEND"

            with m.State("SEND"):
                m.d.comb += [sending.eq(1), self.o.valid.eq(out_full), advance.eq(~out_full & settled)]
                with m.If(out_full & self.o.ready):
                    m.d.comb += crc_update.eq(out_body)
                    with m.If(out_last):
                        m.d.comb += self.result.ready.eq(~is_error & is_infer)
                        m.next = "HUNT"

        return m

    def _reply_byte(self, m, *, index, start_index, advance, start, start_identify, is_error, is_infer, err_code,
                    mtype, crc, id_table, is_ack, is_load):
        """Reply byte at ``index``, as the OR of its gated sources.

        Returns
        -------
        (Signal(8), Value, Value)
            The byte, whether it is covered by the reply's CRC, and whether it ends the reply.
        """
        result = self.result.payload
        res_len = self.result_payload_len
        size = 2 ** len(index)
        s = start_index
        id_start = start_index ^ (size >> 1)

        def enable(name, value):
            reg = Signal(name=name, reset_less=True)
            m.d.sync += reg.eq(value)
            return reg

        def at(*positions):
            return Cat(*[index == position % size for position in positions]).any()

        # bytes s ... s + _SLOTS - 1 of a result or an error reply are due while slot[0] ... slot[_SLOTS - 1] is set
        slot = Signal(_SLOTS, reset_less=True)
        with m.If(start):
            m.d.sync += slot.eq(~start_identify)
        with m.Elif(advance):
            m.d.sync += slot.eq(slot << 1)

        # readout value k is sent as the 4-byte field s + 10 + 4k ... s + 13 + 4k, while field[k] is set
        n_classes = self.n_classes
        first = (s + protocol.HEADER_BYTES + 5) % size
        field = Signal(n_classes, reset_less=True)
        with m.If(start):
            m.d.sync += field.eq(0)
        with m.Elif(advance & (index[:2] == (first - 1) % 4)):
            m.d.sync += field.eq(Cat(~is_error & at(first - 1), field[:-1]))
        width = len(result.readout[0])
        readout = Signal(width, reset_less=True)
        m.d.sync += readout.eq(Cat(*[Cat(*[result.readout[k][bit] & field[k] for k in range(n_classes)]).any()
                                     for bit in range(width)]))
        readout_word = Signal(32)
        m.d.comb += readout_word.eq(readout.as_signed())
        readout_byte = readout_word.word_select((index[:2] - first) % 4, 8)

        crc_at = s + protocol.HEADER_BYTES + res_len
        crc_lo = enable("crc_lo", at(crc_at, id_start + len(id_table))) | (is_error & slot[9])
        crc_hi = enable("crc_hi", at(crc_at + 1, id_start + len(id_table) + 1)) | (is_error & slot[10])
        sync_bytes = Signal(2, reset_less=True)     # the sync is not covered by the CRC
        with m.If(start):
            m.d.sync += sync_bytes.eq(0b11)
        with m.Elif(advance):
            m.d.sync += sync_bytes.eq(sync_bytes >> 1)

        table = {(id_start + n) % size: value for n, value in enumerate(id_table)}
        pairs = sorted({position >> 5 for position in table})
        in_pair = {pair: enable(f"identify{pair}", index[5:] == pair) for pair in pairs}

        headers = ([*protocol.SYNC, protocol.RESULT, res_len & 0xFF, res_len >> 8],
                   [*protocol.SYNC, protocol.ERROR, 4, 0])
        image = self._image_words > 0
        expected_len = Signal(16)
        code = Signal(8)
        if image:
            # a load reply has the error reply's form: status (loaded), type, and the chunks of the image
            m.d.comb += [
                expected_len.eq(Mux(is_ack, self.image_chunks,
                                    Mux(is_infer, self._input_len, Mux(is_load, protocol.LOAD_PAYLOAD, 0)))),
                code.eq(Mux(is_ack, self.loaded, err_code)),
            ]
        else:
            m.d.comb += [expected_len.eq(Mux(is_infer, self._input_len, 0)), code.eq(err_code)]
        cycles = Signal(32)
        cls = Signal(8)
        m.d.comb += [cycles.eq(result.cycles), cls.eq(result.cls)]
        bits = []
        for j in range(8):
            terms = [
                readout_byte[j],
                slot[5] & Mux(is_error, code[j], cls[j]),
                slot[6] & Mux(is_error, mtype[j], cycles[j]),
                slot[7] & Mux(is_error, expected_len[j], cycles[8 + j]),
                slot[8] & Mux(is_error, expected_len[8 + j], cycles[16 + j]),
                slot[9] & ~is_error & cycles[24 + j],
                (crc_lo & crc[j]) | (crc_hi & crc[8 + j]),
            ]
            for n, (res_byte, err_byte) in enumerate(zip(*headers)):
                res_bit, err_bit = (res_byte >> j) & 1, (err_byte >> j) & 1
                if image and n == 2:   # the type: a load reply's instead of an error's
                    ack_bit = (protocol.LOADED >> j) & 1
                    terms.append(slot[n] & Mux(is_error, Mux(is_ack, ack_bit, err_bit), res_bit))
                elif res_bit or err_bit:
                    terms.append(slot[n] & (1 if res_bit and err_bit else ~is_error if res_bit else is_error))
            for pair in pairs:
                halves = []
                for block in (2 * pair, 2 * pair + 1):
                    column = sum(((table.get(16 * block + a, 0) >> j) & 1) << a for a in range(16))
                    halves.append(Const(column, 16).bit_select(index[:4], 1))
                terms.append(in_pair[pair] & Mux(index[4], halves[1], halves[0]))
            bits.append(Cat(*terms).any())
        reply_byte = Signal(8)
        m.d.comb += reply_byte.eq(Cat(*bits))
        return reply_byte, ~sync_bytes[0] & ~crc_lo & ~crc_hi, crc_hi
