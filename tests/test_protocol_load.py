# amaranth: UnusedElaboratable=no
"""The load command (docs/protocol.md, 'Loading weights'): the engine writes a weight image into SPRAM-resident
memories, checks the frame CRC, the chunk order and the image CRC, and refuses to classify until an image is in."""

import random

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from boards import protocol as P
from boards.engine import ProtocolEngine
from boards.top import padded_image_crc
from hw.weights import WeightMemory, image_words

from test_protocol import IDENTITY, INPUT_LEN, LAYOUT, N_CLASSES, TIMEOUT, NetworkDouble, feed, reference
from hw_streams import simulator

#: A 40-bit wide memory of 230 words: 690 image words, two load chunks (the second padded).
WIDTH, DEPTH = 40, 230
WORDS = [random.Random(5).randrange(1, 1 << WIDTH) for _ in range(DEPTH)]
IMAGE = image_words(WIDTH, DEPTH, WORDS)


class LoadBench(Elaboratable):
    def __init__(self):
        self.engine = ProtocolEngine(input_len=INPUT_LEN, result_layout=LAYOUT, identity=P.encode_identify(IDENTITY),
                                     timeout_cycles=TIMEOUT, image_words=len(IMAGE),
                                     image_crc=padded_image_crc(IMAGE))
        self.net = NetworkDouble()
        self.rom = WeightMemory(shape=WIDTH, depth=DEPTH, init=WORDS, place="spram_rom")

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = self.engine
        m.submodules.net = self.net
        m.submodules.rom = self.rom
        wiring.connect(m, self.engine.features, self.net.i)
        wiring.connect(m, self.net.o, self.engine.result)
        wiring.connect(m, self.engine.load, self.rom.load)
        return m


def session(chunks, replies, *, seed=0):
    """Send ``chunks`` (bytes, or ints for idle cycles), collect ``replies`` reply frames; return them decoded, the
    engine's ``loaded`` and the memory's words read back afterwards."""
    bench = LoadBench()
    engine, rom = bench.engine, bench.rom
    rng = random.Random(seed)
    out = {}

    async def consumer(ctx):
        decoder, frames = P.FrameDecoder(), []
        for _ in range(200_000):
            if len(frames) == replies:
                break
            ready = rng.random() < 0.8
            ctx.set(engine.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(engine.o.valid, engine.o.payload)
            if valid and ready:
                frames += decoder.feed(bytes([payload]))
        ctx.set(engine.o.ready, 1)
        while "sent" not in out:  # the rest of a refused frame is scanned as garbage
            await ctx.tick()
        for _ in range(3 * TIMEOUT):
            _, _, valid = await ctx.tick().sample(engine.o.valid)
            assert not valid, "unexpected extra reply bytes"
        out["frames"], out["loaded"] = frames, ctx.get(engine.loaded)
        words = []
        for addr in range(DEPTH):
            ctx.set(rom.read.addr, addr)
            await ctx.tick()
            words.append(ctx.get(rom.read.data))
        out["words"] = words

    send = feed(engine, chunks, rng, pause=0.1)

    async def producer(ctx):
        await send(ctx)
        out["sent"] = True

    sim = simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return [P.decode_reply(f, N_CLASSES) for f in out["frames"]], out["loaded"], out["words"]


VALUES = [3, -7, 100, -128, 127, 5]


def test_chunks_of_an_image():
    frames = P.image_chunks(IMAGE)
    assert len(frames) == 2 and all(len(f) == P.OVERHEAD_BYTES + P.LOAD_PAYLOAD for f in frames)
    body = b"".join(P.decode_frame(f).payload[2:] for f in frames)
    assert body[:2 * len(IMAGE)] == b"".join(w.to_bytes(2, "little") for w in IMAGE)
    assert body[2 * len(IMAGE):] == bytes(len(body) - 2 * len(IMAGE))
    with pytest.raises(P.ProtocolError, match=r"^a load chunk holds 1,024 bytes, not 3$"):
        P.encode_load(0, b"abc")
    with pytest.raises(P.ProtocolError, match=r"^image word 65536 does not fit 16 bits$"):
        P.image_chunks([65536])


def test_infer_is_refused_until_the_image_is_loaded():
    replies, loaded, words = session([P.encode_infer(VALUES)], 1)
    assert replies == [P.ErrorReply(P.NOT_LOADED, P.INFER, INPUT_LEN)] and not loaded
    assert str(replies[0]) == "board reports no weight image loaded for a infer frame"
    assert words == [0] * DEPTH  # the SPRAM model starts empty


def test_load_then_infer():
    first, second = P.image_chunks(IMAGE)
    replies, loaded, words = session([first, second, P.encode_infer(VALUES)], 3)
    assert replies == [P.LoadReply(False, 2), P.LoadReply(True, 2), reference(VALUES)]
    assert loaded and words == WORDS


def test_load_again_from_chunk_zero():
    first, second = P.image_chunks(IMAGE)
    replies, loaded, words = session([first, second, first, second], 4)
    assert replies[-1] == P.LoadReply(True, 2) and loaded and words == WORDS


def test_bad_crc_leaves_the_board_unloaded():
    first, second = P.image_chunks(IMAGE)
    broken = bytearray(second)
    broken[100] ^= 0x40
    replies, loaded, _ = session([first, bytes(broken), P.encode_infer(VALUES)], 3)
    assert replies == [P.LoadReply(False, 2), P.ErrorReply(P.BAD_CRC, P.LOAD, P.LOAD_PAYLOAD),
                       P.ErrorReply(P.NOT_LOADED, P.INFER, INPUT_LEN)]
    assert not loaded


def test_short_image_is_not_loaded():
    first, _ = P.image_chunks(IMAGE)
    replies, loaded, _ = session([first, P.encode_infer(VALUES)], 2)
    assert replies == [P.LoadReply(False, 2), P.ErrorReply(P.NOT_LOADED, P.INFER, INPUT_LEN)] and not loaded


def test_wrong_size_and_wrong_order_and_wrong_image_are_refused_by_name():
    first, second = P.image_chunks(IMAGE)
    short = P.encode_frame(P.LOAD, b"\x00\x00" + bytes(1000))
    replies, loaded, _ = session([short, 4 * TIMEOUT, second], 2)
    assert replies == [P.ErrorReply(P.BAD_LENGTH, P.LOAD, P.LOAD_PAYLOAD),
                       P.ErrorReply(P.BAD_SEQUENCE, P.LOAD, P.LOAD_PAYLOAD)]
    assert str(replies[0]) == "board reports wrong length for a load frame (it needs 1,026 payload bytes)"
    assert str(replies[1]) == "board reports load chunk out of sequence for a load frame"
    other = P.image_chunks([w ^ 1 for w in IMAGE])
    replies, loaded, _ = session(other, 2)
    assert replies == [P.LoadReply(False, 2), P.ErrorReply(P.BAD_IMAGE, P.LOAD, P.LOAD_PAYLOAD)] and not loaded
    assert str(replies[1]) == ("board reports weight image does not match the bitstream (its CRC differs) for a "
                               "load frame")
