"""Zero-skipping dense layer: work only per incoming spike event, ``lanes`` accumulations per cycle.

A dense layer with ``N`` inputs and ``M`` outputs keeps one accumulator per output, initialized to the bias. Its
weights live in a ROM of ``N * S`` words of ``lanes`` INT8 weights (``G = ceil(M / lanes)`` lane groups, ``S`` the
row stride, ``G`` rounded up to a power of two so that no multiplier lies on the address path; word
``n * S + g`` holds ``w[l * G + g, n]`` for ``l < lanes``, zero past ``M``: lane ``l`` serves the ``G`` consecutive
neurons ``l * G ... l * G + G - 1``). Per input spike event ``n`` the core reads the ``G`` words of row ``n``, one per
cycle, and adds word ``g`` into neuron ``l * G + g`` of every lane ``l``: an
event costs exactly ``G`` cycles and a silent input costs none (docs/arithmetic.md section 3, the second form).

The accumulators (plan option ``accumulators``) are a chain of ``M`` registers, or a block RAM of ``G`` words of
``lanes`` accumulators (word ``g`` holding neuron ``l * G + g`` of every lane ``l``, the grouping of the weight
words), read together with the weight word and written back in the next cycle, with the same cycle counts.

At the end-of-step marker the core sweeps its neurons ``0 .. M-1``, one per cycle, through one
:class:`hw.lif` update (membranes in a memory, read ahead; see ``DenseLayer``), emits the index of every neuron that spikes in the same cycle
(ascending order, so the output needs no sorting), resets the accumulator to the bias, and finally emits the
end-of-step marker. At the last step of a sample the membranes are cleared for the next sample.

Timing with an always-valid input and an always-ready output, for a step with ``E`` input spikes:
``E * G + 1`` cycles to take the events and the marker, ``M`` cycles of sweep, ``1`` cycle for the output marker.
:func:`dense_step_cycles` states it (the tests check it); :func:`timeline` is the core's part of the cycle model
(:mod:`hw.cycles`), behind the step buffer that feeds it.
"""

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .exclusive import ExclusiveMemory
from .kinds.dense import DensePlan
from .layouts import bits_for_count, spike_event
from .lif import membrane_base, saturate
from .stepbuffer import BUFFER_DELAY
from .weights import LOAD_SIGNATURE, WeightMemory

__all__ = ["SpikeAccumulator", "DenseLayer", "weight_words", "load_member", "dense_step_cycles", "timeline",
           "back_end_timeline", "busy_cycles"]


def weight_words(plan):
    """The weight ROM of a dense or readout plan as a list of ``N * S`` words, each a list of ``lanes`` INT8 values
    (word ``n * S + g`` holds ``w[l * G + g, n]`` for lane ``l``, zero past ``M`` and past ``G``)."""
    layer, lanes, groups = plan.layer, plan.lanes, plan.groups
    weights = np.asarray(layer.weights)
    words = []
    for row in range(layer.in_features):
        for group in range(plan.stride):
            words.append([int(weights[lane * groups + group, row])
                          if lane * groups + group < layer.out_features and group < groups else 0
                          for lane in range(lanes)])
    return words


def load_member(plan):
    """``{"load": In(LOAD_SIGNATURE)}`` for a plan whose weights are in SPRAM, else ``{}``: the member a core adds
    to take its weight image (and passes to its :class:`SpikeAccumulator`)."""
    return {"load": In(LOAD_SIGNATURE)} if plan.weights == "spram" else {}


def kind_of_plan(plan):
    from .kinds import get
    return get(plan.kind)


def dense_step_cycles(events, plan):
    """Cycles of one step of a dense or readout core (ideal environment): ``E * G + 1 + M`` (+1 for a LIF layer's
    marker). ``events`` may be a NumPy array of spike counts; the result has the same shape."""
    return events * plan.groups + 1 + plan.out_features + (0 if plan.kind == "readout" else 1)


def back_end_timeline(plan, markers, inputs, *, after_sweep, cost=None):
    """The timeline of a core fed by a step buffer (dense, readout, spike convolution), vectorized over samples.

    With ``W(t)`` the cycle the step's input marker was written, the buffer starts the step at
    ``f = max(W(t) + BUFFER_DELAY, X(t-1) + 1)`` (:data:`hw.stepbuffer.BUFFER_DELAY`); for each word holding
    spikes ``s_1 < ... < s_c``, in order, it fetches the word at ``f`` and the core takes them at
    ``a_1 = max(f + 1, ready)``, ``a_{k+1} = a_k + cost(s_k)`` (``ready`` the core's next free cycle, then
    ``a_c + cost(s_c)``), and the next fetch is at ``a_c + 1``. The core takes the marker at ``X = max(f, ready)``
    and sweeps its ``M`` neurons in ``X+1 .. X+M``; it takes input again ``after_sweep`` cycles after ``X + M``.

    Parameters
    ----------
    plan : layer plan with ``buffer`` and ``neurons``
    markers : ndarray (N, T)
    inputs : ndarray (N, T, n) bool
    after_sweep : int
    cost : ndarray (n,) int, optional
        Cycles the core spends on a spike of each input neuron; ``plan.groups`` for every one by default.

    Returns
    -------
    (take, work)
        ``take`` (N, T): the cycle the core takes each step's marker; ``work`` (N,): the cycles it spends on the
        input spikes of all steps.
    """
    buf = plan.buffer
    n, steps = markers.shape
    spikes = np.asarray(inputs, dtype=bool)
    width = buf.rows * buf.row
    padded = np.zeros((n, steps, width), dtype=np.int64)
    padded[..., :spikes.shape[-1]] = spikes
    per = np.zeros(width, dtype=np.int64)
    per[:spikes.shape[-1]] = plan.groups if cost is None else cost
    spent = (padded * per).reshape(n, steps, buf.rows, buf.row)
    totals = spent.sum(axis=3)
    # the cost of each word's last spike: the highest position with a spike
    words = padded.reshape(n, steps, buf.rows, buf.row)
    highest = buf.row - 1 - np.argmax(words[..., ::-1], axis=3)
    final = np.take_along_axis(spent, highest[..., None], axis=3)[..., 0]
    m_out = plan.neurons
    free = np.zeros(n, dtype=np.int64)          # first cycle the core takes an input
    reader = np.zeros(n, dtype=np.int64)        # first cycle the buffer may start a step
    take = np.zeros((n, steps), dtype=np.int64)
    for t in range(steps):
        fetch = np.maximum(markers[:, t] + BUFFER_DELAY, reader)
        ready = free
        for k in range(buf.rows):
            first = np.maximum(fetch + 1, ready)
            last = first + totals[:, t, k] - final[:, t, k]
            spiking = totals[:, t, k] > 0
            ready = np.where(spiking, last + final[:, t, k], ready)
            fetch = np.where(spiking, last + 1, fetch)
        take[:, t] = np.maximum(fetch, ready)
        reader = take[:, t] + 1
        free = take[:, t] + m_out + after_sweep
    return take, totals.sum(axis=(1, 2))


def busy_cycles(plan, inputs):
    """The sum of a dense or readout core's step times (:func:`dense_step_cycles`) over a sample's steps."""
    events = np.asarray(inputs, dtype=bool).sum(axis=(1, 2))
    return dense_step_cycles(events, plan) + (plan.time_steps - 1) * dense_step_cycles(0, plan)


def timeline(plan, markers, inputs, outputs):
    """The core's part of the cycle model (:func:`hw.cycles.cycles`): :func:`back_end_timeline`; a LIF core writes
    its output marker at ``X + M + 1`` and takes input again from ``X + M + 2``.

    Returns
    -------
    dict
        ``markers`` (N, T): the cycle each output marker is transferred; ``busy`` (N,); ``finish`` (N,): the cycle
        after its last step.
    """
    take, _ = back_end_timeline(plan, markers, inputs, after_sweep=2)
    busy = busy_cycles(plan, inputs)
    out = take + plan.out_features + 1
    return {"markers": out, "busy": busy, "finish": out[:, -1] + 1}


class SpikeAccumulator(wiring.Component):
    """The zero-skipping front end shared by :class:`DenseLayer` and :class:`hw.readout.Readout`.

    Takes spike events; per event ``n`` adds row ``n`` of the weights into the accumulators, ``lanes`` per cycle.
    When it takes an end-of-step marker it raises ``done`` and takes nothing more until ``resume``; meanwhile the
    owner sweeps the neurons in order: ``current`` shows the current of neuron ``sel``, and ``clear`` moves on to the
    next neuron and resets this one to its bias. The owner must step ``sel`` through ``0, 1, ..., M - 1`` with one
    ``clear`` each before ``resume``.

    With ``plan.accumulators == "registers"`` the accumulators are a chain, not an addressed register file: the
    ``G`` banks of ``lanes`` accumulators rotate past the adders while a row is added, and the sweep shifts the chain
    by one neuron per ``clear``, so ``current`` is always the first accumulator and no read multiplexer is needed.

    With ``"ram"`` they are a memory of ``G`` words of ``lanes`` accumulators (block RAM), word ``g`` holding
    neuron ``l * G + g`` of every lane ``l``. A weight word of group ``g`` is read with accumulator word ``g`` and
    their lane-wise sum written back in the next cycle; with ``G = 1`` the read port is transparent for the write
    port, so that consecutive events, which read the word being written, see the sum: one word per cycle, as the
    chain; with ``G >= 2`` no read meets the write of its word and the memory is a :class:`hw.exclusive.
    ExclusiveMemory`.
    The sweep reads the word of neuron ``sel`` one cycle ahead (word 0 in the cycle the marker is taken), so
    ``current`` is valid in the cycle ``sel`` is swept, and resets a whole word to its biases when its last neuron
    below ``M`` is swept (``sel + G >= M``): no lane write enables, which the ECP5 and Gowin block RAMs lack for
    such widths. The cycle counts are those of the chain. The memory starts with the biases from the bitstream.

    Parameters
    ----------
    plan : hw.kinds.dense.DensePlan
        The layer, its lanes (accumulations per cycle), groups and weight-ROM row stride.

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
    load : In(hw.weights.LOAD_SIGNATURE)
        Only when the plan puts the weights in SPRAM (``plan.weights == "spram"``): their image, loaded before
        the first event (:class:`hw.weights.WeightMemory`).
    """

    def __init__(self, plan):
        if not isinstance(plan, DensePlan):
            raise TypeError(f"SpikeAccumulator needs a hw.kinds.dense.DensePlan, not {plan!r}")
        self._plan = plan
        layer = plan.layer
        super().__init__({
            "i": In(stream.Signature(spike_event(bits_for_count(layer.in_features)))),
            "done": Out(1),
            "resume": In(1),
            "sel": In(range(layer.out_features)),
            "current": Out(signed(layer.acc_bits)),
            "clear": In(1),
        } | load_member(plan))

    @property
    def groups(self):
        return self._plan.groups

    def elaborate(self, platform):
        m = Module()
        p = self._plan
        layer, lanes, groups = p.layer, p.lanes, p.groups
        stride = p.stride
        rom = p.weight_memory
        m.submodules.rom = weights = WeightMemory(shape=data.ArrayLayout(signed(8), lanes), depth=rom.depth,
                                                  init=kind_of_plan(p).rom_words(p, rom.name), place=rom.kind)
        if "load" in self.signature.members:
            wiring.connect(m, wiring.flipped(self.load), weights.load)
        rd = weights.read

        # -- issue: one ROM word per cycle, G per event ----------------------------------------------------------
        busy = Signal()
        group = Signal(range(groups))
        row = Signal(range(layer.in_features))
        pending = Signal()
        issuing = Signal()                  # a weight word is read in this cycle ...
        issued = Signal(range(groups))      # ... the one of this group
        m.d.comb += self.i.ready.eq(~self.done & ~busy)
        take = self.i.valid & self.i.ready
        m.d.sync += pending.eq(0)
        ram = p.accumulators == "ram"
        with m.If(busy):
            m.d.comb += rd.addr.eq(row * stride + group)
            if ram:
                m.d.comb += [issuing.eq(1), issued.eq(group)]
            m.d.sync += [pending.eq(1), group.eq(group + 1)]
            with m.If(group == groups - 1):
                m.d.sync += busy.eq(0)
        with m.Elif(take & ~self.i.payload.end):
            m.d.comb += rd.addr.eq(self.i.payload.index * stride)
            if ram:
                m.d.comb += issuing.eq(1)
            m.d.sync += pending.eq(1)
            if groups > 1:
                m.d.sync += [busy.eq(1), group.eq(1), row.eq(self.i.payload.index)]
        with m.If(take & self.i.payload.end):
            m.d.sync += self.done.eq(1)
        with m.If(self.resume):
            m.d.sync += self.done.eq(0)

        if ram:
            self._ram(m, rd, issuing, issued, pending, take & self.i.payload.end)
        else:
            self._chain(m, rd, pending)
        return m

    def _chain(self, m, rd, pending):
        p = self._plan
        layer, lanes, groups = p.layer, p.lanes, p.groups
        n_out = layer.out_features
        bias = [int(b) for b in layer.bias]
        acc = [Signal(signed(layer.acc_bits), init=bias[k] if k < n_out else 0, name=f"acc{k}")
               for k in range(groups * lanes)]

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

    def _ram(self, m, rd, issuing, issued, pending, start):
        # -- accumulate and sweep: the accumulators in a memory of G words, word g holding neuron l * G + g of
        # every lane l (the grouping of the weight words). A weight word of group g is read together with
        # accumulator word g; in the next cycle (``pending``) their lane-wise sum is written back. With G = 1 the
        # read port is transparent for the write port, so that back-to-back events, which read the word written in
        # the same cycle, get the new value: one word per cycle, as the chain. With G >= 2 the word read is never
        # the one written (an event's groups come in turn, the sweep reads the word after the one it resets), so
        # the memory is exclusive (hw.exclusive: no bypass in synthesis). The sweep visits neuron n = l * G + g in
        # order, reading word g one cycle ahead (word 0 in the cycle the marker is taken); a word is reset to its
        # biases (whole, so that no lane write enables are needed) when its last neuron below M is swept, after
        # which the sweep reads it no more.
        p = self._plan
        layer, lanes, groups = p.layer, p.lanes, p.groups
        n_out, bits = layer.out_features, layer.acc_bits
        bias = [int(b) for b in layer.bias]
        words = [[bias[lane * groups + g] if lane * groups + g < n_out else 0 for lane in range(lanes)]
                 for g in range(groups)]
        shape = data.ArrayLayout(signed(bits), lanes)
        if groups >= 2:
            m.submodules.accumulators = memory = ExclusiveMemory(shape=shape, depth=groups, init=words)
            wr = memory.write_port()
            acc = memory.read_port()
        else:
            m.submodules.accumulators = memory = Memory(shape=shape, depth=groups, init=words)
            wr = memory.write_port()
            acc = memory.read_port(transparent_for=(wr,))
        pending_group = Signal(range(max(2, groups)))
        m.d.sync += pending_group.eq(issued)
        word = Signal(range(max(2, groups)))    # the swept neuron's word and lane
        lane = Signal(range(max(2, lanes)))
        following = Mux(word == groups - 1, 0, word + 1)

        with m.If(issuing):
            m.d.comb += acc.addr.eq(issued)
        with m.Elif(self.done & self.clear):
            m.d.comb += acc.addr.eq(following)
        with m.Elif(self.done):
            m.d.comb += acc.addr.eq(word)

        with m.If(pending):
            m.d.comb += [wr.addr.eq(pending_group), wr.en.eq(1)]
            m.d.comb += [wr.data[k].eq(acc.data[k] + rd.data[k]) for k in range(lanes)]
        with m.Elif(self.clear & (self.sel >= n_out - groups)):
            m.d.comb += [wr.addr.eq(word), wr.en.eq(1)]
            for k in range(lanes):
                column = [words[g][k] for g in range(groups)]
                reset = Array(Const(b, signed(bits)) for b in column)[word] if groups > 1 else column[0]
                m.d.comb += wr.data[k].eq(reset)

        with m.If(start):
            m.d.sync += [word.eq(0), lane.eq(0)]
        with m.Elif(self.clear):
            m.d.sync += word.eq(following)
            with m.If(word == groups - 1):
                m.d.sync += lane.eq(lane + 1)
        m.d.comb += self.current.eq(acc.data[lane])


class DenseLayer(wiring.Component):
    """A dense layer of LIF neurons driven by spike events (zero-skipping).

    Parameters
    ----------
    plan : hw.kinds.dense.DensePlan
        The plan of a dense layer with LIF neurons (``kind == "dense"``): the layer, its lanes and groups, and
        ``T`` (the membranes are cleared after every ``T`` steps, one sample).

    Members
    -------
    i : In(stream.Signature(spike_event(bits_for_count(in_features))))
        Input spike events, each step closed by one marker.
    o : Out(stream.Signature(spike_event(bits_for_count(out_features))))
        Output spike events in ascending neuron order, each step closed by one marker.
    load : In(hw.weights.LOAD_SIGNATURE)
        Only with the weights in SPRAM: their image (see :class:`SpikeAccumulator`).

    Raises
    ------
    TypeError
        If ``plan`` is not the plan of a dense LIF layer.
    """

    def __init__(self, plan):
        if not isinstance(plan, DensePlan) or plan.kind != "dense":
            raise TypeError(f"DenseLayer needs the hw.kinds.dense.DensePlan of a dense LIF layer, not {plan!r}")
        self._plan = plan
        layer = plan.layer
        super().__init__({
            "i": In(stream.Signature(spike_event(bits_for_count(layer.in_features)))),
            "o": Out(stream.Signature(spike_event(bits_for_count(layer.out_features)))),
        } | load_member(plan))

    @property
    def plan(self):
        return self._plan

    def elaborate(self, platform):
        m = Module()
        layer = self._plan.layer
        steps = self._plan.time_steps
        n_out = layer.out_features
        neuron = layer.neuron

        m.submodules.acc = acc = SpikeAccumulator(self._plan)
        wiring.connect(m, wiring.flipped(self.i), acc.i)
        if "load" in self.signature.members:
            wiring.connect(m, wiring.flipped(self.load), acc.load)

        # The membranes live in a memory (one block RAM), read two neurons ahead of the sweep: the part of the
        # update that depends on the old membrane (membrane_base) is registered for the swept neuron, so only one
        # addition with its current lies in front of the spike, and the spike of the sweep's neuron decides whether
        # the sweep moves on (which drives the enables of every accumulator).
        bits = neuron.mem_bits
        # The sweep writes neuron n while it reads n + 2 or n + 1 (mod M): one word in one cycle only where M <= 2.
        membranes = (ExclusiveMemory if n_out > 2 else Memory)(shape=signed(bits), depth=n_out, init=[])
        m.submodules.membranes = membranes
        v_rd = membranes.read_port()
        v_wr = membranes.write_port()
        n = Signal(range(n_out))
        step = Signal(range(steps))
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
            v_wr.data.eq(Mux(step == steps - 1, 0, v_next)),
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
                m.d.sync += [marker.eq(0), step.eq(Mux(step == steps - 1, 0, step + 1))]
        return m
