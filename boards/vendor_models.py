"""Behavioural Verilog models of the vendor cells a board top instantiates, for simulating it with Verilator.

The Yosys cell libraries give no behaviour for the ECP5 ``EHXPLLL`` or the Gowin ``rPLL`` (black boxes), and a
board top also has the families' IO buffers. These models let the whole board top (:class:`boards.top.BoardTop`,
through its pins) run in Verilator (:mod:`boards.top_sim`):

- IO buffers pass their value through (``IB``, ``OBZ``, ``IBUF``, ``TBUF``, ``SB_IO``-free families only; the
  iCE40 top is simulated as :class:`boards.top.BoardCore`);
- a PLL passes its reference through as its output (a simulation counts cycles, not nanoseconds: the design's UART
  divisor and timeouts are in cycles of that one clock) and raises ``LOCK`` after :data:`LOCK_CYCLES` reference
  cycles, so that the domain's power-on reset runs as on the board.

The memories and multipliers of the network are inferred (Amaranth ``Memory`` and ``*``) in the generated Verilog,
so no block RAM or DSP model is needed.
"""

__all__ = ["LOCK_CYCLES", "MODELS", "models_for"]

#: Reference cycles a simulated PLL takes to lock.
LOCK_CYCLES = 40

_LOCK = f"""
  reg [7:0] lock_count = 8'd0;
  always @(posedge {{clock}}) if (lock_count != 8'd{LOCK_CYCLES}) lock_count <= lock_count + 8'd1;
  assign LOCK = lock_count == 8'd{LOCK_CYCLES};
"""

_ECP5 = """
module IB(input I, output O);
  assign O = I;
endmodule

module OBZ(input I, input T, output O);
  assign O = I;  // T (tristate) is tied low by an output buffer
endmodule

module EHXPLLL(input CLKI, input CLKFB, input PHASESEL1, input PHASESEL0, input PHASEDIR, input PHASESTEP,
               input PHASELOADREG, input STDBY, input PLLWAKESYNC, input RST, input ENCLKOP, input ENCLKOS,
               input ENCLKOS2, input ENCLKOS3, output CLKOP, output CLKOS, output CLKOS2, output CLKOS3,
               output LOCK, output INTLOCK, output REFCLK, output CLKINTFB);
  parameter CLKI_DIV = 1;
  parameter CLKFB_DIV = 1;
  parameter CLKOP_DIV = 8;
  parameter CLKOS_DIV = 8;
  parameter CLKOS2_DIV = 8;
  parameter CLKOS3_DIV = 8;
  parameter CLKOP_ENABLE = "ENABLED";
  parameter CLKOS_ENABLE = "DISABLED";
  parameter CLKOS2_ENABLE = "DISABLED";
  parameter CLKOS3_ENABLE = "DISABLED";
  parameter CLKOP_CPHASE = 0;
  parameter CLKOS_CPHASE = 0;
  parameter CLKOS2_CPHASE = 0;
  parameter CLKOS3_CPHASE = 0;
  parameter CLKOP_FPHASE = 0;
  parameter CLKOS_FPHASE = 0;
  parameter CLKOS2_FPHASE = 0;
  parameter CLKOS3_FPHASE = 0;
  parameter FEEDBK_PATH = "CLKOP";
  parameter CLKOP_TRIM_POL = "RISING";
  parameter CLKOP_TRIM_DELAY = 0;
  parameter CLKOS_TRIM_POL = "RISING";
  parameter CLKOS_TRIM_DELAY = 0;
  parameter OUTDIVIDER_MUXA = "DIVA";
  parameter OUTDIVIDER_MUXB = "DIVB";
  parameter OUTDIVIDER_MUXC = "DIVC";
  parameter OUTDIVIDER_MUXD = "DIVD";
  parameter PLL_LOCK_MODE = 0;
  parameter PLL_LOCK_DELAY = 200;
  parameter STDBY_ENABLE = "DISABLED";
  parameter REFIN_RESET = "DISABLED";
  parameter SYNC_ENABLE = "DISABLED";
  parameter INT_LOCK_STICKY = "ENABLED";
  parameter DPHASE_SOURCE = "DISABLED";
  parameter PLLRST_ENA = "DISABLED";
  parameter INTFB_WAKE = "DISABLED";
  assign CLKOP = CLKI;
  assign {CLKOS, CLKOS2, CLKOS3, INTLOCK, REFCLK, CLKINTFB} = 6'b0;
""" + _LOCK.format(clock="CLKI") + """endmodule
"""

_GOWIN = """
module IBUF(input I, output O);
  assign O = I;
endmodule

module OBUF(input I, output O);
  assign O = I;
endmodule

module TBUF(input I, input OEN, output O);
  assign O = I;  // OEN (active low) is tied low by an output buffer
endmodule

module rPLL(input CLKIN, input CLKFB, input [5:0] FBDSEL, input [5:0] IDSEL, input [5:0] ODSEL, input [3:0] PSDA,
            input [3:0] DUTYDA, input [3:0] FDLY, input RESET, input RESET_P, output CLKOUT, output CLKOUTP,
            output CLKOUTD, output CLKOUTD3, output LOCK);
  parameter FCLKIN = "100.0";
  parameter DEVICE = "GW1N-1";
  parameter DYN_IDIV_SEL = "false";
  parameter IDIV_SEL = 0;
  parameter DYN_FBDIV_SEL = "false";
  parameter FBDIV_SEL = 0;
  parameter DYN_ODIV_SEL = "false";
  parameter ODIV_SEL = 8;
  parameter PSDA_SEL = "0000";
  parameter DYN_DA_EN = "false";
  parameter DUTYDA_SEL = "1000";
  parameter CLKOUT_FT_DIR = 1'b1;
  parameter CLKOUTP_FT_DIR = 1'b1;
  parameter CLKOUT_DLY_STEP = 0;
  parameter CLKOUTP_DLY_STEP = 0;
  parameter CLKFB_SEL = "internal";
  parameter CLKOUT_BYPASS = "false";
  parameter CLKOUTP_BYPASS = "false";
  parameter CLKOUTD_BYPASS = "false";
  parameter DYN_SDIV_SEL = 2;
  parameter CLKOUTD_SRC = "CLKOUT";
  parameter CLKOUTD3_SRC = "CLKOUT";
  assign CLKOUT = CLKIN;
  assign {CLKOUTP, CLKOUTD, CLKOUTD3} = 3'b0;
""" + _LOCK.format(clock="CLKIN") + """endmodule
"""

#: The models of each family (``hw.device.Device.family``).
MODELS = {"ecp5": _ECP5, "gowin": _GOWIN}


def models_for(device):
    """The Verilog models of ``device``'s family.

    Raises
    ------
    ValueError
        If the family has none (the iCE40 board logic is simulated without its pins, as ``BoardCore``).
    """
    try:
        return MODELS[device.family]
    except KeyError:
        raise ValueError(f"no simulation models of the {device.family} cells of {device.name} (known: "
                         f"{', '.join(sorted(MODELS))}); simulate boards.top.BoardCore instead") from None
