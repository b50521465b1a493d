"""Zero-skipping dense layer: work only per incoming spike event, ``lanes`` accumulations per cycle.

A dense layer with ``N`` inputs and ``M`` outputs keeps one accumulator per output, initialized to the bias. Its
weights live in a ROM of ``N * G`` words of ``lanes`` INT8 weights (``G = ceil(M / lanes)`` lane groups; word
``n * G + g`` holds ``w[g * lanes + l, n]`` for ``l < lanes``, zero past ``M``). Per input spike event ``n`` the core
reads the ``G`` words of row ``n``, one per cycle, and adds each into the ``lanes`` accumulators of its group: an
event costs exactly ``G`` cycles and a silent input costs none (docs/arithmetic.md section 3, the second form).

At the end-of-step marker the core sweeps its neurons ``0 .. M-1``, one per cycle, through one
:class:`hw.lif.LIFUnit` (membranes in registers), emits the index of every neuron that spikes in the same cycle
(ascending order, so the output needs no sorting), resets the accumulator to the bias, and finally emits the
end-of-step marker. At the last step of a sample the membranes are cleared for the next sample.

Timing with an always-valid input and an always-ready output, for a step with ``E`` input spikes:
``E * G + 1`` cycles to take the events and the marker, ``M`` cycles of sweep, ``1`` cycle for the output marker.
:func:`dense_step_cycles` states it (the tests check it); ``golden/cycles.py`` follows the same timeline.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .layouts import bits_for_count, spike_event
from .lif import LIFUnit

__all__ = ["SpikeAccumulator", "DenseLayer", "weight_words", "ebr_blocks", "default_lanes", "dense_step_cycles",
           "check_lanes", "check_steps"]

#: iCE40 EBR aspect ratios (width, depth) of one 4-kbit block.
EBR_MODES = ((16, 256), (8, 512), (4, 1024), (2, 2048))


def ebr_blocks(width, depth):
    """Number of iCE40 4-kbit EBRs a ``width`` x ``depth`` memory needs in its best aspect ratio (0 when empty)."""
    if width <= 0 or depth <= 0:
        return 0
    return min(-(-width // w) * -(-depth // d) for w, d in EBR_MODES)


def check_lanes(layer, lanes):
    """Return ``lanes`` validated for ``layer`` (an integer from 1 to ``out_features``)."""
    if not isinstance(lanes, int) or isinstance(lanes, bool) or not 1 <= lanes <= layer.out_features:
        raise ValueError(f"layer {layer.name}: lanes must be an integer from 1 to {layer.out_features} "
                         f"(out_features), not {lanes!r}")
    return lanes


def check_steps(time_steps):
    """Return ``time_steps`` validated (an integer from 1 to 1024)."""
    if not isinstance(time_steps, int) or isinstance(time_steps, bool) or not 1 <= time_steps <= 1024:
        raise ValueError(f"time_steps must be an integer from 1 to 1024, not {time_steps!r}")
    return time_steps


def default_lanes(layer):
    """Lanes for ``layer`` whose weight words fill iCE40 EBRs best.

    Among all lane counts, take those whose weight ROM needs the fewest EBRs, then the one with the fewest lane groups
    (cycles per event), then the fewest lanes (logic). For a 384 x 28 layer this is 14 lanes: 768 words of 112 bits,
    exactly 21 EBRs in the 256 x 16 mode, two cycles per input spike.
    """
    n, m = layer.in_features, layer.out_features
    best = None
    for lanes in range(1, m + 1):
        groups = -(-m // lanes)
        key = (ebr_blocks(8 * lanes, n * groups), groups, lanes)
        if best is None or key < best:
            best = key
    return best[2]


def weight_words(layer, lanes):
    """The weight ROM of ``layer`` as a list of ``N * G`` words, each a list of ``lanes`` INT8 values."""
    weights = layer.weights
    n, m = layer.in_features, layer.out_features
    groups = -(-m // lanes)
    words = []
    for row in range(n):
        for group in range(groups):
            word = []
            for lane in range(lanes):
                out = group * lanes + lane
                value = int(weights[out, row]) if out < m else 0
                if not -128 <= value <= 127:
                    raise ValueError(f"layer {layer.name}: weight [{out}, {row}] = {value} is outside INT8")
                word.append(value)
            words.append(word)
    return words


def dense_step_cycles(events, out_features, lanes, *, readout=False):
    """Cycles of one step of a dense core (ideal environment): ``E * G + 1 + M`` (+1 for a LIF layer's marker).

    ``events`` may be a NumPy array of spike counts; the result has the same shape.
    """
    groups = -(-out_features // lanes)
    return events * groups + 1 + out_features + (0 if readout else 1)


class SpikeAccumulator(wiring.Component):
    """The zero-skipping front end shared by :class:`DenseLayer` and :class:`hw.readout.Readout`.

    Takes spike events; per event ``n`` adds row ``n`` of the weights into the accumulators, ``lanes`` per cycle.
    When it takes an end-of-step marker it raises ``done`` and takes nothing more until ``resume``; meanwhile the
    owner reads the currents through ``sel`` / ``current`` and resets them to the bias with ``clear``.

    Parameters
    ----------
    layer : golden.manifest.Dense
    lanes : int
        Accumulations per cycle, 1 ... ``out_features``.

    Members
    -------
    i : In(stream.Signature(spike_event(bits_for_count(in_features))))
        Input spike events with one end-of-step marker per step.
    done : Out(1)
        An end-of-step marker has been taken and every accumulation of the step is complete.
    resume : In(1)
        Leave the ``done`` state (take events again from the next cycle).
    sel : In(range(out_features))
        Neuron whose current appears on ``current``.
    current : Out(signed(acc_bits))
        Accumulator of neuron ``sel``: bias plus the weights of this step's input spikes.
    clear : In(1)
        Reset the accumulator of neuron ``sel`` to its bias at the next clock edge.
    """

    def __init__(self, *, layer, lanes):
        self._layer = layer
        self._lanes = check_lanes(layer, lanes)
        self._groups = -(-layer.out_features // lanes)
        super().__init__({
            "i": In(stream.Signature(spike_event(bits_for_count(layer.in_features)))),
            "done": Out(1),
            "resume": In(1),
            "sel": In(range(layer.out_features)),
            "current": Out(signed(layer.acc_bits)),
            "clear": In(1),
        })

    @property
    def groups(self):
        return self._groups

    def elaborate(self, platform):
        m = Module()
        layer, lanes, groups = self._layer, self._lanes, self._groups
        n_out = layer.out_features
        bias = [int(b) for b in layer.bias]
        acc = [Signal(signed(layer.acc_bits), init=bias[k], name=f"acc{k}") for k in range(n_out)]

        m.submodules.rom = rom = Memory(shape=data.ArrayLayout(signed(8), lanes), depth=layer.in_features * groups,
                                        init=weight_words(layer, lanes))
        rd = rom.read_port()

        # -- issue: one ROM word per cycle, G per event ----------------------------------------------------------
        busy = Signal()
        group = Signal(range(groups))
        row = Signal(range(layer.in_features))
        pending = Signal()
        pending_group = Signal(range(groups))
        m.d.comb += self.i.ready.eq(~self.done & ~busy)
        take = self.i.valid & self.i.ready
        m.d.sync += pending.eq(0)
        with m.If(busy):
            m.d.comb += rd.addr.eq(row * groups + group)
            m.d.sync += [pending.eq(1), pending_group.eq(group), group.eq(group + 1)]
            with m.If(group == groups - 1):
                m.d.sync += busy.eq(0)
        with m.Elif(take & ~self.i.payload.end):
            m.d.comb += rd.addr.eq(self.i.payload.index * groups)
            m.d.sync += [pending.eq(1), pending_group.eq(0)]
            if groups > 1:
                m.d.sync += [busy.eq(1), group.eq(1), row.eq(self.i.payload.index)]
        with m.If(take & self.i.payload.end):
            m.d.sync += self.done.eq(1)
        with m.If(self.resume):
            m.d.sync += self.done.eq(0)

        # -- accumulate: the word read in the previous cycle into its group ---------------------------------------
        with m.If(pending):
            for lane in range(lanes):
                members = [acc[g * lanes + lane] if g * lanes + lane < n_out else Const(0, signed(layer.acc_bits))
                           for g in range(groups)]
                total = Signal(signed(layer.acc_bits), name=f"sum{lane}")
                m.d.comb += total.eq(Array(members)[pending_group] + rd.data[lane])
                for g in range(groups):
                    k = g * lanes + lane
                    if k < n_out:
                        with m.If(pending_group == g):
                            m.d.sync += acc[k].eq(total)

        # -- read-out and clear by the owner ---------------------------------------------------------------------
        m.d.comb += self.current.eq(Array(acc)[self.sel])
        with m.If(self.clear):
            for k in range(n_out):
                with m.If(self.sel == k):
                    m.d.sync += acc[k].eq(bias[k])
        return m


class DenseLayer(wiring.Component):
    """A dense layer of LIF neurons driven by spike events (zero-skipping).

    Parameters
    ----------
    layer : golden.manifest.Dense
        A dense layer with a ``golden.manifest.LIF`` neuron.
    time_steps : int
        ``T`` of the model: the membranes are cleared after every ``T`` steps (one sample).
    lanes : int, optional
        Accumulations per cycle (default :func:`default_lanes`).

    Members
    -------
    i : In(stream.Signature(spike_event(bits_for_count(in_features))))
        Input spike events, each step closed by one marker.
    o : Out(stream.Signature(spike_event(bits_for_count(out_features))))
        Output spike events in ascending neuron order, each step closed by one marker.

    Raises
    ------
    TypeError
        If the layer is not dense with LIF neurons.
    ValueError
        If ``time_steps`` or ``lanes`` is out of range.
    """

    def __init__(self, *, layer, time_steps, lanes=None):
        try:
            if getattr(layer, "type", None) != "dense" or getattr(layer.neuron, "kind", None) != "lif":
                raise TypeError(f"DenseLayer needs a dense layer with LIF neurons, not {layer!r}")
            self._steps = check_steps(time_steps)
            self._lanes = check_lanes(layer, default_lanes(layer) if lanes is None else lanes)
        except (TypeError, ValueError):
            self._MustUse__silence = True  # refused: not an unused elaboratable
            raise
        self._layer = layer
        super().__init__({
            "i": In(stream.Signature(spike_event(bits_for_count(layer.in_features)))),
            "o": Out(stream.Signature(spike_event(bits_for_count(layer.out_features)))),
        })

    @property
    def lanes(self):
        return self._lanes

    def elaborate(self, platform):
        m = Module()
        layer = self._layer
        n_out = layer.out_features
        neuron = layer.neuron

        m.submodules.acc = acc = SpikeAccumulator(layer=layer, lanes=self._lanes)
        m.submodules.lif = lif = LIFUnit(neuron, layer.acc_bits)
        wiring.connect(m, wiring.flipped(self.i), acc.i)

        v = [Signal(signed(neuron.mem_bits), name=f"v{k}") for k in range(n_out)]
        n = Signal(range(n_out))
        step = Signal(range(self._steps))
        marker = Signal()
        m.d.comb += [
            acc.sel.eq(n),
            lif.v.eq(Array(v)[n]),
            lif.current.eq(acc.current),
        ]

        # -- sweep: one neuron per cycle, its spike emitted in the same cycle -------------------------------------
        with m.If(acc.done & ~marker):
            m.d.comb += [
                self.o.valid.eq(lif.spike),
                self.o.payload.index.eq(n),
                self.o.payload.end.eq(0),
            ]
            with m.If(~lif.spike | self.o.ready):
                m.d.comb += acc.clear.eq(1)
                for k in range(n_out):
                    with m.If(n == k):
                        m.d.sync += v[k].eq(Mux(step == self._steps - 1, 0, lif.v_next))
                with m.If(n == n_out - 1):
                    m.d.sync += [n.eq(0), marker.eq(1)]
                with m.Else():
                    m.d.sync += n.eq(n + 1)

        # -- end-of-step marker -----------------------------------------------------------------------------------
        with m.If(marker):
            m.d.comb += [
                self.o.valid.eq(1),
                self.o.payload.index.eq(0),
                self.o.payload.end.eq(1),
            ]
            with m.If(self.o.ready):
                m.d.comb += acc.resume.eq(1)
                m.d.sync += [marker.eq(0), step.eq(Mux(step == self._steps - 1, 0, step + 1))]
        return m
