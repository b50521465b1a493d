"""Layer kind ``pool``: OR-pooling of spike events in the front end (core :class:`hw.pool.OrPool`).

A combinational filter between the conv core and what follows; it adds no cycle (its timeline passes its producer's
end-of-step markers on unchanged) and emits whole pooled rows together, in any order inside a row. With the option
``registered`` (``true``; default ``false``) its input passes a register: every event and marker leaves one cycle
later, and no path runs from the producer's output through the index arithmetic (``models/fsdd_deep2``'s pool after
its spike convolution, whose sweep decides the spike by an addition: 20.3 MHz without). Pure Python.
"""

from dataclasses import dataclass

from golden.checks import check_int

from . import Kind, LayerPlan, register

__all__ = ["PoolPlan", "plan_layer"]


@dataclass(frozen=True)
class PoolPlan(LayerPlan):
    """Everything the OR-pool core is built from.

    Attributes
    ----------
    (those of :class:`hw.kinds.LayerPlan`)
    kernel : (int, int)
        ``(Kh, Kw)``; the stride equals the kernel.
    memories : tuple of hw.plan.Memory
        The flags of the pooled neurons of the current row already emitted.
    registered : bool
        The input passes a register (one cycle later).
    """
    kernel: tuple
    memories: tuple
    registered: bool = False

    buffer = None
    buffer_row = None
    buffer_rows = None
    lanes = None
    groups = None
    lif_units = 0
    neurons = 0


def plan_layer(layer, ctx):
    """The :class:`PoolPlan` of ``layer`` in context ``ctx`` (:class:`hw.plan.Context`).

    Raises
    ------
    ValueError
        If the map is not three-dimensional or the kernel does not fit it.
    """
    if len(ctx.in_shape) != 3:
        raise ValueError(f"layer {layer.name}: a pool layer needs a (C, H, W) spike map, not {ctx.in_shape}")
    c, h, w = (check_int(f"layer {layer.name}: input dimension", d, 1) for d in ctx.in_shape)
    kh, kw = (check_int(f"layer {layer.name}: pool kernel", k, 1) for k in layer.kernel)
    if h < kh or w < kw:
        raise ValueError(f"layer {layer.name}: pool kernel {kh}x{kw} does not fit the {h}x{w} map")
    registered = ctx.options.get("registered", False)
    if not isinstance(registered, bool):
        raise ValueError(f"layer {layer.name}: registered must be true or false, not {registered!r}")
    memories = (ctx.memory(f"{layer.name}.seen", w // kw, 1, "registers"),)
    return PoolPlan(ctx.index, layer.name, "pool", layer, (c, h, w), (c, h // kh, w // kw), ctx.time_steps,
                    (kh, kw), memories, registered)


def work(plan, ops):
    """No arithmetic: nothing to bound."""
    return 0


def logic(plan):
    """Logic cells (coarse, before calibration): control and the index arithmetic, and the row's flags."""
    cells = 60 + 40 + sum(mem.bits for mem in plan.memories if mem.kind == "registers")
    if plan.registered:  # the input register: valid, end and the index
        cells += 2 + (plan.in_shape[0] * plan.in_shape[1] * plan.in_shape[2]).bit_length()
    return cells


def random_options(layer, in_shape, device, rng, *, time_steps):
    """Random options for verification runs: with or without the output register."""
    return {"registered": bool(rng.random() < 0.5)}


def _core(plan):
    from hw.pool import OrPool
    return OrPool(plan)


def _timeline(*args, **kwargs):
    from hw.pool import timeline
    return timeline(*args, **kwargs)


KIND = register(Kind(
    name="pool", manifest_type="pool", neuron=None, options=("registered",), takes_map=False, buffered=False, final=False,
    emits_rows=True, spiking=False, plan_layer=plan_layer, core=_core, timeline=_timeline, work=work, logic=logic,
    random_options=random_options))
