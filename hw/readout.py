"""The integrating readout and the argmax: the last layer of every spikesmith network.

:class:`Readout` is a dense layer whose neurons integrate without leak, threshold or reset
(``R[t] = sat_B(R[t-1] + I[t])``, docs/arithmetic.md section 7). Its input side is the zero-skipping
:class:`hw.dense.SpikeAccumulator`; at every end-of-step marker it sweeps the ``M`` readout values, one per cycle,
through one :class:`hw.lif.LIFUnit` in integrate mode. During the sweep of the last step it also tracks the largest
value with a strict compare, so that among equal largest values the lowest index wins (NumPy's ``argmax``), and then
offers one result: the class and all readout values. Taking the result clears the readout for the next sample.

Timing (ideal environment), per step with ``E`` input spikes: ``E * G + 1 + M`` cycles, and one more cycle at the
last step for the result transfer (:func:`hw.dense.dense_step_cycles` with ``readout=True``, plus 1).
"""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .dense import SpikeAccumulator, back_end_timeline, busy_cycles, load_member
from .kinds.dense import DensePlan
from .layouts import bits_for_count, readout_layout, spike_event
from .lif import LIFUnit

__all__ = ["Readout", "readout_layout", "timeline"]


def timeline(plan, markers, inputs, outputs):
    """The core's part of the cycle model (:func:`hw.cycles.cycles`): :func:`hw.dense.back_end_timeline`; the
    readout takes input again from ``X + M + 1`` and, at the last step, transfers the result at ``X + M + 1``: the
    inference takes ``X + M + 2`` cycles (``total``)."""
    take, _ = back_end_timeline(plan, markers, inputs, after_sweep=1)
    busy = busy_cycles(plan, inputs)
    done = take[:, -1] + plan.out_features + 1
    return {"markers": None, "busy": busy + 1, "finish": done, "total": done + 1}


class Readout(wiring.Component):
    """Integrating readout layer with argmax.

    Parameters
    ----------
    plan : hw.kinds.dense.DensePlan
        The plan of the last layer (``kind == "readout"``, integrating neurons): its lanes and groups, and ``T`` (a
        result is offered after every ``T`` end-of-step markers).

    Members
    -------
    i : In(stream.Signature(spike_event(bits_for_count(in_features))))
        Input spike events, each step closed by one marker.
    o : Out(stream.Signature(readout_layout(layer)))
        One result per sample: the class and the readout values after the last step.
    load : In(hw.weights.LOAD_SIGNATURE)
        Only with the weights in SPRAM: their image (see :class:`hw.dense.SpikeAccumulator`).

    Raises
    ------
    TypeError
        If ``plan`` is not the plan of a readout layer.
    """

    def __init__(self, plan):
        if not isinstance(plan, DensePlan) or plan.kind != "readout":
            raise TypeError(f"Readout needs the hw.kinds.dense.DensePlan of a readout layer, not {plan!r}")
        self._plan = plan
        layer = plan.layer
        super().__init__({
            "i": In(stream.Signature(spike_event(bits_for_count(layer.in_features)))),
            "o": Out(stream.Signature(readout_layout(layer))),
        } | load_member(plan))

    @property
    def plan(self):
        return self._plan

    def elaborate(self, platform):
        m = Module()
        layer = self._plan.layer
        steps = self._plan.time_steps
        n_out = layer.out_features
        bits = layer.neuron.mem_bits

        m.submodules.acc = acc = SpikeAccumulator(self._plan)
        m.submodules.unit = unit = LIFUnit(layer.neuron, layer.acc_bits)
        wiring.connect(m, wiring.flipped(self.i), acc.i)
        if "load" in self.signature.members:
            wiring.connect(m, wiring.flipped(self.load), acc.load)

        r = [Signal(signed(bits), name=f"r{k}") for k in range(n_out)]
        n = Signal(range(n_out))
        step = Signal(range(steps))
        last = Signal()
        m.d.comb += [
            last.eq(step == steps - 1),
            acc.sel.eq(n),
            unit.v.eq(r[0]),
            unit.current.eq(acc.current),
        ]
        best = Signal(signed(bits))
        best_index = Signal(range(n_out))
        offer = Signal()

        # -- sweep: integrate one value per cycle, track the argmax at the last step ------------------------------
        with m.If(acc.done & ~offer):
            # the readout values shift down a chain, as the accumulators do: r[0] is always neuron n
            m.d.comb += acc.clear.eq(1)
            m.d.sync += [r[k].eq(r[k + 1]) for k in range(n_out - 1)] + [r[n_out - 1].eq(unit.v_next)]
            with m.If((n == 0) | (unit.v_next > best)):
                m.d.sync += [best.eq(unit.v_next), best_index.eq(n)]
            with m.If(n == n_out - 1):
                m.d.sync += n.eq(0)
                with m.If(last):
                    m.d.sync += offer.eq(1)
                with m.Else():
                    m.d.comb += acc.resume.eq(1)
                    m.d.sync += step.eq(step + 1)
            with m.Else():
                m.d.sync += n.eq(n + 1)

        # -- result -----------------------------------------------------------------------------------------------
        m.d.comb += [
            self.o.valid.eq(offer),
            self.o.payload.cls.eq(best_index),
        ]
        for k in range(n_out):
            m.d.comb += self.o.payload.readout[k].eq(r[k])
        with m.If(offer & self.o.ready):
            m.d.comb += acc.resume.eq(1)
            m.d.sync += [offer.eq(0), step.eq(0)] + [rk.eq(0) for rk in r]
        return m
