"""Layer kind ``dense``: a zero-skipping dense layer of LIF neurons fed by a step buffer (core
:class:`hw.dense.DenseLayer`).

Its plan (:class:`DensePlan`, shared with the readout kind) fixes the lanes (accumulations per cycle), the lane
groups (cycles per input spike), the weight ROM's row stride and where it lives (option ``weights``: ``"bram"``, set
by the bitstream, or ``"spram"``, loaded at start-up, see :mod:`hw.weights`), where the accumulators live (option
``accumulators``: ``"registers"``, a chain, or ``"ram"``, a block RAM of ``G`` words of ``lanes`` accumulators; by
default :func:`default_accumulators`), the step buffer in front of it and the memories. Its timeline is :func:`hw.dense.timeline`. Pure Python.
"""

from dataclasses import dataclass

import numpy as np

from . import Kind, LayerPlan, check_option, register
from .buffer import buffer_plan
from .buffer import logic as buffer_logic
from .neuron import check_neuron

__all__ = ["DensePlan", "plan_layer", "plan_dense", "default_lanes", "fewest_lanes", "row_stride", "rom_words",
           "default_accumulators", "ram_accumulator_logic", "OPTIONS", "WEIGHTS", "ACCUMULATORS"]

#: Options a user may set for a dense or readout layer.
OPTIONS = ("lanes", "weights", "accumulators", "buffer")
#: Where the weight ROM may live.
WEIGHTS = ("bram", "spram")
#: Where the accumulators may live: a register chain, or a block RAM of ``G`` words of ``lanes`` accumulators.
ACCUMULATORS = ("registers", "ram")


@dataclass(frozen=True)
class DensePlan(LayerPlan):
    """Everything a dense or readout core is built from.

    Attributes
    ----------
    (those of :class:`hw.kinds.LayerPlan`)
    lanes : int
        Accumulations per cycle.
    groups : int
        Cycles per input spike, ``ceil(out_features / lanes)``.
    stride : int
        Words per weight row in the ROM (:func:`row_stride`).
    buffer : hw.kinds.buffer.StepBufferPlan
        The step buffer in front of the core.
    memories : tuple of hw.plan.Memory
    """
    lanes: int
    groups: int
    stride: int
    buffer: object
    memories: tuple

    lif_units = 1

    @property
    def in_features(self):
        return self.layer.in_features

    @property
    def out_features(self):
        return self.layer.out_features

    @property
    def neurons(self):
        return self.layer.out_features

    @property
    def weight_memory(self):
        """The :class:`hw.kinds.memory.Memory` of the weights (kind ``"rom"`` or ``"spram_rom"``)."""
        return next(mem for mem in self.memories if mem.name == f"{self.name}.weights")

    @property
    def weights(self):
        """Where the weights live: ``"bram"`` or ``"spram"``."""
        return "spram" if self.weight_memory.kind == "spram_rom" else "bram"

    @property
    def accumulators(self):
        """Where the accumulators live: ``"registers"`` (a chain of ``M`` registers) or ``"ram"`` (a block RAM of
        ``G`` words of ``lanes`` accumulators, word ``g`` holding neurons ``l * G + g``)."""
        mem = next(mem for mem in self.memories if mem.name == f"{self.name}.accumulators")
        return "registers" if mem.kind == "registers" else "ram"

    @property
    def buffer_row(self):
        return self.buffer.row

    @property
    def buffer_rows(self):
        return self.buffer.rows


def row_stride(groups):
    """Words per weight row in the ROM: ``groups`` rounded up to a power of two, so that the address of word ``g``
    of row ``n`` is ``n`` and ``g`` side by side (no multiplier on the address path)."""
    return 1 << (groups - 1).bit_length()


def default_lanes(layer, device, weights="bram"):
    """Lanes for ``layer``: the fewest blocks for its weights, then the least logic within a cycle budget.

    Among all lane counts, take those whose weight ROM needs at most ``device.rom_block_slack`` blocks more than the
    fewest (block RAMs; with ``weights="spram"`` SPRAMs, and no slack); among them the fewest lanes (each lane is an
    adder and a multiplexer of ``acc_bits``) that keep an input spike within ``device.max_groups`` cycles, or, when
    none does, the fewest groups (cycles per event). On the iCE40UP5K (no slack, 4 cycles) a 384 x 28 layer gets 7
    lanes: 1,536 words of 56 bits, exactly 21 EBRs in the 512 x 8 mode, four cycles per input spike (14 lanes take
    the same EBRs and two cycles, at twice the adders); a 28 x 10 readout gets 2 lanes in one EBR, five cycles per
    spike. In SPRAM a 384 x 128 layer gets 4 lanes: 12,288 words of 32 bits in two SPRAMs side by side, 32 cycles
    per input spike (8 lanes, 16 cycles, take all four SPRAMs). On a part with block RAM to spare (the LFE5U-85F: 8
    blocks of slack, 1 cycle) the 384 x 28 layer and the readout get 28 and 10 lanes, one cycle per input spike.
    """
    return fewest_lanes(layer.in_features, layer.out_features, device, weights)


def fewest_lanes(rows, outputs, device, weights="bram"):
    """The lanes of :func:`default_lanes` for a weight ROM of ``rows`` rows (inputs, or input taps) of ``outputs``
    weights each, every row padded to :func:`row_stride` words of ``lanes`` weights, in block RAM or (``weights=
    "spram"``) in SPRAM."""
    spram = weights == "spram"
    blocks_of = device.wide_ram.blocks if spram else device.block_ram.blocks
    slack = 0 if spram else device.rom_block_slack
    options = []
    for lanes in range(1, outputs + 1):
        groups = -(-outputs // lanes)
        options.append((blocks_of(8 * lanes, rows * row_stride(groups)), groups, lanes))
    fewest = min(blocks for blocks, _, _ in options)
    best = None
    for blocks, groups, lanes in options:
        if blocks > fewest + slack:
            continue
        within = groups <= device.max_groups
        key = (not within, lanes if within else groups, lanes)
        if best is None or key < best:
            best = key
    return best[-1]


def default_accumulators(layer, lanes, device):
    """Where the accumulators of ``layer`` with ``lanes`` go when the user leaves it open: ``"ram"`` when the
    logic cells it saves (the register chain's ``M * acc_bits`` flip-flops less :func:`ram_accumulator_logic`)
    exceed, per block RAM that the memory of ``G`` words of ``lanes * acc_bits`` bits would take, the device's
    :attr:`hw.device.Device.accumulator_threshold` (by default its logic cells per block RAM: a block is worth its
    share of the logic); otherwise ``"registers"``.

    On the iCE40UP5K (176 cells per EBR) the 384 x 128 layer of ``models/fsdd_deep`` (4 lanes of 15 bits, 32
    groups: 4 EBRs for 1,920 flip-flops less 285 cells) and its 128 x 64 layer (2 EBRs for 832 less 117) go to
    block RAM; the 384 x 28 layer of ``models/fsdd_scnn`` (7 EBRs for 392, or with its weights in SPRAM at 2 lanes
    2 EBRs for 392 less 70) and every readout stay in registers. On the ECP5 and Gowin
    parts the default lanes are many and the groups few, so the words are wide and shallow: they stay in
    registers."""
    groups = -(-layer.out_features // lanes)
    saved = layer.out_features * layer.acc_bits - ram_accumulator_logic(lanes, groups, layer.acc_bits)
    blocks = device.block_ram.blocks(lanes * layer.acc_bits, groups)
    return "ram" if blocks and saved > blocks * device.accumulator_threshold else "registers"


def ram_accumulator_logic(lanes, groups, acc_bits):
    """Logic cells (coarse) that accumulators in block RAM need beyond a chain's: the lane multiplexer that reads
    one neuron of a word in the sweep, the table of bias words that resets a word (about one cell per bit and eight
    words) and, with ``G = 1`` only, the bypass of the transparent read (with ``G >= 2`` the memory is exclusive:
    :class:`hw.exclusive.ExclusiveMemory`)."""
    return (lanes - 1) * acc_bits + lanes * acc_bits * (int(groups == 1) + -(-groups // 8))


def plan_dense(layer, ctx, kind, state):
    """The :class:`DensePlan` of ``layer`` as a core of ``kind`` whose neuron state is the memory ``state``
    (``(suffix, memory kind)``)."""
    name = layer.name
    check_neuron(layer.neuron, acc_bits=layer.acc_bits, layer=name)
    n_in = ctx.inputs
    if n_in != layer.in_features:
        raise ValueError(f"layer {name}: in_features {layer.in_features} does not match the {n_in} inputs")
    weights = np.asarray(layer.weights)
    if weights.size and (weights.min() < -128 or weights.max() > 127):
        raise ValueError(f"layer {name}: weights must fit 8 bits (-128 ... 127)")
    weights_place = ctx.options.get("weights", "bram")
    if weights_place not in WEIGHTS:
        raise ValueError(f"layer {name}: weights must be 'bram' or 'spram', not {weights_place!r}")
    if weights_place == "spram" and ctx.device.wide_ram is None:
        raise ValueError(f"layer {name}: weights 'spram' needs a device with SPRAM; the {ctx.device.name} has none "
                         f"(use 'bram')")
    lanes = ctx.options.get("lanes")
    if lanes is None:
        lanes = default_lanes(layer, ctx.device, weights_place)
    lanes = check_option(f"layer {name}: lanes", lanes, 1, layer.out_features)
    groups = -(-layer.out_features // lanes)
    stride = row_stride(groups)
    accumulators = ctx.options.get("accumulators")
    if accumulators is None:
        accumulators = default_accumulators(layer, lanes, ctx.device)
    if accumulators not in ACCUMULATORS:
        raise ValueError(f"layer {name}: accumulators must be 'registers' or 'ram', not {accumulators!r}")
    if accumulators == "ram":
        acc_memory = ctx.memory(f"{name}.accumulators", lanes * layer.acc_bits, groups, "ram")
    else:
        acc_memory = ctx.memory(f"{name}.accumulators", layer.acc_bits, layer.out_features, "registers")
    buffer, buffer_mems = buffer_plan(name, ctx)
    suffix, state_kind = state
    mems = buffer_mems + (
        ctx.memory(f"{name}.weights", 8 * lanes, n_in * stride, "spram_rom" if weights_place == "spram" else "rom"),
        acc_memory,
        ctx.memory(f"{name}.{suffix}", layer.neuron.mem_bits, layer.out_features, state_kind),
    )
    return DensePlan(ctx.index, name, kind, layer, ctx.in_shape, ctx.out_shape, ctx.time_steps, lanes, groups,
                     stride, buffer, mems)


def plan_layer(layer, ctx):
    """The :class:`DensePlan` of a dense LIF layer (membranes in a memory)."""
    return plan_dense(layer, ctx, "dense", ("membranes", "ram"))


def rom_words(plan, name):
    """The words of the weight ROM (``<layer>.weights``) as unsigned integers of ``8 * lanes`` bits, lane ``l`` in
    bits ``8l ... 8l + 7`` (:func:`hw.dense.weight_words`)."""
    if name != f"{plan.name}.weights":
        raise ValueError(f"layer {plan.name} has no constant memory {name!r}")
    from hw.dense import weight_words
    return [sum((value & 0xFF) << (8 * lane) for lane, value in enumerate(word)) for word in weight_words(plan)]


def work(plan, ops):
    """Accumulations over the lanes, plus the neuron updates over the one LIF unit."""
    op = ops[plan.name]
    return -(-np.asarray(op["event_ops"], dtype=np.int64) // plan.lanes) + -(-int(op["neuron_updates"]) // plan.lif_units)


def logic(plan):
    """Logic cells (coarse, before calibration): control and register files; per lane an adder of ``acc_bits`` and
    the multiplexer at the lane's end of the accumulator chain (accumulators in block RAM: plus
    :func:`ram_accumulator_logic`); the step buffer (:func:`hw.kinds.buffer.logic`); the LIF unit. Measured with
    ``python -m hw.area --model models/fsdd_deep --board icebreaker``: fc1 (4 lanes, 32 groups) 1,467 LUT4s and
    2,036 flip-flops with registers, 641 and 189 in block RAM."""
    layer = plan.layer
    # the step buffer's registers are among the plan's memories, but buffer_logic counts them
    registers = sum(mem.bits for mem in plan.memories if mem.kind == "registers") - plan.buffer.register_bits
    lanes = plan.lanes * 2 * layer.acc_bits
    if plan.accumulators == "ram":
        lanes += ram_accumulator_logic(plan.lanes, plan.groups, layer.acc_bits)
    return 60 + registers + lanes + buffer_logic(plan) + plan.lif_units * 3 * layer.neuron.mem_bits


def random_options(layer, in_shape, device, rng, *, time_steps):
    """Random lanes, the weights in SPRAM one time in four where the device has it, and the accumulators in
    registers or block RAM (one time in two each)."""
    opts = {"lanes": int(rng.integers(1, layer.out_features + 1))}
    if device.wide_ram is not None and rng.random() < 0.25:
        opts["weights"] = "spram"
    opts["accumulators"] = str(rng.choice(ACCUMULATORS))
    return opts


def _core(plan):
    from hw.dense import DenseLayer
    return DenseLayer(plan)


def _timeline(*args, **kwargs):
    from hw.dense import timeline
    return timeline(*args, **kwargs)


KIND = register(Kind(
    name="dense", manifest_type="dense", neuron="lif", options=OPTIONS, takes_map=False, buffered=True,
    final=False, emits_rows=False, spiking=True, plan_layer=plan_layer, core=_core, timeline=_timeline, work=work,
    logic=logic, random_options=random_options, rom_words=rom_words))
