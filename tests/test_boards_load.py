"""Weights in SPRAM on the board: the board logic through its serial pins (bit level, cocotb + Verilator) and the
virtual board behind a pseudo-terminal with ``boards.host``, which loads the weight image when the board asks."""

import json

import numpy as np
import pytest

from boards import protocol as P
from virtual_board import ROOT, host, virtual_board
#: The tiny model's dense and readout weights in SPRAM (one load chunk).
PARAMS = {"fc1": {"weights": "spram"}, "out": {"weights": "spram"}}


def _expected(model, x):
    from golden.network import run
    from hw.cycles import cycles
    from hw.plan import plan

    golden = run(model, x)
    total = cycles(plan(model, params=PARAMS), golden.spikes).total
    return [P.Result(int(golden.classes[k]), int(total[k]), tuple(int(v) for v in golden.readout[k]))
            for k in range(len(x))]


def test_board_refuses_then_loads_then_classifies(tiny_shipped, tmp_path):
    from boards.board_sim import Step, simulate
    from golden.randmodel import random_inputs
    from hw.plan import plan
    from hw.weights import image

    model = tiny_shipped
    x = random_inputs(model, 2, np.random.default_rng(5))
    words = image(plan(model, params=PARAMS))
    chunks = P.image_chunks(words)
    assert len(chunks) == 1
    timeout = 1600
    wrong = P.image_chunks([w ^ 0x0100 for w in words])
    steps = [
        Step(send=P.encode_infer(x[0]), replies=1),   # refused at its length field; the payload is garbage
        Step(idle=3 * timeout),
        Step(send=wrong[0], replies=1),               # a whole image, but not the bitstream's
        Step(send=P.encode_infer(x[0]), replies=1),
        Step(idle=3 * timeout),
        *[Step(send=chunk, replies=1) for chunk in chunks],
        *[Step(send=P.encode_infer(sample), replies=1) for sample in x],
    ]
    frames, _ = simulate(model, steps, run_dir=tmp_path, timeout_cycles=timeout, params=PARAMS,
                         max_cycles=20_000_000)
    replies = [P.decode_reply(frame, len(model.classes)) for frame in frames]
    size = int(np.prod(model.input_shape))
    not_loaded = P.ErrorReply(P.NOT_LOADED, P.INFER, size)
    # the refused infer's payload is scanned for frames: it may draw error replies of its own
    replies = [r for r in replies if not (isinstance(r, P.ErrorReply) and r.code in (P.TIMEOUT, P.BAD_LENGTH,
                                                                                       P.UNKNOWN_TYPE, P.BAD_CRC))]
    assert replies == [not_loaded, P.ErrorReply(P.BAD_IMAGE, P.LOAD, P.LOAD_PAYLOAD), not_loaded,
                       P.LoadReply(True, 1), *_expected(model, x)]


def _without_garbage_replies(replies):
    # a refused infer's payload is scanned for frames: it may draw error replies of its own
    return [r for r in replies if not (isinstance(r, P.ErrorReply) and r.code in (P.TIMEOUT, P.BAD_LENGTH,
                                                                                    P.UNKNOWN_TYPE, P.BAD_CRC))]


def test_board_loads_its_image_from_the_flash_by_itself(tiny_shipped, tmp_path):
    """hw.build --flash: after reset the board reads its image from the SPI flash (a 25-series model, powered down
    at first) and classifies without a UART load; it answers identify and refuses inference while it reads."""
    from boards.board_sim import Step, simulate
    from boards.flash import FLASH_OFFSET, flash_image
    from golden.randmodel import random_inputs
    from hw.plan import plan
    from hw.weights import image

    model = tiny_shipped
    x = random_inputs(model, 2, np.random.default_rng(7))
    words = image(plan(model, params=PARAMS))
    timeout = 1600
    steps = [
        Step(send=P.encode_frame(P.IDENTIFY), replies=1),
        Step(send=P.encode_infer(x[0]), replies=1),   # still reading: refused
        Step(idle=3 * timeout),
        Step(idle=200_000),                           # 1,038 bytes at 8 x 18 cycles a byte
        *[Step(send=P.encode_infer(sample), replies=1) for sample in x],
    ]
    frames, _ = simulate(model, steps, run_dir=tmp_path, timeout_cycles=timeout, params=PARAMS,
                         max_cycles=20_000_000, flash_offset=FLASH_OFFSET,
                         flash={FLASH_OFFSET: flash_image(words)})
    assert frames[0].type == P.IDENTIFY_REPLY
    replies = _without_garbage_replies([P.decode_reply(frame, len(model.classes)) for frame in frames[1:]])
    size = int(np.prod(model.input_shape))
    assert replies == [P.ErrorReply(P.NOT_LOADED, P.INFER, size), *_expected(model, x)]


def test_board_with_an_erased_flash_refuses_then_takes_a_uart_load(tiny_shipped, tmp_path):
    from boards.board_sim import Step, simulate
    from boards.flash import FLASH_OFFSET
    from golden.randmodel import random_inputs
    from hw.plan import plan
    from hw.weights import image

    model = tiny_shipped
    x = random_inputs(model, 1, np.random.default_rng(8))
    chunks = P.image_chunks(image(plan(model, params=PARAMS)))
    timeout = 1600
    steps = [
        Step(idle=20_000),                            # the reader gives up at the header (an erased flash)
        Step(send=P.encode_infer(x[0]), replies=1),
        Step(idle=3 * timeout),
        *[Step(send=chunk, replies=1) for chunk in chunks],
        Step(send=P.encode_infer(x[0]), replies=1),
    ]
    frames, _ = simulate(model, steps, run_dir=tmp_path, timeout_cycles=timeout, params=PARAMS,
                         max_cycles=20_000_000, flash_offset=FLASH_OFFSET, flash={})
    replies = _without_garbage_replies([P.decode_reply(frame, len(model.classes)) for frame in frames])
    size = int(np.prod(model.input_shape))
    assert replies == [P.ErrorReply(P.NOT_LOADED, P.INFER, size), P.LoadReply(True, 1), *_expected(model, x)]


@pytest.fixture(scope="module")
def virtual_spram_port(tmp_path_factory):
    """A virtual iCEBreaker running the tiny model with its weights in SPRAM; yields its port name."""
    with virtual_board(tmp_path_factory.mktemp("virtual-spram"), "--model", str(ROOT / "models" / "tiny"),
                       "--params", json.dumps(PARAMS)) as port:
        yield port


_host = host


def test_host_loads_the_image_and_replays(virtual_spram_port, tiny_shipped, tmp_path):
    from sim.stimulus import mixed

    maps = tmp_path / "maps.npy"
    np.save(maps, mixed(tiny_shipped, samples=6, seed=3).x)
    common = ("--port", virtual_spram_port, "--model", str(ROOT / "models" / "tiny"), "--verify", str(maps))
    # without the build's parameters the host has no image to load: it says so
    out = _host(*common)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the board needs a weight image, but this plan of the model keeps every weight in block RAM: pass the " \
           "build's --params, or its weights.bin with --weights" in out.stderr, out.stderr
    # an image of another plan (other lanes) is refused by the board, by name
    other = {"fc1": {"weights": "spram", "lanes": 1}, "out": {"weights": "spram", "lanes": 1}}
    out = _host(*common, "--params", json.dumps(other))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "weight image has" in out.stderr or "does not match the bitstream" in out.stderr, out.stderr
    out = _host(*common, "--params", json.dumps(PARAMS))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("samples 6; mismatches 0 (class, readout values, "
                                                          "cycle count); ")
    # the same image from a file, as hw.build writes it
    from hw.plan import plan
    from hw.weights import image
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"".join(w.to_bytes(2, "little") for w in image(plan(tiny_shipped, params=PARAMS))))
    out = _host(*common, "--params", json.dumps(PARAMS), "--weights", str(weights))
    assert out.returncode == 0, out.stdout + out.stderr
