"""The LIF lane: one membrane update of docs/arithmetic.md, as combinational logic.

:class:`LIFUnit` maps ``(previous membrane, current)`` to ``(new membrane, spike)`` for one neuron, exactly as
sections 5 and 6 of ``docs/arithmetic.md`` define it:

- the reset flag ``r = [v > theta]`` is derived from the *previous* membrane (snnTorch's delayed reset);
- the leak is ``v - (v >>> k)`` with an arithmetic shift (``k = 0`` discards the membrane);
- ``subtract``: ``sat_B(leak(v) + I - r * theta)``; ``zero``: ``sat_B((r ? 0 : leak(v)) + I)``;
- the sum is formed exactly (every intermediate is wide enough) and saturated once to ``mem_bits``;
- the spike is ``[v_new > theta]`` (strictly greater).

The same unit also implements the integrating readout (``golden.manifest.Integrate``, section 7):
``sat_B(v + I)`` with no leak, no threshold and a spike output that is always 0.

The unit has no state and no clock: cores that sweep many neurons instantiate it once per lane and keep the
membranes in registers or memories of their own.
"""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .kinds.neuron import check_neuron

__all__ = ["LIFUnit", "check_neuron", "membrane_base", "saturate"]


def membrane_base(neuron, v):
    """The part of a LIF update that depends on the previous membrane ``v`` alone, exact (not saturated).

    ``subtract``: ``leak(v) - [v > theta] * theta``; ``zero``: ``[v > theta] ? 0 : leak(v)``. The new membrane is
    ``sat_B(membrane_base(v) + I)`` and the spike ``membrane_base(v) + I > theta`` (the saturation bounds lie on
    both sides of the threshold, so the exact sum decides the spike). A core can thus compute this part one cycle
    ahead, from a memory's output, and leave only one addition in front of its spike. The value fits
    ``signed(mem_bits + 1)``.
    """
    leaked = v - (v >> neuron.leak_shift)
    reset = v > neuron.threshold
    if neuron.reset == "subtract":
        return leaked - Mux(reset, neuron.threshold, 0)
    return Mux(reset, 0, leaked)


def saturate(total, bits):
    """``sat_B(total)`` for an exact signed ``total``: it fits when its bits from bit ``B - 1`` up are all equal."""
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    top = total[bits - 1:]
    fits = (top == 0) | (top == (1 << len(top)) - 1)
    return Mux(fits, total[:bits], Mux(total[-1], low, high))


class LIFUnit(wiring.Component):
    """One combinational neuron update (docs/arithmetic.md sections 5 to 7).

    Parameters
    ----------
    neuron : golden.manifest.LIF or golden.manifest.Integrate
        The layer's neuron parameters (``leak_shift``, ``threshold``, ``reset``, ``mem_bits``).
    acc_bits : int
        Width of the signed synaptic current.
    fired_input : bool
        LIF only: take the reset flag from the ``fired`` port (the spike of the previous step, which equals
        ``v > threshold``) instead of comparing ``v`` again; saves a comparator where the spike is at hand.

    Members
    -------
    v : In(signed(mem_bits))
        Membrane after the previous step (0 before the first step of a sample).
    current : In(signed(acc_bits))
        Synaptic current of this step.
    v_next : Out(signed(mem_bits))
        Membrane after this step.
    spike : Out(1)
        ``v_next > threshold`` (always 0 for the integrating readout).
    fired : In(1)
        Only with ``fired_input``: the previous step's spike (0 before the first step).

    Raises
    ------
    TypeError, ValueError
        As :func:`check_neuron`.
    """

    def __init__(self, neuron, acc_bits, *, fired_input=False):
        self._kind = check_neuron(neuron, acc_bits=acc_bits)
        self._neuron = neuron
        self._acc_bits = acc_bits
        self._fired_input = bool(fired_input) and self._kind == "lif"
        bits = neuron.mem_bits
        members = {
            "v": In(signed(bits)),
            "current": In(signed(acc_bits)),
            "v_next": Out(signed(bits)),
            "spike": Out(1),
        }
        if self._fired_input:
            members["fired"] = In(1)
        super().__init__(members)

    @property
    def neuron(self):
        return self._neuron

    @property
    def acc_bits(self):
        return self._acc_bits

    def elaborate(self, platform):
        m = Module()
        neuron = self._neuron
        bits = neuron.mem_bits
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

        if self._kind == "integrate":
            total = self.v + self.current
        else:
            theta = neuron.threshold
            k = neuron.leak_shift
            leaked = self.v - (self.v >> k)
            reset = self.fired if self._fired_input else self.v > theta
            if neuron.reset == "subtract":
                total = leaked + self.current - Mux(reset, theta, 0)
            else:
                total = Mux(reset, 0, leaked) + self.current

        # The exact sum, saturated once: it fits when its bits above bit B-2 are all equal.
        top = total[bits - 1:]
        fits = (top == 0) | (top == (1 << len(top)) - 1)
        m.d.comb += self.v_next.eq(Mux(fits, total[:bits], Mux(total[-1], low, high)))
        if self._kind == "lif":
            m.d.comb += self.spike.eq(self.v_next > neuron.threshold)
        return m
