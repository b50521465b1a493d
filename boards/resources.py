"""Device budgets and the pre-synthesis fit check.

Before a build spends minutes in synthesis and place-and-route, :func:`check_fit` compares what a model needs with
what the device has and refuses a model that cannot fit, naming the resource and the bound:

- **block RAM** (EBR): the memories of ``hw.network.plan`` in their best iCE40 aspect ratio (``Memory.ebr``); the
  board logic's receive FIFO is kept in registers;
- **SPRAM** and **DSP**: the generated network instantiates neither; they are listed for the report;
- **logic cells**: an estimate from the plan's register files, neuron units and accumulation lanes, scaled by
  :data:`LOGIC_CALIBRATION` (measured on real builds), plus the fixed cost of the UART, the protocol engine and the
  PLL reset. It is a coarse pre-synthesis figure (the report gives nextpnr's real count); a model is refused if the
  estimate exceeds the device, and a warning is given above :data:`LOGIC_WARN`.
"""

import dataclasses

__all__ = ["Budget", "ICE40UP5K_SG48", "Need", "FitError", "estimate", "check_fit", "LOGIC_WARN", "BOARD_LOGIC"]

#: Fraction of the logic cells above which :func:`check_fit` warns.
LOGIC_WARN = 0.8

#: Memories of at most this many bits are listed apart (Yosys may build them from logic instead of a block RAM);
#: they still count in the refusal: in the builds measured so far most of them did land in block RAM.
SMALL_MEMORY_BITS = 1024

#: Ratio of nextpnr's logic cells to the per-core sum of :func:`_layer_logic`, measured on real builds of this
#: network generator (synth_ice40 -dsp). Recalibrated after the conv core's spike table, the step buffer's list
#: layout and the smaller protocol engine: models/fsdd_scnn on the iCEBreaker places in 4,008 logic cells in all,
#: about 3,410 for the network against 2,328 estimated before scaling (1.46). Slightly low, so that the check does
#: not refuse a model that would fit.
LOGIC_CALIBRATION = 1.45

#: Logic cells of the board logic around the network (UART, receive FIFO, protocol engine, power-on reset, LEDs);
#: measured with yosys (python -m hw.area: engine 432, UART and receive FIFO 100 LUT4s; 210 flip-flops).
BOARD_LOGIC = 600


@dataclasses.dataclass(frozen=True)
class Budget:
    """Resources of one device and package.

    Members
    -------
    device, package : str
    logic_cells : int
        LUT4 + flip-flop cells (nextpnr's ``ICESTORM_LC``).
    ebr : int
        4-kbit block RAMs (``ICESTORM_RAM``).
    spram : int
        256-kbit single-port RAMs (``ICESTORM_SPRAM``).
    dsp : int
        ``SB_MAC16`` blocks (``ICESTORM_DSP``).
    io : int
        User IO pins (``SB_IO``).
    pll : int
    global_buffers : int
        Global clock/reset networks (``SB_GB``).
    """

    device: str
    package: str
    logic_cells: int
    ebr: int
    spram: int
    dsp: int
    io: int
    pll: int
    global_buffers: int = 8

    EBR_BITS = 4096
    SPRAM_BITS = 256 * 1024

    @property
    def ebr_bits(self):
        return self.ebr * self.EBR_BITS


#: iCE40UP5K in the SG48 package (iCEBreaker, iCEBreaker bitsy, UPduino v3).
ICE40UP5K_SG48 = Budget(device="iCE40UP5K", package="SG48", logic_cells=5280, ebr=30, spram=4, dsp=8, io=39, pll=1)


class FitError(ValueError):
    """A model does not fit a board's device; ``need`` and ``budget`` hold the figures."""

    def __init__(self, message, need=None, budget=None):
        super().__init__(message)
        self.need = need
        self.budget = budget


@dataclasses.dataclass(frozen=True)
class Need:
    """What a model needs on a device (pre-synthesis).

    Members
    -------
    logic_cells : int
        Estimated logic cells (network and board logic).
    ebr : int
        Block RAMs of all the plan's memories.
    ebr_small : int
        How many of them hold memories of at most :data:`SMALL_MEMORY_BITS` bits (Yosys may build those from
        logic instead).
    ebr_bits : int
        Bits stored in those memories.
    spram, dsp : int
    breakdown : tuple of (str, int, int)
        ``(name, logic cells, EBR)`` per layer and for the board logic.
    """

    logic_cells: int
    ebr: int
    ebr_small: int
    ebr_bits: int
    spram: int
    dsp: int
    breakdown: tuple


def _layer_logic(lp, layer):
    """Logic cells of one core (coarse): register files, neuron units, accumulation lanes, control."""
    registers = sum(mem.bits for mem in lp.memories if mem.kind == "registers")
    cells = 60 + registers  # control, counters; one flip-flop per register bit
    if lp.kind == "conv2d":
        kh, kw = layer.kernel
        taps = layer.in_channels * kh * kw
        # one 8x8 multiplier (~70 LUTs without DSPs) per tap and lane, an adder tree, the LIF units or the
        # comparators of the spike table
        cells += lp.lanes * (taps * 70 + taps * layer.acc_bits)
        if lp.breakpoints is None:
            cells += lp.lif_units * 3 * layer.neuron.mem_bits
        else:
            cells += lp.lanes * lp.breakpoints * layer.acc_bits
    elif lp.kind in ("dense", "readout"):
        # per lane: an adder of acc_bits and the multiplexer at the lane's end of the accumulator chain (the rest of
        # the chain is flip-flops only); the step buffer's registers (word flags or list counts) need logic per bit
        flags = sum(mem.bits for mem in lp.memories if mem.name.endswith(".buffer_registers"))
        cells += lp.lanes * 2 * layer.acc_bits + flags
        cells += lp.lif_units * 3 * layer.neuron.mem_bits
    elif lp.kind == "pool":
        cells += 40
    return cells


def estimate(model, params=None):
    """Pre-synthesis estimate of the resources of ``model`` on an iCE40 board.

    Parameters
    ----------
    model : golden.manifest.Model
    params : dict, optional
        Overrides for ``hw.network.plan``.

    Returns
    -------
    Need
    """
    from hw.network import plan

    p = plan(model, params)
    breakdown = []
    total_cells = BOARD_LOGIC
    ebr = ebr_small = 0
    for lp, layer in zip(p.layers, model.layers):
        cells = int(round(_layer_logic(lp, layer) * LOGIC_CALIBRATION))
        large = sum(mem.ebr for mem in lp.memories if mem.bits > SMALL_MEMORY_BITS)
        small = sum(mem.ebr for mem in lp.memories if mem.bits <= SMALL_MEMORY_BITS)
        breakdown.append((lp.name, cells, large + small))
        total_cells += cells
        ebr += large + small
        ebr_small += small
    breakdown.append(("board logic (UART, protocol, reset)", BOARD_LOGIC, 0))
    ebr_bits = sum(mem.bits for lp in p.layers for mem in lp.memories if mem.ebr)
    spram = sum(1 for lp in p.layers for mem in lp.memories if mem.kind == "spram")
    return Need(logic_cells=int(total_cells), ebr=ebr, ebr_small=ebr_small, ebr_bits=ebr_bits, spram=spram, dsp=0,
                breakdown=tuple(breakdown))


def check_fit(model, budget, *, params=None, board="board", force=False):
    """Refuse ``model`` if it cannot fit ``budget``; return the :class:`Need` and a list of warnings.

    Parameters
    ----------
    model : golden.manifest.Model
    budget : Budget
    params : dict, optional
    board : str
        Board name for the messages.
    force : bool
        Turn the refusal into a warning (to measure a design that does not fit).

    Returns
    -------
    (Need, list of str)

    Raises
    ------
    FitError
        Naming every resource that is over: ``model fsdd needs 34 block RAMs (139,264 bits); the iCE40UP5K on
        icebreaker has 30 (122,880 bits)``.
    """
    need = estimate(model, params)
    problems = []
    where = f"the {budget.device} on {board}"
    if need.ebr > budget.ebr:
        worst = max(need.breakdown, key=lambda row: row[2])
        problems.append(f"model {model.name} needs {need.ebr} block RAMs ({need.ebr_bits:,} bits); {where} has "
                        f"{budget.ebr} ({budget.ebr_bits:,} bits); the largest user is {worst[0]} with {worst[2]}")
        if need.ebr - need.ebr_small <= budget.ebr:
            problems[-1] += (f" ({need.ebr_small} of them hold small memories that Yosys might build from logic: "
                             f"try --force)")
    if need.spram > budget.spram:
        problems.append(f"model {model.name} needs {need.spram} SPRAMs; {where} has {budget.spram}")
    if need.dsp > budget.dsp:
        problems.append(f"model {model.name} needs {need.dsp} DSPs; {where} has {budget.dsp}")
    if need.logic_cells > budget.logic_cells:
        worst = max(need.breakdown, key=lambda row: row[1])
        problems.append(f"model {model.name} needs about {need.logic_cells:,} logic cells (estimate); {where} has "
                        f"{budget.logic_cells:,}; the largest user is {worst[0]} with about {worst[1]:,}")
    warnings = []
    if problems and not force:
        raise FitError("; ".join(problems), need, budget)
    warnings += [f"{problem} (ignored: --force)" for problem in problems]
    if need.logic_cells > LOGIC_WARN * budget.logic_cells:
        warnings.append(f"model {model.name} needs about {need.logic_cells:,} of {budget.logic_cells:,} logic cells "
                        f"({need.logic_cells / budget.logic_cells:.0%}, estimate): routing may fail or be slow")
    return need, warnings
