# amaranth: UnusedElaboratable=no
"""The SPI flash reader (boards/flash.py) against the behavioural 25-series flash (boards/flash_model.py): the words
it delivers, the header and CRC checks, an erased flash, a wrong CRC, a truncated image, the wake-up wait, abort."""

import random

import pytest
from amaranth.sim import Simulator

from boards.flash import FLASH_OFFSET, HEADER_BYTES, MAGIC, FlashLoader, flash_header, flash_image, padded_bytes
from boards.flash_model import SPIFlashModel
from boards.protocol import LOAD_CHUNK, crc16

#: 600 words: 1,200 bytes, padded to two load chunks.
WORDS = [random.Random(3).randrange(1 << 16) for _ in range(600)]
PADDED = [int.from_bytes(padded_bytes(WORDS)[k:k + 2], "little") for k in range(0, 2 * LOAD_CHUNK, 2)]


def run(contents, *, clock_hz=12e6, wake_cycles=0, abort_at=None, cycles=None):
    """Simulate a reader of ``WORDS`` on a flash holding ``contents``; return what it did."""
    dut = FlashLoader(words=WORDS, clock_hz=clock_hz, wake_us=1.0)
    flash = SPIFlashModel(contents, wake_cycles=wake_cycles)
    seen = {"words": [], "restarts": [], "done": [], "failed": False, "busy_end": None, "cycles": 0}
    limit = cycles or (dut.read_bytes * 16 * dut.half_period + dut.wake_cycles + 200)

    async def bench(ctx):
        for cycle in range(limit):
            if abort_at is not None:
                ctx.set(dut.abort, cycle == abort_at)
            if ctx.get(dut.load.words.valid):
                seen["words"].append(ctx.get(dut.load.words.payload))
            if ctx.get(dut.load.restart):
                seen["restarts"].append(len(seen["words"]))
            if ctx.get(dut.done):
                seen["done"].append(cycle)
            await ctx.tick()
            ctx.set(dut.flash.cipo, flash.step(ctx.get(dut.flash.cs), ctx.get(dut.flash.clk),
                                               ctx.get(dut.flash.copi)))
            if not ctx.get(dut.busy) and not seen["cycles"]:
                seen["cycles"] = cycle + 1
        seen["failed"] = bool(ctx.get(dut.failed))
        seen["busy_end"] = bool(ctx.get(dut.busy))
        seen["cs_end"] = bool(ctx.get(dut.flash.cs)) or bool(ctx.get(dut.flash.clk))   # both low at the end

    sim = Simulator(dut)
    sim.add_clock(1 / clock_hz)
    sim.add_testbench(bench)
    sim.run()
    return seen, flash, dut


def test_image_layout():
    image = flash_image(WORDS)
    data = padded_bytes(WORDS)
    assert len(data) == 2 * LOAD_CHUNK and data[1200:] == bytes(2 * LOAD_CHUNK - 1200)
    assert image[:4] == MAGIC and image[HEADER_BYTES:] == data
    assert int.from_bytes(image[4:8], "little") == 2 * LOAD_CHUNK
    assert int.from_bytes(image[8:10], "little") == crc16(data)
    assert flash_header(WORDS) == image[:HEADER_BYTES]


@pytest.mark.parametrize("clock_hz", [12e6, 24e6])
def test_loads_the_image(clock_hz):
    seen, flash, dut = run({FLASH_OFFSET: flash_image(WORDS)}, clock_hz=clock_hz, wake_cycles=8)
    assert dut.half_period == {12e6: 1, 24e6: 2}[clock_hz]
    assert seen["words"] == PADDED
    assert seen["restarts"] == [0]          # once, before the first word
    assert len(seen["done"]) == 1 and not seen["failed"] and not seen["busy_end"] and not seen["cs_end"]
    assert flash.commands == [0xAB, 0x03]
    assert flash.reads == [(FLASH_OFFSET, dut.read_bytes - 4)]


def test_erased_flash_is_refused_at_the_header():
    seen, flash, dut = run({})
    assert seen["failed"] and not seen["done"] and not seen["busy_end"] and not seen["cs_end"]
    assert seen["words"] == [] and seen["restarts"] == []
    # the header's last byte ends the read: the image is not read at all
    assert flash.reads == [(FLASH_OFFSET, HEADER_BYTES)]


def test_image_of_another_build_is_refused_at_the_header():
    other = flash_image([w ^ 1 for w in WORDS])
    seen, _, _ = run({FLASH_OFFSET: other})
    assert seen["failed"] and seen["words"] == [] and seen["restarts"] == []


def test_wrong_crc_leaves_it_unloaded():
    image = bytearray(flash_image(WORDS))
    image[HEADER_BYTES + 77] ^= 0x10
    seen, _, _ = run({FLASH_OFFSET: bytes(image)})
    assert seen["failed"] and not seen["done"]
    assert len(seen["words"]) == len(PADDED) and seen["words"] != PADDED


def test_truncated_image_leaves_it_unloaded():
    image = flash_image(WORDS)
    seen, _, _ = run({FLASH_OFFSET: image[:HEADER_BYTES + 700]})   # the rest reads as erased
    assert seen["failed"] and not seen["done"]
    assert seen["words"][:350] == PADDED[:350] and seen["words"][350:] == [0xFFFF] * (len(PADDED) - 350)


def test_waits_for_the_flash_to_wake():
    # a part slower to wake than the reader waits ignores the read: its data line stays high, and the header fails
    seen, flash, dut = run({FLASH_OFFSET: flash_image(WORDS)}, wake_cycles=FlashLoader(
        words=WORDS, clock_hz=12e6, wake_us=1.0).wake_cycles + 40)
    assert seen["failed"] and seen["words"] == []
    assert flash.commands == [0xAB, 0x03] and flash.reads == []


@pytest.mark.parametrize("abort_at", [3, 2000])     # in the wake command, in the image
def test_abort_ends_the_read(abort_at):
    seen, flash, dut = run({FLASH_OFFSET: flash_image(WORDS)}, abort_at=abort_at)
    assert not seen["done"] and not seen["failed"] and not seen["busy_end"] and not seen["cs_end"]
    assert seen["cycles"] == abort_at + 1
    if abort_at > 1000:
        assert 0 < len(seen["words"]) < len(PADDED)
    else:
        assert seen["words"] == [] and flash.commands == []


def test_refuses_bad_options():
    with pytest.raises(ValueError, match=r"^the weight image is empty: the design keeps no weights in SPRAM, so "
                                         r"nothing is loaded from the flash$"):
        FlashLoader(words=[], clock_hz=12e6)
    with pytest.raises(ValueError, match=r"^flash offset must be 0 \.\.\. 16,775,158 \(a 24-bit address that leaves "
                                         r"room for the 2,058-byte image\), not 16777215$"):
        FlashLoader(words=WORDS, clock_hz=12e6, offset=(1 << 24) - 1)
    with pytest.raises(ValueError, match=r"^SPI clock must be positive, not 0$"):
        FlashLoader(words=WORDS, clock_hz=12e6, sck_hz=0)


def test_build_with_flash_writes_the_flash_image(tmp_path, capsys):
    """hw.build --flash (without the tools): the flash image beside the bitstream, the reader on the board's flash
    pins, the reports naming both; without --flash the design has neither."""
    import json
    from pathlib import Path

    from flow import build as hwbuild
    from flow.cli import main as build_main
    from golden.manifest import load
    from hw.plan import plan
    from hw.weights import image

    tiny = Path(__file__).resolve().parents[1] / "models" / "tiny"
    params = {"fc1": {"weights": "spram"}}
    out = tmp_path / "flash"
    result = hwbuild.build(board="icebreaker", model_dir=tiny, out=out, clock_mhz=24, do_build=False,
                           progress=False, params=params, flash=True)
    words = image(plan(load(tiny), params=params))
    assert (out / "weights_flash.bin").read_bytes() == flash_image(words)
    report = json.loads((out / "report.json").read_text())
    assert report["weight_image"]["flash"] == {"file": "weights_flash.bin", "offset": FLASH_OFFSET,
                                               "bytes": len(flash_image(words)), "sck_hz": 6e6}
    assert any("iceprog -o 1024k weights_flash.bin" in w for w in result.warnings)
    assert "iceprog -o 1024k weights_flash.bin" in (out / "report.md").read_text()
    pcf = (out / "top.pcf").read_text()
    for name, pin in (("cs", 16), ("clk", 15), ("copi", 14), ("cipo", 17), ("wp", 12), ("hold", 13)):
        assert f"set_io spi_flash_1x_0__{name}__io {pin}\n" in pcf
    plain = tmp_path / "plain"
    hwbuild.build(board="icebreaker", model_dir=tiny, out=plain, clock_mhz=24, do_build=False, progress=False,
                  params=params)
    assert not (plain / "weights_flash.bin").exists() and "spi_flash" not in (plain / "top.pcf").read_text()
    # the pre-synthesis estimate counts the reader where the design has one
    rows = {name: cells for name, cells, _ in report["estimate"]["breakdown"]}
    plain_estimate = json.loads((plain / "report.json").read_text())["estimate"]
    assert rows["SPI flash reader"] > 0 and "SPI flash reader" not in {row[0] for row in plain_estimate["breakdown"]}
    assert report["estimate"]["logic_cells"] == plain_estimate["logic_cells"] + rows["SPI flash reader"]
    # a model without SPRAM weights: nothing to read, a warning, no reader
    code = build_main(["--board", "icebreaker", "--model", str(tiny), "--no-pnr", "--quiet", "--flash",
                       "--out", str(tmp_path / "none")])
    assert code == 0
    assert "--flash: the model keeps no weights in SPRAM, so the design has no flash reader" in capsys.readouterr().err
    assert "spi_flash" not in (tmp_path / "none" / "top.pcf").read_text()
    none_estimate = json.loads((tmp_path / "none" / "report.json").read_text())["estimate"]
    assert "SPI flash reader" not in {row[0] for row in none_estimate["breakdown"]}


def test_flash_offset_is_checked_against_the_board():
    from boards import BOARDS
    from boards.flash import check_flash_offset

    check_flash_offset(BOARDS["icebreaker"], FLASH_OFFSET, 2058)
    with pytest.raises(ValueError, match=r"^--flash: board ulx3s-85f \(ULX3S \(LFE5U-85F\)\) gives no SPI flash "
                                         r"resource the design can read its weight image from; load the image over "
                                         r"the UART \(python -m boards.host\)$"):
        check_flash_offset(BOARDS["ulx3s-85f"], FLASH_OFFSET)
    with pytest.raises(ValueError, match=r"^flash offset must be a multiple of 65,536 at or above the 104,090-byte "
                                         r"bitstream of the iCE40UP5K, not 65536$"):
        check_flash_offset(BOARDS["icebreaker"], 0x10000)
    with pytest.raises(ValueError, match=r"^a 4,000,000-byte flash image at 0x100000 does not fit the 4,194,304-byte "
                                         r"flash of board upduino_v3$"):
        check_flash_offset(BOARDS["upduino_v3"], FLASH_OFFSET, 4_000_000)


def test_program_writes_the_flash_image_behind_the_bitstream(tmp_path):
    from flow.build import flash_image_command

    assert flash_image_command(tmp_path, "icebreaker", loader="ofl") is None
    (tmp_path / "weights_flash.bin").write_bytes(flash_image(WORDS))
    assert flash_image_command(tmp_path, "icebreaker", loader="ofl") == [
        "ofl", "-b", "ice40_generic", "-f", "-o", "1048576", str(tmp_path / "weights_flash.bin")]


def test_board_core_needs_an_image_for_a_reader():
    from pathlib import Path

    from boards.top import BoardCore
    from golden.manifest import load

    tiny = load(Path(__file__).resolve().parents[1] / "models" / "tiny")
    with pytest.raises(ValueError, match=r"^model tiny keeps no weights in SPRAM: there is nothing to load from the "
                                         r"flash \(build without --flash\)$"):
        BoardCore(tiny, clock_hz=24e6, baud=1_000_000, flash_offset=FLASH_OFFSET)
    core = BoardCore(tiny, clock_hz=24e6, baud=1_000_000, params={"fc1": {"weights": "spram"}},
                     flash_offset=FLASH_OFFSET)
    assert "flash" in core.signature.members and core.flash_loader.half_period == 2
    assert "flash" not in BoardCore(tiny, clock_hz=24e6, baud=1_000_000).signature.members
