"""Layer kind ``spikeconv``: an event-driven convolution on spike maps with LIF neurons, fed by a step buffer (core
:class:`hw.spikeconv.SpikeConvLayer`).

A ``conv2d`` layer that is not the first one reads spikes, not the INT8 map. Its plan (:class:`SpikeConvPlan`) fixes
the lanes (output channels per cycle), the lane groups, the weight ROM's row stride, the reach of every input row
and column (which kernel taps of an input spike land on an output position, :func:`reach`), the step buffer in
front of it, where its membranes live and its memories. Its timeline is :func:`hw.spikeconv.timeline`. Pure Python.

Option ``state``: ``"bram"`` (the default) keeps the membranes in block RAM, ``"spram"`` in the device's SPRAM
(memory kind ``"spram"``, one SPRAM per 16,384 neurons and 16 bits), where a sweep takes two cycles per neuron
(:mod:`hw.sweep`); the currents stay in block RAM. :func:`hw.plan.auto_state` moves them there when block RAM runs
out.
"""

from dataclasses import dataclass

import numpy as np

from . import Kind, LayerPlan, check_option, register
from .buffer import buffer_plan, count_bits
from .buffer import logic as buffer_logic
from .dense import fewest_lanes, row_stride
from .memory import state_of, state_option
from .neuron import check_neuron

__all__ = ["SpikeConvPlan", "plan_layer", "reach", "visits"]


@dataclass(frozen=True)
class SpikeConvPlan(LayerPlan):
    """Everything the spike convolution core is built from.

    Attributes
    ----------
    (those of :class:`hw.kinds.LayerPlan`)
    lanes : int
        Output channels accumulated per cycle.
    groups : int
        ``ceil(Co / lanes)``: cycles per kernel tap in reach.
    stride : int
        Words per kernel tap in the weight ROM (``groups`` rounded up to a power of two).
    row_reach, col_reach : tuple of (int, int, int)
        Per input row ``y`` (column ``x``): ``(k0, o0, n)``, the first kernel row (column) in reach, the output row
        (column) it lands on and how many are in reach; tap ``j < n`` is kernel row ``k0 + j * Sh`` on output row
        ``o0 - j`` (:func:`reach`).
    buffer : hw.kinds.buffer.StepBufferPlan
        The step buffer in front of the core.
    memories : tuple of hw.plan.Memory
    """
    lanes: int
    groups: int
    stride: int
    row_reach: tuple
    col_reach: tuple
    buffer: object
    memories: tuple

    lif_units = 1

    @property
    def coordinates(self):
        """The step buffer's words are the input map's rows (``c * H + y``; a producer that emits whole rows, an
        OR-pool, of rows too wide to share a word): the core takes a spike's row and column from the buffer's
        ``row`` and ``col`` beside the event instead of dividing its flat index by ``W``."""
        return self.buffer.coordinates and self.buffer.rows_per_word == 1

    @property
    def state(self):
        """Where the membranes live: ``"bram"`` or ``"spram"`` (option ``state``)."""
        return state_of(self)

    @property
    def neurons(self):
        return self.out_shape[0] * self.out_shape[1] * self.out_shape[2]

    @property
    def positions(self):
        """Output positions per channel, ``Ho * Wo``."""
        return self.out_shape[1] * self.out_shape[2]

    @property
    def cycles_per_spike(self):
        """The most taps in reach of one input spike times the lane groups."""
        return max(1, max(n for _, _, n in self.row_reach) * max(n for _, _, n in self.col_reach) * self.groups)

    @property
    def buffer_row(self):
        return self.buffer.row

    @property
    def buffer_rows(self):
        return self.buffer.rows


def reach(size, kernel, stride, padding, out_size):
    """For every input coordinate ``0 .. size-1`` along one axis: ``(k0, o0, n)``.

    An input at ``y`` feeds output ``o`` through kernel index ``k`` when ``o * stride - padding + k == y``, with
    ``0 <= k < kernel`` and ``0 <= o < out_size``. These ``k`` are ``k0, k0 + stride, ...`` (``n`` of them, possibly
    none) and their outputs ``o0, o0 - 1, ...``.
    """
    out = []
    for y in range(size):
        pairs = [(k, (y + padding - k) // stride) for k in range(kernel)
                 if (y + padding - k) % stride == 0 and 0 <= (y + padding - k) // stride < out_size]
        out.append((pairs[0][0], pairs[0][1], len(pairs)) if pairs else (0, 0, 0))
    return tuple(out)


def visits(plan):
    """Cycles the core spends on one input spike, per input neuron (flat ``(c, y, x)``): its taps in reach times
    the lane groups, at least 1 (a spike out of every output's reach is taken in one cycle). (Ci*H*W,) int64."""
    c, h, w = plan.in_shape
    rows = np.array([n for _, _, n in plan.row_reach], dtype=np.int64)
    cols = np.array([n for _, _, n in plan.col_reach], dtype=np.int64)
    per = np.maximum(1, rows[:, None] * cols[None, :] * plan.groups)
    return np.broadcast_to(per, (c, h, w)).reshape(-1).copy()


def plan_layer(layer, ctx):
    """The :class:`SpikeConvPlan` of ``layer`` (a ``golden.manifest.Conv2d`` on spikes) in context ``ctx``.

    Raises
    ------
    ValueError
        If the shapes do not chain, an option is out of range, or a weight or bias does not fit its width.
    """
    name = layer.name
    if len(ctx.in_shape) != 3:
        raise ValueError(f"layer {name}: a convolution needs a (C, H, W) spike map, not {ctx.in_shape}")
    c, h, w = ctx.in_shape
    if c != layer.in_channels:
        raise ValueError(f"layer {name}: in_channels {layer.in_channels} does not match the input's {c} channels")
    co, ho, wo = ctx.out_shape
    if ho < 1 or wo < 1:
        raise ValueError(f"layer {name}: output {ho}x{wo} is empty")
    check_neuron(layer.neuron, acc_bits=layer.acc_bits, layer=name)
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    weights, bias = np.asarray(layer.weights), np.asarray(layer.bias)
    if weights.shape != (co, c, kh, kw):
        raise ValueError(f"layer {name}: weights have shape {weights.shape}, expected {(co, c, kh, kw)}")
    if weights.size and (weights.min() < -128 or weights.max() > 127):
        raise ValueError(f"layer {name}: weights must fit 8 bits (-128 ... 127)")
    lo, hi = -(1 << (layer.acc_bits - 1)), (1 << (layer.acc_bits - 1)) - 1
    if bias.shape != (co,) or (bias.size and (bias.min() < lo or bias.max() > hi)):
        raise ValueError(f"layer {name}: bias must be {co} values in {lo} ... {hi} (acc_bits {layer.acc_bits})")
    taps = c * kh * kw
    state = state_option(name, ctx)
    lanes = ctx.options.get("lanes")
    if lanes is None:
        lanes = fewest_lanes(taps, co, ctx.device)
    lanes = check_option(f"layer {name}: lanes", lanes, 1, co)
    groups = -(-co // lanes)
    stride = row_stride(groups)
    buffer, buffer_mems = buffer_plan(name, ctx)
    mems = buffer_mems + (
        ctx.memory(f"{name}.weights", 8 * lanes, taps * stride, "rom"),
        ctx.memory(f"{name}.currents", layer.acc_bits * lanes, groups * ho * wo),
        ctx.memory(f"{name}.membranes", layer.neuron.mem_bits, co * ho * wo,
                   "spram" if state == "spram" else "ram"),
    )
    return SpikeConvPlan(ctx.index, name, "spikeconv", layer, ctx.in_shape, ctx.out_shape, ctx.time_steps, lanes,
                         groups, stride, reach(h, kh, sh, ph, ho), reach(w, kw, sw, pw, wo), buffer, mems)


def work(plan, ops):
    """Accumulations (taps in reach times output channels) over the lanes, plus the neuron updates over the one LIF
    unit (two cycles each with the membranes in SPRAM)."""
    op = ops[plan.name]
    updates = -(-int(op["neuron_updates"]) // plan.lif_units) * (2 if plan.state == "spram" else 1)
    return -(-np.asarray(op["event_ops"], dtype=np.int64) // plan.lanes) + updates


def logic(plan):
    """Logic cells (coarse, before calibration) of the core and its step buffer (:func:`hw.kinds.buffer.logic`).

    The core's count is fitted to Yosys (``synth_ice40``) on 68 cores synthesized alone, their maps 4x6 to 32x32
    with 1-64 channels, kernels 1-5, strides 1-2, 1-16 lanes, 1-8 steps, the membranes in block RAM or SPRAM, the
    spike's coordinates given or divided out; it is within 0.80-1.26x of each one's LUT4s but where one group
    covers every channel (the short weight ROM becomes logic: 1.34-1.39x): per lane 4.5 cells per accumulator bit
    (the adder, the read-modify-write of the current, the bias); 36 per bit of the neuron index (the counters, the
    reach tables, the tap and word addresses and the sweep all grow with it); the division of the row ``c * H + y``
    by ``H`` when ``H`` is not a power of two (and that of the flat index by ``W`` when the producer gives no
    coordinates), one cell per bit of quotient and dividend; with the membranes in SPRAM, the address multiplexer of
    its single port. ``tests/test_hw_spikeconv.py`` synthesizes three of them and holds them to that band."""
    layer = plan.layer
    c, h, w = plan.in_shape
    line_bits = count_bits(c * h)
    divide = line_bits * count_bits(c) if c > 1 and h & (h - 1) else 0
    if not plan.coordinates and w & (w - 1):
        divide += count_bits(c * h * w) * line_bits
    port = plan.neurons.bit_length() + 4 if plan.state == "spram" else 0
    core = int(4.5 * plan.lanes * layer.acc_bits) + 36 * count_bits(plan.neurons) + divide + port
    return core + buffer_logic(plan)


def random_options(layer, in_shape, device, rng, *, time_steps):
    """Random lanes, and the membranes in SPRAM one time in three where the device has it."""
    opts = {"lanes": int(rng.integers(1, layer.out_channels + 1))}
    if device.wide_ram is not None and rng.random() < 1 / 3:
        opts["state"] = "spram"
    return opts


def _core(plan):
    from hw.spikeconv import SpikeConvLayer
    return SpikeConvLayer(plan)


def _timeline(*args, **kwargs):
    from hw.spikeconv import timeline
    return timeline(*args, **kwargs)


KIND = register(Kind(
    name="spikeconv", manifest_type="conv2d", neuron="lif", options=("lanes", "state", "buffer"), takes_map=False,
    buffered=True, final=False, emits_rows=False, spiking=True, plan_layer=plan_layer, core=_core, timeline=_timeline, work=work,
    logic=logic, random_options=random_options))
