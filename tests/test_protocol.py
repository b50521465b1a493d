"""Tests of boards.protocol (host side) and boards.engine (gateware parser/responder)."""

import random

import pytest
from amaranth.hdl import Elaboratable, Module, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from boards import protocol as P
from boards.engine import ProtocolEngine
from hw_streams import simulator


# -- host side -------------------------------------------------------------------------------------------------------

def test_crc_check_value():
    assert P.crc16(b"123456789") == 0x29B1
    assert P.crc16(b"") == 0xFFFF


def test_frame_roundtrip_and_layout():
    frame = P.encode_frame(P.INFER, b"\x01\x02\xff")
    assert frame[:2] == b"\xa5\x5a" and frame[2] == P.INFER and frame[3:5] == b"\x03\x00"
    assert int.from_bytes(frame[-2:], "little") == P.crc16(frame[2:-2])
    assert P.decode_frame(frame) == P.Frame(P.INFER, b"\x01\x02\xff")


def test_decode_frame_errors():
    good = P.encode_frame(P.IDENTIFY)
    with pytest.raises(P.ProtocolError, match="at least 7 bytes, got 6"):
        P.decode_frame(good[:-1])
    with pytest.raises(P.ProtocolError, match="not the sync a55a"):
        P.decode_frame(b"\x00" + good[1:])
    with pytest.raises(P.ProtocolError, match="length field says 0 payload bytes, the frame has 1"):
        P.decode_frame(good + b"\x00")
    bad = bytearray(good)
    bad[-1] ^= 0x10
    with pytest.raises(P.ProtocolError, match="CRC 0x.... does not match"):
        P.decode_frame(bytes(bad))


def test_encode_frame_refuses_bad_arguments():
    with pytest.raises(P.ProtocolError, match="message type must be 0 ... 255"):
        P.encode_frame(256)
    with pytest.raises(P.ProtocolError, match="payload of 65,536 bytes exceeds the 65,535"):
        P.encode_frame(1, bytes(65536))


def test_encode_infer_range():
    assert P.encode_infer([-128, 127, 0])[5:8] == b"\x80\x7f\x00"
    with pytest.raises(P.ProtocolError, match="feature value 128 does not fit INT8"):
        P.encode_infer([1, 128])


def test_frame_decoder_skips_garbage_and_bad_frames():
    rng = random.Random(1)
    one = P.encode_frame(P.RESULT, b"abcde")
    two = P.encode_frame(P.ERROR, b"\x01\x02\x03\x00")
    broken = bytearray(P.encode_frame(P.RESULT, b"xyzzy"))
    broken[6] ^= 1
    stream_bytes = bytes(rng.randrange(256) for _ in range(50)).replace(b"\xa5", b"") + one + bytes(broken) + two
    decoder = P.FrameDecoder()
    frames = []
    for start in range(0, len(stream_bytes), 7):  # arbitrary chunking
        frames += decoder.feed(stream_bytes[start:start + 7])
    assert frames == [P.Frame(P.RESULT, b"abcde"), P.Frame(P.ERROR, b"\x01\x02\x03\x00")]
    assert decoder.bad_frames == 1 and decoder.pending == 0


def test_frame_decoder_finds_frame_after_false_sync():
    frame = P.encode_frame(P.RESULT, b"\x00" * 5)
    decoder = P.FrameDecoder(max_payload=100)
    # a false sync whose "length" is huge, then the real frame
    assert decoder.feed(b"\xa5\x5a\x82\xff\xff" + frame) == [P.Frame(P.RESULT, b"\x00" * 5)]


def test_identity_roundtrip_and_errors():
    identity = P.Identity(1, (0, 1, 0), 24_000_000, 1_000_000, 10_000, (1, 16, 48), 4, 10, 24, "ab" * 32)
    payload = P.encode_identify(identity)
    assert len(payload) == 58
    assert P.decode_identify(payload) == identity
    assert identity.input_len == 768
    with pytest.raises(P.ProtocolError, match="model hash has 2 bytes, a SHA-256 has 32"):
        P.encode_identify(P.Identity(1, (0, 1, 0), 1, 1, 1, (1, 1, 1), 1, 1, 1, "abcd"))
    with pytest.raises(P.ProtocolError, match="identify reply has 57 payload bytes, expected 58"):
        P.decode_identify(payload[:-1])


def test_result_and_error_payloads():
    result = P.Result(7, 12345, (-5, 0, 2**31 - 1))
    assert P.decode_result(P.encode_result(result), 3) == result
    with pytest.raises(P.ProtocolError, match="holds 3 readout values, the model has 10 classes"):
        P.decode_result(P.encode_result(result), 10)
    with pytest.raises(P.ProtocolError, match="result reply of 6 bytes is not 5 \\+ 4 \\* n_classes"):
        P.decode_result(b"\x00" * 6)
    error = P.ErrorReply(P.BAD_LENGTH, P.INFER, 768)
    assert P.decode_error(P.encode_error(error)) == error
    assert str(error) == "board reports wrong length for a infer frame (it needs 768 payload bytes)"
    with pytest.raises(P.ProtocolError, match="is not a reply"):
        P.decode_reply(P.Frame(P.INFER, b""))


# -- gateware engine -------------------------------------------------------------------------------------------------

N_CLASSES = 3
INPUT_LEN = 6
LAYOUT = data.StructLayout({
    "cls": unsigned(2),
    "cycles": unsigned(32),
    "readout": data.ArrayLayout(signed(12), N_CLASSES),
})
IDENTITY = P.Identity(1, (0, 1, 0), 24_000_000, 1_000_000, 10, (1, 2, 3), 4, N_CLASSES, 12, "5e" * 32)
TIMEOUT = 40


def reference(values):
    """What the network test double computes for one input map."""
    total = sum(values)
    readout = [total, -total, (total * 7) // 4 - 100]
    cls = max(range(N_CLASSES), key=lambda k: (readout[k], -k))
    return P.Result(cls, 1000 + (total & 0xFF), tuple(readout))


class NetworkDouble(wiring.Component):
    """Consumes INPUT_LEN signed bytes, then offers one result computed as :func:`reference`, after a delay."""

    i: In(stream.Signature(signed(8)))
    o: Out(stream.Signature(LAYOUT))

    def elaborate(self, platform):
        m = Module()
        total = Signal(signed(16))
        count = Signal(range(INPUT_LEN + 1))
        delay = Signal(4)
        readout = [Signal(signed(12), name=f"r{k}") for k in range(N_CLASSES)]
        m.d.comb += [readout[0].eq(total), readout[1].eq(-total), readout[2].eq(((total * 7) >> 2) - 100)]
        with m.FSM():
            with m.State("IN"):
                m.d.comb += self.i.ready.eq(delay == 0)
                with m.If(delay != 0):
                    m.d.sync += delay.eq(delay - 1)
                with m.If(self.i.valid & self.i.ready):
                    m.d.sync += [total.eq(total + self.i.payload), count.eq(count + 1), delay.eq(count[:2])]
                    with m.If(count == INPUT_LEN - 1):
                        m.d.sync += delay.eq(9)
                        m.next = "BUSY"
            with m.State("BUSY"):
                m.d.sync += delay.eq(delay - 1)
                with m.If(delay == 0):
                    m.next = "OUT"
            with m.State("OUT"):
                best = Signal(2)
                with m.If((readout[1] > readout[0]) & (readout[1] >= readout[2])):
                    m.d.comb += best.eq(1)
                with m.Elif((readout[2] > readout[0]) & (readout[2] > readout[1])):
                    m.d.comb += best.eq(2)
                m.d.comb += [self.o.valid.eq(1), self.o.payload.cls.eq(best),
                             self.o.payload.cycles.eq(1000 + total[:8])]
                m.d.comb += [self.o.payload.readout[k].eq(readout[k]) for k in range(N_CLASSES)]
                with m.If(self.o.ready):
                    m.d.sync += [total.eq(0), count.eq(0)]
                    m.next = "IN"
        return m


class Bench(Elaboratable):
    def __init__(self):
        self.engine = ProtocolEngine(input_len=INPUT_LEN, result_layout=LAYOUT,
                                     identity=P.encode_identify(IDENTITY), timeout_cycles=TIMEOUT)
        self.net = NetworkDouble()

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = self.engine
        m.submodules.net = self.net
        wiring.connect(m, self.engine.features, self.net.i)
        wiring.connect(m, self.net.o, self.engine.result)
        return m


def feed(engine, chunks, rng, *, pause=0.3, longest=4):
    """A testbench that sends ``chunks`` to ``engine.i``: bytes objects, or ints for idle cycles; after a byte it
    pauses for 1 ... ``longest`` cycles with probability ``pause``."""
    async def producer(ctx):
        for chunk in chunks:
            if isinstance(chunk, int):
                await ctx.tick().repeat(chunk)
                continue
            for value in chunk:
                ctx.set(engine.i.valid, 1)
                ctx.set(engine.i.payload, value)
                await ctx.tick().until(engine.i.ready)
                ctx.set(engine.i.valid, 0)
                if pause and rng.random() < pause:
                    await ctx.tick().repeat(1 + rng.randrange(longest))
    return producer


def run_engine(chunks, *, expect_frames=None, seed=0, max_cycles=20000):
    """Send ``chunks`` (bytes, or an int = idle cycles) to the engine; return the decoded reply frames.

    Collects ``expect_frames`` replies, or with ``expect_frames=None`` replies up to the first result reply; then
    checks that nothing more is sent.
    """
    bench = Bench()
    engine = bench.engine
    rng = random.Random(seed)
    received = bytearray()

    producer = feed(engine, chunks, rng)

    async def consumer(ctx):
        decoder = P.FrameDecoder()
        frames = []
        cycles = 0
        while (len(frames) < expect_frames if expect_frames is not None
               else not any(frame.type == P.RESULT for frame in frames)):
            ready = rng.random() < 0.7
            ctx.set(engine.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(engine.o.valid, engine.o.payload)
            if valid and ready:
                received.append(payload)
                frames += decoder.feed(bytes([payload]))
            cycles += 1
            assert cycles < max_cycles, f"no answer after {max_cycles} cycles; got {frames}"
        # nothing more is sent afterwards
        ctx.set(engine.o.ready, 1)
        for _ in range(3 * TIMEOUT):
            _, _, valid = await ctx.tick().sample(engine.o.valid)
            assert not valid, "unexpected extra reply bytes"
        run_engine.frames = frames

    sim = simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return [P.decode_reply(frame, N_CLASSES) for frame in run_engine.frames]


def infer_frame(values):
    return P.encode_infer(values)


def test_engine_identify():
    assert run_engine([P.encode_frame(P.IDENTIFY)], expect_frames=1) == [IDENTITY]


def test_engine_infer_twice():
    a, b = [1, -2, 3, 100, -128, 127], [-100, -100, -100, 5, 6, 7]
    replies = run_engine([infer_frame(a), infer_frame(b)], expect_frames=2, seed=3)
    assert replies == [reference(a), reference(b)]


def test_engine_bad_crc_identify():
    frame = bytearray(P.encode_frame(P.IDENTIFY))
    frame[-1] ^= 0xFF
    assert run_engine([bytes(frame)], expect_frames=1) == [P.ErrorReply(P.BAD_CRC, P.IDENTIFY, 0)]


def test_engine_bad_crc_infer_keeps_network_in_step():
    values = [5, 4, 3, 2, 1, 0]
    frame = bytearray(infer_frame(values))
    frame[7] ^= 0x01  # a payload byte
    replies = run_engine([bytes(frame), infer_frame(values)], expect_frames=2, seed=4)
    assert replies == [P.ErrorReply(P.BAD_CRC, P.INFER, INPUT_LEN), reference(values)]


def test_engine_wrong_length():
    frame = P.encode_frame(P.INFER, bytes(INPUT_LEN - 1))
    replies = run_engine([frame, TIMEOUT + 5, P.encode_frame(P.IDENTIFY, b"\x00")], expect_frames=2)
    assert replies == [P.ErrorReply(P.BAD_LENGTH, P.INFER, INPUT_LEN), P.ErrorReply(P.BAD_LENGTH, P.IDENTIFY, 0)]


def test_engine_unknown_type():
    replies = run_engine([P.encode_frame(0x42, b"zz"), P.encode_frame(P.IDENTIFY)], expect_frames=2)
    assert replies == [P.ErrorReply(P.UNKNOWN_TYPE, 0x42, 0), IDENTITY]


def test_engine_timeout_inside_payload_then_recovers():
    values = [9, 8, 7, 6, 5, 4]
    partial = infer_frame(values)[:8]  # header and 3 of 6 payload bytes
    replies = run_engine([partial, TIMEOUT * 2, infer_frame(values)], expect_frames=2, seed=5)
    assert replies == [P.ErrorReply(P.TIMEOUT, P.INFER, INPUT_LEN), reference(values)]


def test_engine_timeout_in_header():
    replies = run_engine([b"\xa5\x5a\x01", TIMEOUT * 2, P.encode_frame(P.IDENTIFY)], expect_frames=2)
    assert replies == [P.ErrorReply(P.TIMEOUT, P.IDENTIFY, 0), IDENTITY]


def test_engine_lone_sync_byte_is_silent():
    replies = run_engine([b"\x00\xa5\xa5", TIMEOUT * 2, P.encode_frame(P.IDENTIFY)], expect_frames=1)
    assert replies == [IDENTITY]


@pytest.mark.parametrize("seed", range(6))
def test_engine_fuzz_garbage_then_valid_frame(seed):
    """Random bytes (and broken frames) never hang the engine: after an idle gap a valid frame gets its answer."""
    rng = random.Random(100 + seed)
    values = [rng.randrange(-128, 128) for _ in range(INPUT_LEN)]
    garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(5, 60)))
    # sprinkle syncs and plausible headers into the garbage
    garbage += P.SYNC + bytes([rng.choice([P.IDENTIFY, P.INFER, 0x99]), rng.randrange(256), 0])
    if seed % 2:
        broken = bytearray(infer_frame(values))
        broken[rng.randrange(2, len(broken))] ^= 1 << rng.randrange(8)
        garbage += bytes(broken)
    chunks = [garbage, TIMEOUT * 2, infer_frame(values)]
    replies = run_engine(chunks, seed=seed, max_cycles=8000)
    assert replies[-1] == reference(values)
    assert all(isinstance(r, P.ErrorReply) for r in replies[:-1])


class SumNetwork(wiring.Component):
    """Consumes ``input_len`` signed bytes, then offers a result computed as :func:`sum_reference`."""

    def __init__(self, layout, input_len):
        self._layout = layout
        self._input_len = input_len
        super().__init__({"i": In(stream.Signature(signed(8))), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        total = Signal(signed(24))
        count = Signal(range(self._input_len + 1))
        with m.FSM():
            with m.State("IN"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [total.eq(total + self.i.payload), count.eq(count + 1)]
                    with m.If(count == self._input_len - 1):
                        m.next = "OUT"
            with m.State("OUT"):
                readout = self.o.payload.readout
                m.d.comb += [self.o.valid.eq(1), self.o.payload.cls.eq(total), self.o.payload.cycles.eq(total)]
                m.d.comb += [readout[k].eq(total * (k + 1) - k) for k in range(len(readout))]
                with m.If(self.o.ready):
                    m.d.sync += [total.eq(0), count.eq(0)]
                    m.next = "IN"
        return m


def sum_reference(layout, values):
    """The result reply :class:`SumNetwork` leads to for one input map."""
    total = sum(values)
    readout = layout.members["readout"]
    width = readout.elem_shape.width

    def wrap(value):
        value &= (1 << width) - 1
        return value - (1 << width) if value >> (width - 1) else value

    cls = total & ((1 << Shape.cast(layout.members["cls"]).width) - 1)
    cycles = total & ((1 << Shape.cast(layout.members["cycles"]).width) - 1)
    result = P.Result(cls, cycles, tuple(wrap(total * (k + 1) - k) for k in range(readout.length)))
    return P.encode_frame(P.RESULT, P.encode_result(result))


@pytest.mark.parametrize("input_len, n_classes, readout_width, cls_width, cycles_width, timeout, identity_len", [
    (1, 1, 8, 1, 16, 2, 1),          # the smallest of everything
    (300, 40, 32, 6, 32, 300, 58),   # a result reply longer than 128 bytes, a length with two non-zero bytes
    (5, 2, 9, 2, 20, 17, 90),        # an identify reply longer than the result reply
])
def test_engine_other_sizes(input_len, n_classes, readout_width, cls_width, cycles_width, timeout, identity_len):
    """Every reply of engines of other sizes, byte for byte: identify, result, errors, timeout with padding."""
    layout = data.StructLayout({
        "cls": unsigned(cls_width),
        "cycles": unsigned(cycles_width),
        "readout": data.ArrayLayout(signed(readout_width), n_classes),
    })
    rng = random.Random(input_len)
    identity = bytes(rng.randrange(256) for _ in range(identity_len))
    engine = ProtocolEngine(input_len=input_len, result_layout=layout, identity=identity, timeout_cycles=timeout)
    network = SumNetwork(layout, input_len)
    m = Module()
    m.submodules.engine = engine
    m.submodules.network = network
    wiring.connect(m, engine.features, network.i)
    wiring.connect(m, network.o, engine.result)

    maps = [[rng.randrange(-128, 128) for _ in range(input_len)] for _ in range(2)]
    chunks = [
        P.encode_frame(P.IDENTIFY),
        P.encode_infer(maps[0]),
        P.encode_frame(P.INFER, bytes(input_len + 1)),
        P.encode_frame(0x77),
        P.encode_infer(maps[1])[:-1], timeout + 5,   # the CRC cut short: the result is dropped
        P.encode_infer(maps[1])[:6], timeout + 5,    # the payload cut short: padded, the result is dropped
        b"\xa5\x5a\x01\x00", timeout + 5,            # the header cut short
        P.encode_infer(maps[1]),
    ]
    expected = [
        P.encode_frame(P.IDENTIFY_REPLY, identity),
        sum_reference(layout, maps[0]),
        P.encode_frame(P.ERROR, P.encode_error(P.ErrorReply(P.BAD_LENGTH, P.INFER, input_len))),
        P.encode_frame(P.ERROR, P.encode_error(P.ErrorReply(P.UNKNOWN_TYPE, 0x77, 0))),
        P.encode_frame(P.ERROR, P.encode_error(P.ErrorReply(P.TIMEOUT, P.INFER, input_len))),
        P.encode_frame(P.ERROR, P.encode_error(P.ErrorReply(P.TIMEOUT, P.INFER, input_len))),
        P.encode_frame(P.ERROR, P.encode_error(P.ErrorReply(P.TIMEOUT, P.IDENTIFY, 0))),
        sum_reference(layout, maps[1]),
    ]
    received = bytearray()

    producer = feed(engine, chunks, rng, pause=0.2 if timeout > 8 else 0.0, longest=3)

    async def consumer(ctx):
        frames = []
        decoder = P.FrameDecoder()
        for _ in range(40000):
            ready = rng.random() < 0.6
            ctx.set(engine.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(engine.o.valid, engine.o.payload)
            if valid and ready:
                received.append(payload)
                frames += decoder.feed(bytes([payload]))
                if len(frames) == len(expected):
                    break

    sim = simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    assert bytes(received) == b"".join(expected)


def test_engine_refuses_bad_parameters():
    identity = P.encode_identify(IDENTITY)
    with pytest.raises(ValueError, match="input length must be 1 ... 65,535 bytes, not 0"):
        ProtocolEngine(input_len=0, result_layout=LAYOUT, identity=identity, timeout_cycles=10)
    with pytest.raises(ValueError, match="timeout must be an integer of at least 2 cycles, not 1"):
        ProtocolEngine(input_len=4, result_layout=LAYOUT, identity=identity, timeout_cycles=1)
    wide = data.StructLayout({"cls": unsigned(2), "cycles": unsigned(32),
                              "readout": data.ArrayLayout(signed(40), 2)})
    with pytest.raises(ValueError, match="readout values of 40 bits do not fit the 32 bits"):
        ProtocolEngine(input_len=4, result_layout=wide, identity=identity, timeout_cycles=10)
    with pytest.raises(ValueError, match="result layout has no field 'cycles'"):
        ProtocolEngine(input_len=4, result_layout=data.StructLayout({"cls": 2}), identity=identity,
                       timeout_cycles=10)


def test_gateware_crc_step_matches_host():
    from amaranth.hdl import Signal as S
    from boards.engine import crc16_step

    m = Module()
    crc, byte = S(16), S(8)
    out = crc16_step(m, crc, byte)
    rng = random.Random(2)
    cases = [(0xFFFF, 0), (0, 0xFF), (0x1234, 0xA5)] + [(rng.randrange(65536), rng.randrange(256))
                                                         for _ in range(200)]

    async def bench(ctx):
        for c, b in cases:
            ctx.set(crc, c)
            ctx.set(byte, b)
            assert ctx.get(out) == P.crc16_update(c, b), (hex(c), hex(b))

    sim = simulator(m)
    sim.add_testbench(bench)
    sim.run()


# -- host client -----------------------------------------------------------------------------------------------------

class FakePort:
    """A serial port whose 'board' answers from a script: a list of byte strings, one per request."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.written = []
        self.pending = b""

    def write(self, data):
        self.written.append(bytes(data))
        self.pending += self.answers.pop(0) if self.answers else b""

    def read(self, n):
        data, self.pending = self.pending[:n], self.pending[n:]
        return data


def test_client_identify_and_infer():
    from boards.host import BoardClient

    result = P.Result(2, 1234, (5, -6, 7))
    port = FakePort([b"\x00\x13" + P.encode_frame(P.IDENTIFY_REPLY, P.encode_identify(IDENTITY)),
                     P.encode_frame(P.RESULT, P.encode_result(result))])
    client = BoardClient(port, timeout=0.2, idle=0)
    assert client.identify() == IDENTITY
    assert client.infer([1, 2, 3, 4, 5, 6]) == result
    assert port.written[1] == P.encode_infer([1, 2, 3, 4, 5, 6])


def test_client_retries_after_error_and_silence():
    from boards.host import BoardClient, BoardError

    result = P.Result(0, 99, (1, 1, 1))
    error = P.encode_frame(P.ERROR, P.encode_error(P.ErrorReply(P.BAD_CRC, P.INFER, 6)))
    port = FakePort([error, b"", P.encode_frame(P.RESULT, P.encode_result(result))])
    client = BoardClient(port, timeout=0.05, retries=2, idle=0)
    assert client.infer([0] * 6) == result
    assert len(port.written) == 3
    port = FakePort([error, error])
    client = BoardClient(port, timeout=0.05, retries=1, idle=0)
    with pytest.raises(BoardError, match=r"board reports bad CRC for a infer frame \(after 2 attempts\)"):
        client.infer([0] * 6)
