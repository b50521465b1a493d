"""Layer kind ``conv2d``: the input core, an INT8 convolution with LIF neurons (core :class:`hw.conv.ConvLayer`).

Its plan (:class:`ConvPlan`) fixes the scan of the padded grid, the lanes (output channels per pass), the spike
bitmap words, where the input map is kept (block RAM or the device's SPRAM), how many multipliers go to DSP blocks,
and how the ``T`` spikes of a current are formed: from a table of current thresholds (:mod:`hw.spiketable`) or by
a pipeline of ``T`` LIF units. Its timeline is :func:`hw.conv.timeline`. Pure Python.
"""

from dataclasses import dataclass

import numpy as np

from hw.spiketable import MAX_BREAKPOINTS, MAX_WORK, prefer_table, spike_table

from . import Kind, LayerPlan, check_option, register
from .neuron import check_neuron

__all__ = ["ConvPlan", "plan_layer", "default_lanes", "default_input_memory", "OPTIONS", "SPIKE_LOGIC"]

#: Options a user may set for a conv2d layer.
OPTIONS = ("lanes", "word_bits", "input_memory", "dsp_multipliers", "spike_logic")
#: Ways to form the spikes of a current.
SPIKE_LOGIC = ("table", "pipeline")
#: Widest spike bitmap word.
MAX_WORD_BITS = 64


@dataclass(frozen=True)
class ConvPlan(LayerPlan):
    """Everything the conv core is built from.

    Attributes
    ----------
    (those of :class:`hw.kinds.LayerPlan`)
    grid_height, grid_width : int
        Rows and columns of the padded grid scanned per pass (``Hn``, ``Wn``).
    lanes, passes : int
        Output channels per pass and ``ceil(Co / lanes)``.
    word_bits, words_per_row : int
        Neurons per spike bitmap word; words per output channel, ``ceil(Ho*Wo / word_bits)``.
    streaming : bool
        The first pass takes the map straight from the input stream (one input channel only, and only where it
        saves cycles).
    stream_height, stream_width : int
        The grid scanned by the first pass (``Hs x Ws``: ``Hn x Wn`` widened to hold every pixel when streaming).
    spike_logic : str
        ``"table"`` or ``"pipeline"``.
    table : hw.spiketable.SpikeTable or None
        The table of current thresholds (with ``spike_logic="table"``).
    input_memory : str
        ``"bram"`` or ``"spram"``.
    spram_blocks : int
        The device's SPRAMs holding the input map (0 with block RAM).
    dsp_multipliers : int
        Products written as ``*`` (left to DSP inference); the others are built from adders.
    memories : tuple of hw.plan.Memory
    whole_words : bool
        Write the spike bitmaps a whole word at a time (the bits of the word so far, held in a register) instead of
        one bit under a write mask: for block RAM without bit writes (``hw.device.BlockRam.bit_write``), where a
        masked memory would become LUT RAM. The same cycles, the same contents once a word is complete.
    """
    grid_height: int
    grid_width: int
    lanes: int
    passes: int
    word_bits: int
    words_per_row: int
    streaming: bool
    stream_height: int
    stream_width: int
    spike_logic: str
    table: object
    input_memory: str
    spram_blocks: int
    dsp_multipliers: int
    memories: tuple
    whole_words: bool = False

    buffer = None
    buffer_row = None
    buffer_rows = None
    groups = None

    @property
    def channels(self):
        return self.in_shape[0]

    @property
    def height(self):
        return self.in_shape[1]

    @property
    def width(self):
        return self.in_shape[2]

    @property
    def out_channels(self):
        return self.out_shape[0]

    @property
    def out_height(self):
        return self.out_shape[1]

    @property
    def out_width(self):
        return self.out_shape[2]

    @property
    def neurons(self):
        return self.out_shape[0] * self.out_shape[1] * self.out_shape[2]

    @property
    def taps(self):
        """Kernel taps per input channel, ``Kh * Kw``."""
        return self.layer.kernel[0] * self.layer.kernel[1]

    @property
    def multipliers(self):
        """``lanes * C * Kh * Kw``."""
        return self.lanes * self.channels * self.taps

    @property
    def lif_units(self):
        """Neuron updates per cycle: ``lanes * T`` (by LIF units or by a spike table)."""
        return self.lanes * self.time_steps

    @property
    def spike_stages(self):
        """Pipeline stages from a current to its spikes: ``T`` LIF stages, or 1 with a spike table."""
        return 1 if self.spike_logic == "table" else self.time_steps

    @property
    def breakpoints(self):
        """Comparators of the spike table, or ``None`` with the pipeline."""
        return None if self.table is None else len(self.table.breakpoints)


def default_input_memory(in_shape, device):
    """Where the conv core keeps the input map by default: the device's SPRAM when the map is larger than one block
    RAM and fits the SPRAMs, block RAM otherwise (block RAM is what the weights need; the SPRAMs are free)."""
    c, h, w = in_shape
    wide = device.wide_ram
    if wide is None:
        return "bram"
    per_block = max(1, wide.width // 8)
    if 8 * c * h * w > device.block_ram.bits and h * w <= wide.depth and -(-c // per_block) <= wide.count:
        return "spram"
    return "bram"


def default_lanes(layer, in_shape, out_shape, steps, word_bits, device):
    """Output channels per pass by default: 1 where block RAM is scarce (``device.rom_block_slack`` 0, the
    iCE40UP5K: every lane adds ``T`` spike memories); otherwise the fewest passes whose multipliers
    (``lanes * C * Kh * Kw``) fit the device's budget (``conv_multipliers``: its DSP blocks, or the products it
    builds from logic) and whose extra spike memories fit the slack, and the fewest lanes among those (the LFE5U-85F
    gives the 4-channel 3 x 3 layer of the shipped model 4 lanes, one pass).
    """
    c = in_shape[0]
    co, ho, wo = out_shape
    taps = c * layer.kernel[0] * layer.kernel[1]
    budget = device.conv_multipliers or (device.dsp.count if device.dsp is not None else 0)
    if not device.rom_block_slack or budget < taps:
        return 1
    best = None
    for lanes in range(1, co + 1):
        passes = -(-co // lanes)
        spike_blocks = device.block_ram.blocks(word_bits, passes * -(-(ho * wo) // word_bits))
        if lanes * taps > budget or (lanes - 1) * steps * spike_blocks > device.rom_block_slack:
            break
        if best is None or passes < best[0]:
            best = (passes, lanes)
    return best[1]


def _spike_logic(layer, steps, choice):
    if choice not in (None,) + SPIKE_LOGIC:
        raise ValueError(f"layer {layer.name}: spike_logic must be 'table' or 'pipeline', not {choice!r}")
    if choice == "pipeline":
        return "pipeline", None
    if choice is None and not prefer_table(layer.neuron, layer.acc_bits, steps):
        return "pipeline", None
    table = spike_table(layer.neuron, layer.acc_bits, steps)
    if table is None:
        if choice == "table":
            raise ValueError(f"layer {layer.name}: a spike table of {steps} steps over {layer.acc_bits}-bit currents "
                             f"is too large (time_steps * 2**acc_bits above 2**{MAX_WORK.bit_length() - 1}, or more "
                             f"than {MAX_BREAKPOINTS} breakpoints): use spike_logic 'pipeline'")
        return "pipeline", None
    return "table", table


def plan_layer(layer, ctx):
    """The :class:`ConvPlan` of ``layer`` (a ``golden.manifest.Conv2d``) in context ``ctx`` (:class:`hw.plan.Context`).

    Raises
    ------
    ValueError
        If an option is out of range, the shapes do not chain, the input map does not fit the device's SPRAM, or
        a weight or bias does not fit its width.
    """
    name = layer.name
    c, h, w = ctx.in_shape
    if c != layer.in_channels:
        raise ValueError(f"layer {name}: in_channels {layer.in_channels} does not match the input's {c} channels")
    co, ho, wo = ctx.out_shape
    if ho < 1 or wo < 1:
        raise ValueError(f"layer {name}: output {ho}x{wo} is empty")
    check_neuron(layer.neuron, acc_bits=layer.acc_bits, layer=name)
    steps = ctx.time_steps
    opts = ctx.options
    word_bits = check_option(f"layer {name}: word_bits", opts.get("word_bits", 16), 1, MAX_WORD_BITS)
    lanes = opts.get("lanes")
    if lanes is None:
        lanes = default_lanes(layer, ctx.in_shape, ctx.out_shape, steps, word_bits, ctx.device)
    lanes = check_option(f"layer {name}: lanes", lanes, 1, co)
    default_dsp = ctx.device.dsp.count if ctx.device.dsp is not None and ctx.device.dsp_inference else 0
    dsp = check_option(f"layer {name}: dsp_multipliers", opts.get("dsp_multipliers", default_dsp), 0)
    input_memory = opts.get("input_memory", default_input_memory(ctx.in_shape, ctx.device))
    if input_memory not in ("bram", "spram"):
        raise ValueError(f"layer {name}: input_memory must be 'bram' or 'spram', not {input_memory!r}")
    spram_blocks = 0
    if input_memory == "spram":
        wide = ctx.device.wide_ram
        if wide is None:
            raise ValueError(f"layer {name}: input_memory 'spram' needs a device with SPRAM; the {ctx.device.name} "
                             f"has none (use 'bram')")
        spram_blocks = -(-c // max(1, wide.width // 8))
        if h * w > wide.depth or spram_blocks > wide.count:
            raise ValueError(f"layer {name}: an input map of {c}x{h}x{w} needs {spram_blocks} SPRAMs of {h * w:,} "
                             f"words; the {ctx.device.name} has {wide.count} SPRAMs of {wide.depth:,} words "
                             f"(use input_memory 'bram')")
    spike_logic, table = _spike_logic(layer, steps, opts.get("spike_logic"))

    weights, bias = np.asarray(layer.weights), np.asarray(layer.bias)
    expected = (co, c) + tuple(layer.kernel)
    if weights.shape != expected:
        raise ValueError(f"layer {name}: weights have shape {weights.shape}, expected {expected}")
    if weights.size and (weights.min() < -128 or weights.max() > 127):
        raise ValueError(f"layer {name}: weights must fit 8 bits (-128 ... 127)")
    lo, hi = -(1 << (layer.bias_bits - 1)), (1 << (layer.bias_bits - 1)) - 1
    if bias.shape != (co,) or (bias.size and (bias.min() < lo or bias.max() > hi)):
        raise ValueError(f"layer {name}: bias must be {co} values in {lo} ... {hi} ({layer.bias_bits} bits)")

    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    hn, wn = (ho - 1) * sh + kh, (wo - 1) * sw + kw
    passes = -(-co // lanes)
    hs, ws = max(hn, ph + h), max(wn, pw + w)
    streaming = c == 1 and hs * ws < hn * wn + h * w
    if not streaming:
        hs, ws = hn, wn
    words_per_row = -(-(ho * wo) // word_bits)

    mems = [ctx.memory(f"{name}.input", 8 * c, h * w, "spram" if input_memory == "spram" else "ram")]
    if kh > 1:
        mems.append(ctx.memory(f"{name}.lines", 8 * c * (kh - 1), ws))
    mems += [ctx.memory(f"{name}.spikes{k}", word_bits, passes * words_per_row) for k in range(lanes * steps)]
    mems.append(ctx.memory(f"{name}.weights", 8 * lanes * c * kh * kw, passes, "rom"))
    mems.append(ctx.memory(f"{name}.bias", layer.bias_bits * lanes, passes, "rom"))
    return ConvPlan(ctx.index, name, "conv2d", layer, ctx.in_shape, ctx.out_shape, steps, hn, wn, lanes, passes,
                    word_bits, words_per_row, streaming, hs, ws, spike_logic, table, input_memory, spram_blocks, dsp,
                    tuple(mems), whole_words=not ctx.device.block_ram.bit_write)


def work(plan, ops):
    """Cycles at least: the largest of the ``C*H*W`` input transfers on one port, the multiply-accumulates with
    non-zero input over the multipliers, and the neuron updates over the LIF units (the three can overlap)."""
    op = ops[plan.name]
    macs = -(-np.asarray(op["event_ops"], dtype=np.int64) // plan.multipliers)
    updates = -(-int(op["neuron_updates"]) // plan.lif_units)
    return np.maximum(np.maximum(macs, updates), plan.channels * plan.height * plan.width)


def logic(plan):
    """Logic cells (coarse, before calibration): control, one 8x8 multiplier (~70 LUTs without DSPs) and an adder
    per tap and lane, then the LIF units or the comparators of the spike table."""
    layer = plan.layer
    cells = 60 + sum(mem.bits for mem in plan.memories if mem.kind == "registers")
    taps = plan.channels * plan.taps
    cells += plan.lanes * (taps * 70 + taps * layer.acc_bits)
    if plan.table is None:
        cells += plan.lif_units * 3 * layer.neuron.mem_bits
    else:
        cells += plan.lanes * plan.breakpoints * layer.acc_bits
    return cells


def random_options(layer, in_shape, device, rng, *, time_steps):
    """Random options for verification runs: every option the plan accepts (a spike table where one exists for
    ``time_steps``)."""
    c, h, w = in_shape
    opts = {"lanes": int(rng.integers(1, layer.out_channels + 1)), "word_bits": int(rng.choice([3, 8, 16])),
            "spike_logic": str(rng.choice(SPIKE_LOGIC))}
    if opts["spike_logic"] == "table" and spike_table(layer.neuron, layer.acc_bits, time_steps) is None:
        opts["spike_logic"] = "pipeline"  # no table of that size (wide currents of a deep model's first layer)
    if device.wide_ram is not None and h * w <= device.wide_ram.depth and c <= 2 * device.wide_ram.count:
        opts["input_memory"] = str(rng.choice(["bram", "spram"]))
    if rng.random() < 0.3:
        opts["dsp_multipliers"] = int(rng.integers(0, 3))
    return opts


def _core(plan):
    from hw.conv import ConvLayer
    return ConvLayer(plan)


def _timeline(*args, **kwargs):
    from hw.conv import timeline
    return timeline(*args, **kwargs)


KIND = register(Kind(
    name="conv2d", manifest_type="conv2d", neuron="lif", options=OPTIONS, takes_map=True, buffered=False,
    final=False, emits_rows=False, spiking=True, plan_layer=plan_layer, core=_core, timeline=_timeline, work=work,
    logic=logic, random_options=random_options))
