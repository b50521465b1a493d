"""A simulation harness in Amaranth around the generated network, so that no clock cycle needs Python.

:class:`Harness` wraps a ``hw.network.Network`` built with the debug stream and does in hardware what the cocotb
testbench of :mod:`sim.testbench` does in Python:

- it feeds a batch of input maps from a memory that the testbench loads once (:data:`LOAD_BYTES` bytes a clock
  cycle), samples back to back, with random gaps in the input's ``valid``;
- it drives random backpressure on the result stream ``o`` and on the debug stream ``events``; gaps and stalls come
  from an xorshift generator that is re-seeded at the start of every sample from the seed and the sample's index,
  so that one sample run alone (to record its waveform) sees the same pauses in the same cycles;
- it checks the stream rules of both outputs (``valid`` holds, the payload holds until the transfer);
- per sample and per LIF layer it keeps a *signature* of the spike events: their count, two 32-bit sums of
  two different hashes of ``(step, neuron)`` (independent of the order of the neurons inside a step, which parallel
  lanes may change) and a flag set when a step came before a step it follows;
- when the plan keeps weights in SPRAM (the network has a ``load`` port), it first streams the weight image
  (:func:`hw.weights.image`, held in a ROM of its own) into the network, a word a cycle, and admits no input before
  the network reports it ``full``: the SPRAM model starts at zero, so a design whose load fails cannot pass;
- after the result of a sample it waits until the debug queues are empty (so that every event is attributed to its
  sample), then writes the result and the signatures into a capture memory and admits the next sample.

The testbench (:mod:`sim.harness_tb`) loads a batch, pulses ``start``, waits for ``done`` and reads the capture
memory back, one word a sample; :func:`signatures` computes the same signatures from the golden model's events.
Every spike event of a batch is also written, in order of arrival, into a trace memory of :data:`TRACE_DEPTH`
entries: a mismatch is narrowed by running only the failing sample again, with a waveform, and reading its trace
back, which names the layer, step and neuron.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["Harness", "LOAD_BYTES", "signature_layout", "capture_layout", "signatures", "mix", "probability_code",
           "sample_seed"]

#: Bytes of input written per load cycle (the width of the load port is ``8 * LOAD_BYTES``).
LOAD_BYTES = 32
_LOAD_SHIFT = 5  # log2(LOAD_BYTES)
#: Spike events the trace memory keeps per batch.
TRACE_DEPTH = 1 << 16
#: Cycles the debug stream must stay empty after a result before the sample is captured.
QUIET_CYCLES = 4
#: Bits of the per-layer event count of a signature.
COUNT_BITS = 24
#: Odd constants of the two hashes (murmur3's and lowbias32's finalizers).
_MIX = ((16, 0x85EBCA6B, 13, 0xC2B2AE35, 16), (16, 0x7FEB352D, 15, 0x846CA68B, 16))
#: Multiplier that spreads sample indices over the seed space (the golden ratio in 32 bits).
_SEED_STEP = 0x9E3779B9
_M32 = 0xFFFFFFFF


def signature_layout() -> data.StructLayout:
    """Layout of one layer's event signature: ``count``, ``sum0``, ``sum1``, ``disorder``."""
    return data.StructLayout({"count": unsigned(COUNT_BITS), "sum0": unsigned(32), "sum1": unsigned(32),
                              "disorder": unsigned(1)})


def capture_layout(network) -> data.StructLayout:
    """Layout of one capture word: the sample's ``result``, a signature per debug layer, protocol error flags."""
    from hw.layouts import lif_layer_indices
    model = network.model
    layers = len(lif_layer_indices(model))
    return data.StructLayout({
        "result": network.o.payload.shape(),
        "layers": data.ArrayLayout(signature_layout(), max(1, layers)),
        "o_error": unsigned(1),
        "events_error": unsigned(1),
        "foreign_layer": unsigned(1),
        "results": unsigned(2),  # results seen in the sample (1 expected; saturates at 3)
    })


def mix(key, which: int):
    """Hash ``which`` (0 or 1) of 32-bit keys, on NumPy arrays (the reference side of :class:`Harness`)."""
    s1, m1, s2, m2, s3 = _MIX[which]
    x = (np.asarray(key, dtype=np.uint64) + 1) & _M32
    x ^= x >> s1
    x = (x * m1) & _M32
    x ^= x >> s2
    x = (x * m2) & _M32
    x ^= x >> s3
    return x


def _mix_hw(m, key, which: int, name: str):
    s1, m1, s2, m2, s3 = _MIX[which]
    x0 = Signal(32, name=f"{name}_x0")
    x1 = Signal(32, name=f"{name}_x1")
    x2 = Signal(32, name=f"{name}_x2")
    out = Signal(32, name=f"{name}_h")
    m.d.comb += [
        x0.eq(key + 1),
        x1.eq((x0 ^ (x0 >> s1)) * m1),
        x2.eq((x1 ^ (x1 >> s2)) * m2),
        out.eq(x2 ^ (x2 >> s3)),
    ]
    return out


def sample_seed(seed: int, index: int) -> int:
    """The generator state at the start of sample ``index`` of a run seeded with ``seed`` (never zero)."""
    value = (int(seed) ^ (int(index) * _SEED_STEP)) & _M32
    return value or 1


def probability_code(p: float) -> int:
    """The 8-bit threshold of a pause probability ``p`` in [0, 1): a cycle pauses when a random byte is below it."""
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"pause probability must be in [0, 1), not {p}")
    return min(255, int(round(p * 256)))


def signatures(expectation, neuron_bits: int) -> dict:
    """The expected signatures of an :class:`sim.checker.Expectation`: ``{layer: (count, sum0, sum1)}`` arrays of
    shape ``(N,)`` per debug layer index."""
    n = expectation.samples
    out = {}
    for layer in expectation.layers:
        events = expectation.events[layer]
        sample = events[:, 0].astype(np.int64)
        key = (events[:, 2].astype(np.uint64) | (events[:, 1].astype(np.uint64) << np.uint64(neuron_bits))) & _M32
        count = np.bincount(sample, minlength=n).astype(np.int64)
        sums = []
        for which in (0, 1):
            h = mix(key, which).astype(np.uint64)
            total = np.zeros(n, dtype=np.uint64)
            np.add.at(total, sample, h)
            sums.append((total & _M32).astype(np.int64))
        out[layer] = (count, sums[0], sums[1])
    return out


class Harness(wiring.Component):
    """Batch runner around a network with the debug stream (see the module docstring).

    Parameters
    ----------
    network : hw.network.Network
        Built with ``debug=True``.
    capacity : int
        Samples one batch may hold (the input and capture memories are sized for it).

    Members
    -------
    clk : In(1)
        The clock. The design has no reset: it starts from its initial values.
    load_en, load_addr, load_data : In
        Write ``load_data`` (:data:`LOAD_BYTES` bytes, the first byte in the low bits) to input word ``load_addr``.
        Sample ``k`` starts at word ``k * words_per_sample``.
    count : In
        Samples in the batch (at most ``capacity``).
    base : In(32)
        Index of the batch's first sample in the whole run (for the seeds of the pause generator).
    seed : In(32)
        Seed of the run.
    gap, stall_o, stall_events : In(8)
        Pause thresholds (:func:`probability_code`).
    start : In(1)
        Starts the batch (one cycle high, with the other inputs set).
    done : Out(1)
        The whole batch has been captured.
    captured : Out
        Samples captured so far in this batch.
    cycles : Out(32)
        Cycles since ``start``.
    read_addr : In; read_data : Out
        Capture word of sample ``read_addr`` (:func:`capture_layout`), one cycle after the address.
    traced : Out
        Spike events written into the trace memory in this batch (it keeps the first :data:`TRACE_DEPTH`).
    trace_addr : In; trace_data : Out
        Trace entry ``trace_addr`` (a debug event payload), one cycle after the address.
    """

    def __init__(self, network, *, capacity: int = 256):
        if not isinstance(capacity, int) or capacity < 1:
            network._MustUse__silence = True
            raise ValueError(f"capacity must be a positive integer, not {capacity!r}")
        if "events" not in network.signature.members:
            network._MustUse__silence = True
            raise ValueError("the harness needs a network built with debug=True (the events stream)")
        self._network = network
        self._capacity = capacity
        self._sample_bytes = int(np.prod(network.model.input_shape))
        self._words = -(-self._sample_bytes // LOAD_BYTES)
        self._capture = capture_layout(network)
        depth = capacity * self._words

        super().__init__({
            "clk": In(1),
            "load_en": In(1),
            "load_addr": In(range(depth)),
            "load_data": In(8 * LOAD_BYTES),
            "count": In(range(capacity + 1)),
            "base": In(32),
            "seed": In(32),
            "gap": In(8),
            "stall_o": In(8),
            "stall_events": In(8),
            "start": In(1),
            "done": Out(1),
            "captured": Out(range(capacity + 1)),
            "cycles": Out(32),
            "read_addr": In(range(capacity)),
            "read_data": Out(self._capture.size),
            "traced": Out(32),
            "trace_addr": In(range(TRACE_DEPTH)),
            "trace_data": Out(network.events.payload.shape().size),
        })

    @property
    def network(self):
        return self._network

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def words_per_sample(self) -> int:
        return self._words

    @property
    def sample_bytes(self) -> int:
        return self._sample_bytes

    @property
    def capture(self) -> data.StructLayout:
        return self._capture

    def elaborate(self, platform):
        m = Module()
        # A domain without reset: logic fed by a reset port would be re-evaluated by Verilator at every clock
        # edge; the registers start from their initial values instead.
        m.domains.sync = ClockDomain("sync", reset_less=True)
        m.d.comb += ClockSignal("sync").eq(self.clk)
        net = self._network
        m.submodules.net = net
        layers = _debug_layers(net.model)
        n_bytes, words, capacity = self._sample_bytes, self._words, self._capacity

        # -- memories ---------------------------------------------------------------------------------------------
        m.submodules.inputs = inputs = Memory(shape=8 * LOAD_BYTES, depth=capacity * words, init=[])
        load = inputs.write_port()
        fetch = inputs.read_port()
        m.d.comb += [load.en.eq(self.load_en), load.addr.eq(self.load_addr), load.data.eq(self.load_data)]
        m.submodules.captures = captures = Memory(shape=self._capture.size, depth=capacity, init=[])
        store = captures.write_port()
        readback = captures.read_port()
        m.d.comb += [readback.addr.eq(self.read_addr), self.read_data.eq(readback.data)]

        # -- settings, held in registers from ``start`` on (logic fed by top-level inputs would be re-evaluated by
        # Verilator at every clock edge) ------------------------------------------------------------------------
        count, base, seed = Signal.like(self.count), Signal(32), Signal(32)
        gap, stall_o, stall_events = Signal(8), Signal(8), Signal(8)
        go = Signal()  # ``start``, one cycle later, with the settings in their registers
        m.d.sync += go.eq(self.start)
        with m.If(self.start):
            m.d.sync += [count.eq(self.count), base.eq(self.base), seed.eq(self.seed), gap.eq(self.gap),
                         stall_o.eq(self.stall_o), stall_events.eq(self.stall_events)]

        # -- pause generator (xorshift32), re-seeded per sample -------------------------------------------------
        rng = Signal(32, init=1)
        step1 = rng ^ (rng << 13)[:32]
        step2 = step1 ^ (step1 >> 17)
        step3 = step2 ^ (step2 << 5)[:32]
        gap_now = rng[0:8] < gap
        m.d.comb += [
            net.o.ready.eq(~(rng[8:16] < stall_o)),
            net.events.ready.eq(~(rng[16:24] < stall_events)),
        ]

        # -- batch state --------------------------------------------------------------------------------------------
        running = Signal()
        sample = Signal(range(capacity + 1))
        byte = Signal(range(n_bytes + 1))
        word = Signal(range(capacity * words))  # input word of the current byte
        fresh = Signal()  # the read port holds the word of the current byte
        offered = Signal()  # valid was high and not taken in the last cycle
        results = Signal(2)
        m.d.comb += [self.done.eq(~running & ~go & ~self.start & (self.captured == count)),
                     self.captured.eq(sample)]
        with m.If(running):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        # -- weight image, streamed into the network's SPRAMs once, before any input -------------------------------
        loaded = Const(1)
        if "load" in net.signature.members:
            from hw.weights import image

            words_in = image(net.plan)
            m.submodules.weight_image = weight_image = Memory(shape=16, depth=len(words_in), init=words_in)
            image_port = weight_image.read_port()
            sent = Signal(range(len(words_in) + 1))
            pending = Signal()
            m.d.comb += [image_port.addr.eq(sent), net.load.words.valid.eq(pending),
                         net.load.words.payload.eq(image_port.data)]
            m.d.sync += pending.eq(sent != len(words_in))
            with m.If(sent != len(words_in)):
                m.d.sync += sent.eq(sent + 1)
            loaded = net.load.full

        feeding = running & fresh & (byte != n_bytes) & loaded
        m.d.comb += [
            net.i.valid.eq(offered | (feeding & ~gap_now)),
            net.i.payload.eq(fetch.data.word_select(byte[:_LOAD_SHIFT], 8)),
        ]
        taken = net.i.valid & net.i.ready
        m.d.sync += offered.eq(net.i.valid & ~net.i.ready)
        last_byte_of_word = byte[:_LOAD_SHIFT] == LOAD_BYTES - 1
        m.d.comb += fetch.addr.eq(Mux(taken & last_byte_of_word & (byte != n_bytes - 1), word + 1, word))
        with m.If(taken):
            m.d.sync += byte.eq(byte + 1)
            with m.If(last_byte_of_word & (byte != n_bytes - 1)):
                m.d.sync += word.eq(word + 1)

        # -- result and protocol checks ---------------------------------------------------------------------------
        result = Signal(net.o.payload.shape())
        with m.If(net.o.valid & net.o.ready):
            m.d.sync += [result.eq(net.o.payload), results.eq(Mux(results == 3, 3, results + 1))]
        o_error = Signal()
        events_error = Signal()
        for port, flag, name in ((net.o, o_error, "o"), (net.events, events_error, "events")):
            held = Signal.like(port.payload, name=f"{name}_held")
            waiting = Signal(name=f"{name}_waiting")
            m.d.sync += [waiting.eq(port.valid & ~port.ready), held.eq(port.payload)]
            with m.If(waiting & (~port.valid | (port.payload.as_value() != held.as_value()))):
                m.d.sync += flag.eq(1)

        # -- event signatures -----------------------------------------------------------------------------------------
        event = net.events.payload
        fire = net.events.valid & net.events.ready
        key = Signal(32)
        m.d.comb += key.eq(Cat(event.neuron, event.step))
        hashes = [_mix_hw(m, key, which, f"mix{which}") for which in (0, 1)]
        sig = [Signal(signature_layout(), name=f"signature{k}") for k in range(len(layers))]
        last_step = [Signal.like(event.step, name=f"last_step{k}") for k in range(len(layers))]
        m.submodules.trace = trace = Memory(shape=event.shape().size, depth=TRACE_DEPTH, init=[])
        trace_in = trace.write_port()
        trace_out = trace.read_port()
        m.d.comb += [trace_in.en.eq(fire & (self.traced < TRACE_DEPTH)), trace_in.addr.eq(self.traced),
                     trace_in.data.eq(event.as_value()), trace_out.addr.eq(self.trace_addr),
                     self.trace_data.eq(trace_out.data)]
        with m.If(go):
            m.d.sync += self.traced.eq(0)
        with m.Elif(fire):
            m.d.sync += self.traced.eq(self.traced + 1)
        foreign = Signal()
        known = Const(0, 1)
        for k, layer in enumerate(layers):
            hit = event.layer == layer
            known = known | hit
            with m.If(fire & hit):
                m.d.sync += [
                    sig[k].count.eq(sig[k].count + 1),
                    sig[k].sum0.eq(sig[k].sum0 + hashes[0]),
                    sig[k].sum1.eq(sig[k].sum1 + hashes[1]),
                    last_step[k].eq(event.step),
                ]
                with m.If(event.step < last_step[k]):
                    m.d.sync += sig[k].disorder.eq(1)
        with m.If(fire & ~known):
            m.d.sync += foreign.eq(1)

        # -- sample boundaries: capture after the result once the debug queues are empty -----------------------
        word_fields = Signal(self._capture)
        m.d.comb += [
            word_fields.result.eq(result),
            word_fields.o_error.eq(o_error),
            word_fields.events_error.eq(events_error),
            word_fields.foreign_layer.eq(foreign),
            word_fields.results.eq(results),
            store.addr.eq(sample),
            store.data.eq(word_fields.as_value()),
        ]
        for k in range(len(layers)):
            m.d.comb += word_fields.layers[k].eq(sig[k])
        quiet = Signal(range(QUIET_CYCLES + 1))
        with m.If(net.events.valid | (results == 0)):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != QUIET_CYCLES):
            m.d.sync += quiet.eq(quiet + 1)
        finished = running & (byte == n_bytes) & (quiet == QUIET_CYCLES)
        begin = Signal()  # reset the per-sample state and seed the generator for sample ``sample``
        index = Signal(32)
        seeded = Signal(32)
        m.d.comb += [index.eq(Mux(go, base, base + sample + 1)), seeded.eq(seed ^ (index * _SEED_STEP)[:32]),
                     begin.eq(go | finished)]
        with m.If(begin):
            m.d.sync += [rng.eq(Mux(seeded == 0, 1, seeded)), byte.eq(0), results.eq(0), o_error.eq(0), quiet.eq(0),
                         events_error.eq(0), foreign.eq(0), fresh.eq(0)]
            m.d.sync += [s.eq(0) for s in sig] + [s.eq(0) for s in last_step]
        with m.Else():
            m.d.sync += [rng.eq(step3), fresh.eq(running)]
        with m.If(go):
            m.d.sync += [running.eq(count != 0), sample.eq(0), word.eq(0), self.cycles.eq(0)]
        with m.Elif(finished):
            m.d.comb += store.en.eq(1)
            m.d.sync += [sample.eq(sample + 1), word.eq((sample + 1) * words)]
            with m.If(sample + 1 == count):
                m.d.sync += running.eq(0)
        return m


def _debug_layers(model) -> list:
    from hw.layouts import lif_layer_indices
    return list(lif_layer_indices(model))
