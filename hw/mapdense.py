"""The dense first layer: LIF neurons on the INT8 input map, its current computed once per sample.

:class:`MapDenseLayer` (kind ``mapdense``, plan :class:`hw.kinds.mapdense.MapDensePlan`) takes the ``N = C*H*W``
values of a map in raster order, the same flat order as the layer's inputs (docs/arithmetic.md: direct encoding, the
current ``b + W x`` is the same at every step). Each value is held for ``G = ceil(M / lanes)`` cycles, one per lane
group: the core reads the weight word of input ``n`` and group ``g`` (the ROM of :func:`hw.spikeconv.weight_words`,
``lanes`` weights of the channels ``g * lanes ... g * lanes + lanes - 1``) and, in the next cycle, adds the
``lanes`` products ``x * w`` to the current word ``g`` (:class:`hw.sweep.LIFSweep`, which keeps the currents and
membranes). A value is taken in the cycle of the previous one's last visit, so the ``N`` values take ``N * G`` cycles
from the first transfer (cycle 0) to the last visit (cycle ``X = N * G``), every value costing the same (no
zero-skipping: the timeline depends on nothing but the model). Then the ``T`` sweeps of the neurons follow, each
emitting its spikes in ascending order and a marker: the marker of step ``t`` is transferred at
``X + (t + 1) * (M + 3)`` with an always-ready output (a step buffer), ``X + (t + 1) * (2M + 3)`` with the
membranes in SPRAM (plan option ``state``, :func:`hw.sweep.sweep_cycles`). The currents return to their biases
during the last sweep, the membranes to zero (in SPRAM: the first step of a sample takes them as zero); the cycle
after the last marker's transfer the core takes the next map.
"""

import numpy as np
from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .kinds.mapdense import MapDensePlan
from .layouts import bits_for_count, spike_event
from .spikeconv import weight_rom
from .sweep import LIFSweep, sweep_cycles

__all__ = ["MapDenseLayer", "timeline"]


def timeline(plan, markers, inputs, outputs):
    """The core's part of the cycle model (:func:`hw.cycles.cycles`): the marker of step ``t`` at
    ``N * G + (t + 1) * S``, ``S`` the cycles of a sweep (:func:`hw.sweep.sweep_cycles`: ``M + 3``, or ``2M + 3``
    with the membranes in SPRAM), the same for every sample.

    Parameters
    ----------
    plan : hw.kinds.mapdense.MapDensePlan
    markers, inputs : None
        The core takes the input map, not events.
    outputs : ndarray (N, T, M) bool
        The layer's spikes (only their number of samples is used).
    """
    n = np.shape(outputs)[0]
    loaded = plan.in_features * plan.groups
    steps = np.arange(1, plan.time_steps + 1, dtype=np.int64) * sweep_cycles(plan.neurons, plan.state)
    out = np.broadcast_to(loaded + steps, (n, plan.time_steps)).copy()
    done = out[:, -1] + 1
    return {"markers": out, "busy": done, "finish": done}


class MapDenseLayer(wiring.Component):
    """A dense layer of LIF neurons on the INT8 input map (see the module docstring).

    Parameters
    ----------
    plan : hw.kinds.mapdense.MapDensePlan

    Members
    -------
    i : In(stream.Signature(signed(8)))
        The input map's values in raster order, ``C * H * W`` per sample.
    o : Out(stream.Signature(spike_event(bits_for_count(out_features))))
        Output spike events in ascending order, each of the ``T`` steps closed by one marker.

    Raises
    ------
    TypeError
        If ``plan`` is not a :class:`hw.kinds.mapdense.MapDensePlan`.
    """

    def __init__(self, plan):
        if not isinstance(plan, MapDensePlan):
            raise TypeError(f"MapDenseLayer needs a hw.kinds.mapdense.MapDensePlan, not {plan!r}")
        self._plan = plan
        super().__init__({
            "i": In(stream.Signature(signed(8))),
            "o": Out(stream.Signature(spike_event(bits_for_count(plan.neurons)))),
        })

    @property
    def plan(self):
        return self._plan

    def elaborate(self, platform):
        m = Module()
        p = self._plan
        layer = p.layer
        n_in, lanes, groups = p.in_features, p.lanes, p.groups

        m.submodules.weights = rom = weight_rom(p)
        w_rd = rom.read_port()
        m.submodules.state = state = LIFSweep(neuron=layer.neuron, acc_bits=layer.acc_bits, bias=layer.bias,
                                              positions=1, lanes=lanes, time_steps=p.time_steps,
                                              repeat=p.time_steps, reset_every_step=False, state=p.state)
        wiring.connect(m, state.o, wiring.flipped(self.o))

        # -- the value held, its input index and the lane group visited -----------------------------------------
        held = Signal()
        value = Signal(signed(8))
        row = Signal(range(max(2, n_in)))
        taken = Signal(range(n_in + 1))
        g = Signal(range(max(2, groups)))
        last = g == groups - 1
        m.d.comb += self.i.ready.eq(~state.active & (taken != n_in) & (~held | last))
        take = self.i.valid & self.i.ready
        with m.If(held):
            m.d.sync += g.eq(0 if groups == 1 else g + 1)
            with m.If(last):
                m.d.sync += [held.eq(0), g.eq(0)]
        with m.If(take):
            m.d.sync += [held.eq(1), value.eq(self.i.payload), row.eq(taken), taken.eq(taken + 1)]
        with m.If(held & last & (row == n_in - 1)):
            m.d.comb += state.start.eq(1)
            m.d.sync += taken.eq(0)

        # -- visit: the weight word of (row, g); its products with the value are added in the next cycle -----------
        stride_bits = (p.stride - 1).bit_length()
        value_read = Signal.like(value)
        m.d.sync += value_read.eq(value)
        m.d.comb += [
            w_rd.addr.eq(Cat(g[:stride_bits], row) if stride_bits else row),
            state.visit.eq(held),
            state.word.eq(g),
        ]
        for l in range(lanes):
            m.d.comb += state.addend[l].eq(value_read * w_rd.data[l])
        return m
