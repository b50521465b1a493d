"""Layer kind ``mapdense``: a dense layer of LIF neurons on the INT8 input map, as the first layer (core
:class:`hw.mapdense.MapDenseLayer`).

Direct encoding presents the same map at every step, so the layer's current is computed once per sample (``lanes``
products per cycle) and its neurons are then swept ``T`` times. Its plan (:class:`MapDensePlan`) fixes the lanes,
the lane groups, the weight ROM's row stride, where the membranes live (option ``state``, as for
:mod:`hw.kinds.spikeconv`) and the memories; its output goes into the step buffer of the layer after it. Its
timeline is :func:`hw.mapdense.timeline`. Pure Python.
"""

from dataclasses import dataclass

import numpy as np

from . import Kind, LayerPlan, check_option, register
from .dense import fewest_lanes, row_stride
from .memory import state_of, state_option
from .neuron import check_neuron

__all__ = ["MapDensePlan", "plan_layer"]


@dataclass(frozen=True)
class MapDensePlan(LayerPlan):
    """Everything the dense first layer's core is built from.

    Attributes
    ----------
    (those of :class:`hw.kinds.LayerPlan`)
    lanes : int
        Products per cycle.
    groups : int
        Cycles per input value, ``ceil(out_features / lanes)``.
    stride : int
        Words per input in the weight ROM (``groups`` rounded up to a power of two).
    memories : tuple of hw.plan.Memory
    """
    lanes: int
    groups: int
    stride: int
    memories: tuple

    buffer = None
    buffer_row = None
    buffer_rows = None
    lif_units = 1

    @property
    def in_features(self):
        return self.layer.in_features

    @property
    def neurons(self):
        return self.layer.out_features

    @property
    def positions(self):
        return 1

    @property
    def state(self):
        """Where the membranes live: ``"bram"`` or ``"spram"`` (option ``state``)."""
        return state_of(self)


def plan_layer(layer, ctx):
    """The :class:`MapDensePlan` of ``layer`` (a ``golden.manifest.Dense`` with LIF neurons on the INT8 map).

    Raises
    ------
    ValueError
        If the map does not match ``in_features``, an option is out of range, or a weight or bias does not fit.
    """
    name = layer.name
    check_neuron(layer.neuron, acc_bits=layer.acc_bits, layer=name)
    n_in = ctx.inputs
    if n_in != layer.in_features:
        raise ValueError(f"layer {name}: in_features {layer.in_features} does not match the {n_in} values of the "
                         f"input map")
    weights, bias = np.asarray(layer.weights), np.asarray(layer.bias)
    if weights.size and (weights.min() < -128 or weights.max() > 127):
        raise ValueError(f"layer {name}: weights must fit 8 bits (-128 ... 127)")
    lo, hi = -(1 << (layer.acc_bits - 1)), (1 << (layer.acc_bits - 1)) - 1
    if bias.size and (bias.min() < lo or bias.max() > hi):
        raise ValueError(f"layer {name}: bias must be in {lo} ... {hi} (acc_bits {layer.acc_bits})")
    state = state_option(name, ctx)
    lanes = ctx.options.get("lanes")
    if lanes is None:
        lanes = fewest_lanes(n_in, layer.out_features, ctx.device)
    lanes = check_option(f"layer {name}: lanes", lanes, 1, layer.out_features)
    groups = -(-layer.out_features // lanes)
    stride = row_stride(groups)
    mems = (
        ctx.memory(f"{name}.weights", 8 * lanes, n_in * stride, "rom"),
        ctx.memory(f"{name}.currents", layer.acc_bits * lanes, groups),
        ctx.memory(f"{name}.membranes", layer.neuron.mem_bits, layer.out_features,
                   "spram" if state == "spram" else "ram"),
    )
    return MapDensePlan(ctx.index, name, "mapdense", layer, ctx.in_shape, ctx.out_shape, ctx.time_steps, lanes,
                        groups, stride, mems)


def work(plan, ops):
    """The input transfers or the products with non-zero input over the lanes, whichever is more, then the neuron
    updates over the one LIF unit (the sweeps follow the current; two cycles each with the membranes in SPRAM)."""
    op = ops[plan.name]
    products = -(-np.asarray(op["event_ops"], dtype=np.int64) // plan.lanes)
    updates = -(-int(op["neuron_updates"]) // plan.lif_units) * (2 if plan.state == "spram" else 1)
    return np.maximum(products, plan.in_features) + updates


def logic(plan):
    """Logic cells (coarse, before calibration): control and counters; per lane an 8 x 8 multiplier (~70 LUTs
    without a DSP) and an adder of ``acc_bits``; the LIF unit; with the membranes in SPRAM, its port's address
    multiplexer."""
    layer = plan.layer
    port = plan.neurons.bit_length() + 4 if plan.state == "spram" else 0
    return 80 + plan.lanes * (70 + layer.acc_bits) + plan.lif_units * 3 * layer.neuron.mem_bits + port


def random_options(layer, in_shape, device, rng, *, time_steps):
    """Random lanes, and the membranes in SPRAM one time in three where the device has it."""
    opts = {"lanes": int(rng.integers(1, layer.out_features + 1))}
    if device.wide_ram is not None and rng.random() < 1 / 3:
        opts["state"] = "spram"
    return opts


def _core(plan):
    from hw.mapdense import MapDenseLayer
    return MapDenseLayer(plan)


def _timeline(*args, **kwargs):
    from hw.mapdense import timeline
    return timeline(*args, **kwargs)


KIND = register(Kind(
    name="mapdense", manifest_type="dense", neuron="lif", options=("lanes", "state"), takes_map=True, buffered=False,
    final=False, emits_rows=False, spiking=True, plan_layer=plan_layer, core=_core, timeline=_timeline, work=work,
    logic=logic, random_options=random_options))
