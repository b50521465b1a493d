"""Zero-skipping dense layer: work only per incoming spike event, ``lanes`` accumulations per cycle.

A dense layer with ``N`` inputs and ``M`` outputs keeps one accumulator per output, initialized to the bias. Its
weights live in a ROM of ``N * S`` words of ``lanes`` INT8 weights (``G = ceil(M / lanes)`` lane groups, ``S`` the
row stride, ``G`` rounded up to a power of two so that no multiplier lies on the address path; word
``n * S + g`` holds ``w[l * G + g, n]`` for ``l < lanes``, zero past ``M``: lane ``l`` serves the ``G`` consecutive
neurons ``l * G ... l * G + G - 1``). Per input spike event ``n`` the core reads the ``G`` words of row ``n``, one per
cycle, and adds word ``g`` into neuron ``l * G + g`` of every lane ``l``: an
event costs exactly ``G`` cycles and a silent input costs none (docs/arithmetic.md section 3, the second form).

At the end-of-step marker the core sweeps its neurons ``0 .. M-1``, one per cycle, through one
:class:`hw.lif` update (membranes in a memory, read ahead; see ``DenseLayer``), emits the index of every neuron that spikes in the same cycle
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
from .lif import check_neuron, membrane_base, saturate

__all__ = ["SpikeAccumulator", "DenseLayer", "weight_words", "row_stride", "ebr_blocks", "default_lanes", "dense_step_cycles",
           "check_lanes", "check_steps", "MAX_GROUPS"]

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


#: Cycles per input spike up to which :func:`default_lanes` prefers fewer lanes (less logic) to fewer cycles.
MAX_GROUPS = 4


def row_stride(groups):
    """Words per weight row in the ROM: ``groups`` rounded up to a power of two, so that the address of word ``g``
    of row ``n`` is ``n`` and ``g`` side by side (no multiplier on the address path)."""
    return 1 << (groups - 1).bit_length()


def default_lanes(layer):
    """Lanes for ``layer``: the fewest iCE40 EBRs for its weights, then the least logic within a cycle budget.

    Among all lane counts, take those whose weight ROM needs the fewest EBRs; among them the fewest lanes (each lane
    is an adder and a multiplexer of ``acc_bits``) that keep an input spike within :data:`MAX_GROUPS` cycles, or,
    when none does, the fewest groups (cycles per event). For a 384 x 28 layer this is 7 lanes: 1,536 words of 56
    bits, exactly 21 EBRs in the 512 x 8 mode, four cycles per input spike (14 lanes take the same EBRs and two
    cycles, at twice the adders); for a 28 x 10 readout it is 2 lanes in one EBR, five cycles per spike.
    """
    n, m = layer.in_features, layer.out_features
    best = None
    for lanes in range(1, m + 1):
        groups = -(-m // lanes)
        within = groups <= MAX_GROUPS
        key = (ebr_blocks(8 * lanes, n * row_stride(groups)), not within, lanes if within else groups)
        if best is None or key < best:
            best = key + (lanes,)
    return best[-1]


def weight_words(layer, lanes):
    """The weight ROM of ``layer`` as a list of ``N * G`` words, each a list of ``lanes`` INT8 values."""
    weights = layer.weights
    n, m = layer.in_features, layer.out_features
    groups = -(-m // lanes)
    words = []
    for row in range(n):
        for group in range(row_stride(groups)):
            word = []
            for lane in range(lanes):
                out = lane * groups + group
                value = int(weights[out, row]) if out < m and group < groups else 0
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
    owner sweeps the neurons in order: ``current`` shows the current of neuron ``sel``, and ``clear`` moves on to the
    next neuron and resets this one to its bias. The accumulators are a chain, not an addressed register file: the
    ``G`` banks of ``lanes`` accumulators rotate past the adders while a row is added, and the sweep shifts the chain
    by one neuron per ``clear``, so ``current`` is always the first accumulator and no read multiplexer is needed.
    The owner must therefore step ``sel`` through ``0, 1, ..., M - 1`` with one ``clear`` each before ``resume``.

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
        Neuron of the sweep whose current appears on ``current`` (it selects the bias that ``clear`` loads).
    current : Out(signed(acc_bits))
        Accumulator of neuron ``sel``: bias plus the weights of this step's input spikes.
    clear : In(1)
        Reset the accumulator of neuron ``sel`` to its bias and move on to neuron ``sel + 1`` at the next edge.
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
        acc = [Signal(signed(layer.acc_bits), init=bias[k] if k < n_out else 0, name=f"acc{k}")
               for k in range(groups * lanes)]

        stride = row_stride(groups)
        m.submodules.rom = rom = Memory(shape=data.ArrayLayout(signed(8), lanes), depth=layer.in_features * stride,
                                        init=weight_words(layer, lanes))
        rd = rom.read_port()

        # -- issue: one ROM word per cycle, G per event ----------------------------------------------------------
        busy = Signal()
        group = Signal(range(groups))
        row = Signal(range(layer.in_features))
        pending = Signal()
        m.d.comb += self.i.ready.eq(~self.done & ~busy)
        take = self.i.valid & self.i.ready
        m.d.sync += pending.eq(0)
        with m.If(busy):
            m.d.comb += rd.addr.eq(row * stride + group)
            m.d.sync += [pending.eq(1), group.eq(group + 1)]
            with m.If(group == groups - 1):
                m.d.sync += busy.eq(0)
        with m.Elif(take & ~self.i.payload.end):
            m.d.comb += rd.addr.eq(self.i.payload.index * stride)
            m.d.sync += pending.eq(1)
            if groups > 1:
                m.d.sync += [busy.eq(1), group.eq(1), row.eq(self.i.payload.index)]
        with m.If(take & self.i.payload.end):
            m.d.sync += self.done.eq(1)
        with m.If(self.resume):
            m.d.sync += self.done.eq(0)

        # -- accumulate and sweep: the accumulators form one chain, position ``p`` = neuron ``p`` -------------------
        # Lane ``l`` owns the ``G`` consecutive neurons ``l * G ... l * G + G - 1``. For each word of a row every lane
        # rotates its ``G`` accumulators by one, its first one plus the word's weight entering at the end: after the
        # ``G`` words of an event each accumulator is back in place with its weight added. The sweep shifts the whole
        # chain of ``M`` neurons by one per ``clear``, the bias of neuron ``sel`` entering at ``M - 1``. Both moves
        # take the next position's value except at the end of a lane, so only there does an accumulator need a
        # multiplexer, and no accumulator is ever read through an address.
        width = groups * lanes
        bias_rom = Array(Const(b, signed(layer.acc_bits)) for b in bias)
        for p in range(width):
            lane, g = divmod(p, groups)
            if g < groups - 1:
                rotate = ("next", p + 1)
            else:
                rotate = ("sum", lane)
            if p < n_out - 1:
                sweep = ("next", p + 1)
            elif p == n_out - 1:
                sweep = ("bias", None)
            else:
                sweep = None

            def value(src):
                kind, arg = src
                if kind == "next":
                    return acc[arg]
                if kind == "sum":
                    return acc[arg * groups] + rd.data[arg]
                return bias_rom[self.sel]

            if sweep == rotate:
                with m.If(pending | self.clear):
                    m.d.sync += acc[p].eq(value(rotate))
            else:
                with m.If(pending):
                    m.d.sync += acc[p].eq(value(rotate))
                if sweep is not None:
                    with m.If(self.clear):
                        m.d.sync += acc[p].eq(value(sweep))
        m.d.comb += self.current.eq(acc[0])
        return m


def check_core(core, layer, kind, what, time_steps, lanes):
    """Validate the arguments of a spike-input core (:class:`DenseLayer`, :class:`hw.readout.Readout`).

    Returns ``(layer, steps, lanes)``, ``lanes`` defaulting to :func:`default_lanes`. A refused ``core`` is marked so
    that Amaranth does not warn about an unused elaboratable.

    Raises
    ------
    TypeError
        If ``layer`` is not dense with a neuron of ``kind``.
    ValueError
        If ``time_steps`` or ``lanes`` is out of range.
    """
    try:
        if getattr(layer, "type", None) != "dense" or getattr(layer.neuron, "kind", None) != kind:
            raise TypeError(f"{type(core).__name__} needs a dense layer with {what}, not {layer!r}")
        return layer, check_steps(time_steps), check_lanes(layer, default_lanes(layer) if lanes is None else lanes)
    except (TypeError, ValueError):
        core._MustUse__silence = True
        raise


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
        self._layer, self._steps, self._lanes = check_core(self, layer, "lif", "LIF neurons", time_steps, lanes)
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

        check_neuron(neuron, acc_bits=layer.acc_bits)
        m.submodules.acc = acc = SpikeAccumulator(layer=layer, lanes=self._lanes)
        wiring.connect(m, wiring.flipped(self.i), acc.i)

        # The membranes live in a memory (one block RAM), read two neurons ahead of the sweep: the part of the
        # update that depends on the old membrane (membrane_base) is registered for the swept neuron, so only one
        # addition with its current lies in front of the spike, and the spike of the sweep's neuron decides whether
        # the sweep moves on (which drives the enables of every accumulator).
        bits = neuron.mem_bits
        m.submodules.membranes = membranes = Memory(shape=signed(bits), depth=n_out, init=[])
        v_rd = membranes.read_port()
        v_wr = membranes.write_port()
        n = Signal(range(n_out))
        step = Signal(range(self._steps))
        marker = Signal()
        sweeping = Signal()
        advance = Signal()
        start = self.i.valid & self.i.ready & self.i.payload.end
        base = Signal(signed(bits + 2))    # membrane_base of neuron n
        above = Signal(signed(bits + 2))   # base - threshold - 1
        spike = Signal()
        v_next = Signal(signed(bits))

        def ahead(k):
            """Neuron ``n + k`` modulo ``M``."""
            k %= n_out
            return Mux(n >= n_out - k, n + k - n_out, n + k) if k else n

        new_base = membrane_base(neuron, v_rd.data)
        total = base + acc.current
        m.d.comb += [
            sweeping.eq(acc.done & ~marker),
            acc.sel.eq(n),
            spike.eq(~(above + acc.current)[-1]),
            v_next.eq(saturate(total, bits)),
            v_wr.addr.eq(n),
            v_wr.data.eq(Mux(step == self._steps - 1, 0, v_next)),
            v_wr.en.eq(advance),
        ]
        # read address: the neuron whose membrane is needed in the next cycle's register load (see above)
        with m.If(advance):
            m.d.comb += v_rd.addr.eq(ahead(2))
        with m.Elif(sweeping):
            m.d.comb += v_rd.addr.eq(ahead(1))
        with m.Elif(start):
            m.d.comb += v_rd.addr.eq(1 % n_out)
        with m.If(advance | ~sweeping):
            m.d.sync += [base.eq(new_base), above.eq(new_base - (neuron.threshold + 1))]

        # -- sweep: one neuron per cycle, its spike emitted in the same cycle -------------------------------------
        with m.If(sweeping):
            m.d.comb += [
                self.o.valid.eq(spike),
                self.o.payload.index.eq(n),
                self.o.payload.end.eq(0),
            ]
            with m.If(~spike | self.o.ready):
                m.d.comb += [acc.clear.eq(1), advance.eq(1)]
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
