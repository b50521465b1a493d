"""The pre-synthesis resource estimate of a plan and the fit check against its device.

Before a build spends minutes in synthesis and place-and-route, :func:`check_fit` compares what a plan needs with
what its device (``plan.device``, :mod:`hw.device`) has, and refuses a plan that cannot fit, naming the resource
and the bound:

- **block RAM**: the plan's memories in the device's best aspect ratio (``Memory.blocks``);
- **SPRAM**: the memories the plan puts there (the input map, weights loaded at start-up), banks side by side for
  wide words and stacked for depth (``Memory.sprams``); **DSP**: the generated network leaves multipliers to inference, so
  none are counted (the report gives the placed figure);
- **logic cells**: each kind's estimate of its core (``Kind.logic``), scaled by the device's calibration (measured
  on real builds), plus the device's fixed cost of the board logic (UART, protocol engine, reset) and, for a design
  that reads its weight image from the SPI flash (``hw.build --flash``), of the flash reader. It is a coarse
  figure (the build report gives nextpnr's real count); a plan is refused if it exceeds the device, and a warning
  is given above :data:`LOGIC_WARN`.
"""

import dataclasses

__all__ = ["Budget", "Need", "FitError", "estimate", "check_fit", "LOGIC_WARN", "SMALL_MEMORY_BITS"]

#: Fraction of the logic cells above which :func:`check_fit` warns.
LOGIC_WARN = 0.8

#: Memories of at most this many bits are listed apart (Yosys may build them from logic instead of a block RAM);
#: they still count in the refusal: in the builds measured so far most of them did land in block RAM.
SMALL_MEMORY_BITS = 1024


@dataclasses.dataclass(frozen=True)
class Budget:
    """The resources of one device and package, as the fit check and the reports name them.

    Members
    -------
    device, package : str
    logic_cells, ebr, spram, dsp, io, pll, global_buffers : int
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

    @classmethod
    def of(cls, device):
        """The budget of a :class:`hw.device.Device`."""
        return cls(device=device.name, package=device.package, logic_cells=device.logic_cells,
                   ebr=device.block_ram.count, spram=device.wide_ram.count if device.wide_ram else 0,
                   dsp=device.dsp.count if device.dsp else 0, io=device.io, pll=device.pll,
                   global_buffers=device.global_buffers)

    @property
    def ebr_bits(self):
        from hw.device import get
        return self.ebr * get(self.device).block_ram.bits


class FitError(ValueError):
    """A model does not fit a board's device; ``need`` and ``budget`` hold the figures."""

    def __init__(self, message, need=None, budget=None):
        super().__init__(message)
        self.need = need
        self.budget = budget


@dataclasses.dataclass(frozen=True)
class Need:
    """What a plan needs on its device (pre-synthesis).

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
        ``(name, logic cells, block RAMs)`` per layer and for the board logic.
    spram_users : tuple of (str, int)
        ``(memory name, SPRAMs)`` of every memory in SPRAM, in layer order.
    """

    logic_cells: int
    ebr: int
    ebr_small: int
    ebr_bits: int
    spram: int
    dsp: int
    breakdown: tuple
    spram_users: tuple = ()


def estimate(plan, *, flash=False):
    """Pre-synthesis estimate of the resources of ``plan`` (a :class:`hw.plan.Plan`) on its device.

    ``flash``: the design reads its weight image from the board's SPI flash (``hw.build --flash``), so the board
    logic holds the flash reader as well (the device's ``flash_reader_logic``).

    Returns
    -------
    Need
    """
    device = plan.device
    breakdown = []
    total_cells = device.board_logic
    ebr = ebr_small = 0
    for lp in plan.layers:
        cells = int(round(plan.kind(lp).logic(lp) * device.logic_calibration))
        large = sum(mem.blocks for mem in lp.memories if mem.bits > SMALL_MEMORY_BITS)
        small = sum(mem.blocks for mem in lp.memories if mem.bits <= SMALL_MEMORY_BITS)
        breakdown.append((lp.name, cells, large + small))
        total_cells += cells
        ebr += large + small
        ebr_small += small
    breakdown.append(("board logic (UART, protocol, reset)", device.board_logic, 0))
    if flash:
        breakdown.append(("SPI flash reader", device.flash_reader_logic, 0))
        total_cells += device.flash_reader_logic
    ebr_bits = sum(mem.bits for mem in plan.memories if mem.blocks)
    users = tuple((mem.name, mem.sprams) for mem in plan.memories if mem.sprams)
    return Need(logic_cells=int(total_cells), ebr=ebr, ebr_small=ebr_small, ebr_bits=ebr_bits,
                spram=sum(n for _, n in users), dsp=0, breakdown=tuple(breakdown), spram_users=users)


def check_fit(plan, *, board="board", force=False, flash=False):
    """Refuse ``plan`` if it cannot fit its device; return the :class:`Need` and a list of warnings.

    Parameters
    ----------
    plan : hw.plan.Plan
    board : str
        Board name for the messages.
    force : bool
        Turn the refusal into a warning (to measure a design that does not fit).
    flash : bool
        The design has the SPI flash reader (:func:`estimate`).

    Returns
    -------
    (Need, list of str)

    Raises
    ------
    FitError
        Naming every resource that is over: ``model fsdd needs 34 block RAMs (139,264 bits); the iCE40UP5K on
        icebreaker has 30 (122,880 bits); the largest user is fc1 with 21``, or ``model deep needs 5 SPRAMs
        (fc1.weights 4, conv1.input 1); the iCE40UP5K on icebreaker has 4``; its ``budget`` is the device's
        :class:`Budget`.
    """
    need = estimate(plan, flash=flash)
    budget = Budget.of(plan.device)
    name = plan.model.name
    problems = []
    where = f"the {budget.device} on {board}"
    if need.ebr > budget.ebr:
        worst = max(need.breakdown, key=lambda row: row[2])
        problems.append(f"model {name} needs {need.ebr} block RAMs ({need.ebr_bits:,} bits); {where} has "
                        f"{budget.ebr} ({budget.ebr_bits:,} bits); the largest user is {worst[0]} with {worst[2]}")
        if need.ebr - need.ebr_small <= budget.ebr:
            problems[-1] += (f" ({need.ebr_small} of them hold small memories that Yosys might build from logic: "
                             f"try --force)")
    if need.spram > budget.spram:
        users = ", ".join(f"{mem} {n}" for mem, n in sorted(need.spram_users, key=lambda row: -row[1]))
        problems.append(f"model {name} needs {need.spram} SPRAMs ({users}); {where} has {budget.spram}")
    if need.dsp > budget.dsp:
        problems.append(f"model {name} needs {need.dsp} DSPs; {where} has {budget.dsp}")
    if need.logic_cells > budget.logic_cells:
        worst = max(need.breakdown, key=lambda row: row[1])
        problems.append(f"model {name} needs about {need.logic_cells:,} logic cells (estimate); {where} has "
                        f"{budget.logic_cells:,}; the largest user is {worst[0]} with about {worst[1]:,}")
    warnings = []
    if problems and not force:
        raise FitError("; ".join(problems), need, budget)
    warnings += [f"{problem} (ignored: --force)" for problem in problems]
    if need.logic_cells > LOGIC_WARN * budget.logic_cells:
        warnings.append(f"model {name} needs about {need.logic_cells:,} of {budget.logic_cells:,} logic cells "
                        f"({need.logic_cells / budget.logic_cells:.0%}, estimate): routing may fail or be slow")
    return need, warnings
