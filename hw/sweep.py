"""The state of a layer whose currents and membranes live in memories, and the sweep of its LIF neurons.

:class:`LIFSweep` is the half shared by the cores that accumulate into a memory of currents (the spike convolution
:class:`hw.spikeconv.SpikeConvLayer`, the dense first layer :class:`hw.mapdense.MapDenseLayer`): the owner visits
words of ``lanes`` currents (read in the visit's cycle, the sum written back in the next one, with the owner's
addends), then starts a sweep, which updates every neuron once per step through the LIF arithmetic of
:class:`hw.dense.DenseLayer` (:func:`hw.lif.membrane_base`, :func:`hw.lif.saturate`) and emits its spikes in
ascending order, each step closed by a marker.

Layout: ``channels x positions`` neurons (flat index ``o * positions + p``); the currents are ``G * positions`` words
of ``lanes`` currents (``G = ceil(channels / lanes)``), word ``g * positions + p`` holding channels
``g * lanes ... g * lanes + lanes - 1`` at position ``p``; one membrane per neuron. The current memory's read port is
transparent for its write port, so that a visit reading the word written in the same cycle gets the new value.

Timing: ``start`` in cycle ``X`` (the owner's last visit may be in that cycle too); a sweep reads neuron ``n`` in
``S + n``, registers the part of its update that depends on the old membrane (:func:`hw.lif.membrane_base`) and its
current in ``S + n + 1``, and updates it in ``S + n + 2``, offering its spike on ``o``; the marker follows in
``S + M + 2`` (:data:`SWEEP_LATENCY`, :func:`sweep_cycles`). The first sweep starts at ``S = X + 1``, each of the
``repeat`` sweeps after the cycle of the previous marker's transfer; ``active`` is high from ``X + 1`` to the last
marker's transfer. An output not ready holds the whole sweep (spike or not: no spike decides an enable).

Where the membranes live (``state``): ``"bram"``, a memory with a read and a write port (above), or ``"spram"``, the
device's single-port RAM (:class:`hw.spram.SPRAMArray`), which reads or writes once a cycle. Then a sweep takes two
cycles per neuron: neuron ``n`` is read in ``S + 2n`` (its current word too), its membrane and current are
registered in ``S + 2n + 1`` and it is updated in ``S + 2n + 3``, where its spike is offered and its membrane
written back (the cycles in between read the next neuron); the marker follows in ``S + 2M + 2``. The SPRAM is not
initialized at power-up and its membranes are never cleared: the first step of a sample takes every membrane as 0
instead of the word it reads, so no contents written before the sample (or at power-up) matter.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .exclusive import ExclusiveMemory
from .kinds.memory import STATE_PLACES
from .layouts import bits_for_count, spike_event
from .lif import membrane_base, saturate
from .spram import SPRAMArray

__all__ = ["LIFSweep", "state_memory", "sweep_cycles", "SWEEP_LATENCY", "STATE_PLACES"]


def state_memory(shape, depth, init):
    """A memory of neuron state in block RAM (the currents, and the membranes unless they are in SPRAM:
    :class:`hw.spram.SPRAMArray`) with the given initial contents."""
    return Memory(shape=shape, depth=depth, init=init)


#: Cycles from a neuron's read to the cycle its spike is offered (two register stages) with the membranes in block
#: RAM; one more in SPRAM.
SWEEP_LATENCY = 2

#: Cycles a sweep spends per neuron, by where the membranes live.
_CYCLES_PER_NEURON = {"bram": 1, "spram": 2}


def sweep_cycles(neurons, state="bram"):
    """Cycles of one sweep from its first read to its marker's transfer (always-ready output):
    ``M + SWEEP_LATENCY + 1`` with the membranes in block RAM, ``2M + SWEEP_LATENCY + 1`` in SPRAM."""
    return _CYCLES_PER_NEURON[state] * neurons + SWEEP_LATENCY + 1


class LIFSweep(wiring.Component):
    """Currents and membranes in memories; visits by the owner, then LIF sweeps (see the module docstring).

    Parameters
    ----------
    neuron : golden.manifest.LIF
    acc_bits : int
        Width of a current.
    bias : sequence of int
        One per channel: the current each neuron starts from.
    positions : int
        Neurons per channel.
    lanes : int
        Currents per word.
    time_steps : int
        Steps per sample: the membranes are cleared at the last one.
    repeat : int
        Sweeps (steps) per ``start``: 1 when every step has its own input, ``time_steps`` when the current is the
        same at every step.
    reset_every_step : bool
        Reset each current to its bias when its neuron is swept (a current per step); otherwise only at the last
        step (a current per sample).
    state : str
        Where the membranes live: ``"bram"`` or ``"spram"`` (see the module docstring).

    Members
    -------
    visit : In(1)
        Read current word ``word`` in this cycle; in the next cycle it is written back plus ``addend``.
    word : In(range(G * positions))
    addend : In(data.ArrayLayout(signed(acc_bits), lanes))
        The addends of the visit of the previous cycle, one per lane.
    start : In(1)
        Start the sweeps in the next cycle (only while ``active`` is low).
    active : Out(1)
        Sweeping, from the cycle after ``start`` to the last marker's transfer.
    o : Out(stream.Signature(spike_event(bits_for_count(channels * positions))))
        Spikes in ascending flat order, each sweep closed by a marker.
    """

    def __init__(self, *, neuron, acc_bits, bias, positions, lanes, time_steps, repeat, reset_every_step,
                 state="bram"):
        if state not in STATE_PLACES:
            raise ValueError(f"state must be 'bram' or 'spram', not {state!r}")
        self._state = state
        self._neuron = neuron
        self._acc_bits = int(acc_bits)
        self._bias = [int(b) for b in bias]
        self._positions = int(positions)
        self._lanes = int(lanes)
        self._steps = int(time_steps)
        self._repeat = int(repeat)
        self._reset_every_step = bool(reset_every_step)
        self._groups = -(-len(self._bias) // self._lanes)
        super().__init__({
            "visit": In(1),
            "word": In(range(max(2, self._groups * self._positions))),
            "addend": In(data.ArrayLayout(signed(self._acc_bits), self._lanes)),
            "start": In(1),
            "active": Out(1),
            "o": Out(stream.Signature(spike_event(bits_for_count(len(self._bias) * self._positions)))),
        })

    def elaborate(self, platform):
        m = Module()
        neuron, acc_bits, bits = self._neuron, self._acc_bits, self._neuron.mem_bits
        bias, positions, lanes, steps = self._bias, self._positions, self._lanes, self._steps
        channels, groups = len(bias), self._groups
        n_out = channels * positions
        spram = self._state == "spram"

        m.submodules.currents = currents = state_memory(
            data.ArrayLayout(signed(acc_bits), lanes), groups * positions,
            [[bias[g * lanes + l] if g * lanes + l < channels else 0 for l in range(lanes)]
             for g in range(groups) for _ in range(positions)])
        c_wr = currents.write_port(granularity=1)
        c_rd = currents.read_port(transparent_for=(c_wr,))
        if spram:
            m.submodules.membranes = membranes = SPRAMArray(width=bits, depth=n_out, power_up_seed=n_out)
            v_data = membranes.data_out.as_signed()
        else:
            # written at stage 2 while stage 0 reads two neurons on: one word in one cycle only where n_out <= 2
            make = ExclusiveMemory if n_out > 2 else state_memory
            m.submodules.membranes = membranes = make(shape=signed(bits), depth=n_out, init=[])
            v_wr = membranes.write_port()
            v_rd = membranes.read_port()
            v_data = v_rd.data

        # -- visits ---------------------------------------------------------------------------------------------
        pending = Signal()
        pending_word = Signal.like(self.word)
        m.d.sync += [pending.eq(self.visit), pending_word.eq(self.word)]

        # -- sweep: three stages, all moving together (``go``) -----------------------------------------------------
        # stage 0: neuron ``r``'s current word and membrane are read; stage 1 (``s1_*``): they are on the read
        # ports; stage 2 (``s2_*``): ``membrane_base`` of the membrane and the neuron's current are registers, the
        # update (one addition), the spike and the write-back happen here. The stages move whenever stage 2 is
        # empty or the output is ready, spike or not, so that no spike decides an enable (the critical path of a
        # read-modify-write sweep). With the membranes in SPRAM, stage 0 is a cycle of its own (``phase`` 0, the
        # read) and stage 1 the next (``phase`` 1, the write-back of stage 2), where the stages move.
        reading = Signal()
        r = Signal(range(max(2, n_out)))
        r_pos = Signal(range(max(2, positions)))
        r_channel = Signal(range(max(2, channels)))
        r_lane = Signal(range(max(2, lanes)))
        r_base = Signal.like(self.word)
        s1_full, s2_full = Signal(), Signal()
        s1_n, s2_n = Signal.like(r), Signal.like(r)
        s1_lane = Signal.like(r_lane)
        s1_channel, s2_channel = Signal.like(r_channel), Signal.like(r_channel)
        s1_word, s2_word = Signal.like(self.word), Signal.like(self.word)
        s2_lane = Signal.like(r_lane)
        base = Signal(signed(bits + 1))
        current = Signal(signed(acc_bits))
        marker = Signal()
        step = Signal(range(max(2, steps)))
        sweeps = Signal(range(max(2, self._repeat)))
        phase = Signal()

        total = Signal(signed(max(bits + 1, acc_bits) + 1))
        spike = Signal()
        m.d.comb += [total.eq(base + current), spike.eq(total > neuron.threshold)]
        go = Signal()
        m.d.comb += go.eq(~s2_full | self.o.ready)
        sweeping = self.active & ~marker
        last_step = step == steps - 1
        move = go & phase if spram else go

        with m.If(sweeping):
            m.d.comb += c_rd.addr.eq(r_base + r_pos)
            if spram:
                m.d.comb += c_rd.en.eq(~phase)
                with m.If(~phase):
                    m.d.sync += phase.eq(1)
                    m.d.comb += [membranes.addr.eq(r), membranes.en.eq(reading)]
                with m.Elif(go):
                    m.d.sync += phase.eq(0)
            else:
                m.d.comb += [c_rd.en.eq(go), v_rd.addr.eq(r), v_rd.en.eq(go)]
        with m.Else():
            m.d.comb += c_rd.addr.eq(self.word)

        restart = Signal()
        with m.If((self.start & ~self.active) | restart):
            m.d.sync += [self.active.eq(1), reading.eq(1), r.eq(0), r_pos.eq(0), r_channel.eq(0), r_lane.eq(0),
                         r_base.eq(0)]
            if spram:
                m.d.sync += phase.eq(0)
        with m.If(sweeping & move):
            if spram:
                # the neuron read in the previous cycle goes straight to stage 2; a sample's first step takes its
                # membrane as 0 (the SPRAM holds whatever was there before)
                m.d.sync += [s2_full.eq(reading), s2_n.eq(r), s2_lane.eq(r_lane), s2_channel.eq(r_channel),
                             s2_word.eq(r_base + r_pos),
                             base.eq(membrane_base(neuron, Mux(step == 0, 0, v_data))),
                             current.eq(c_rd.data[r_lane])]
            else:
                m.d.sync += [s1_full.eq(reading), s1_n.eq(r), s1_lane.eq(r_lane), s1_channel.eq(r_channel),
                             s1_word.eq(r_base + r_pos),
                             s2_full.eq(s1_full), s2_n.eq(s1_n), s2_lane.eq(s1_lane), s2_channel.eq(s1_channel),
                             s2_word.eq(s1_word), base.eq(membrane_base(neuron, v_data)),
                             current.eq(c_rd.data[s1_lane])]
            with m.If(reading):
                m.d.sync += r.eq(r + 1)
                with m.If(r == n_out - 1):
                    m.d.sync += reading.eq(0)
                with m.If(r_pos == positions - 1):
                    m.d.sync += [r_pos.eq(0), r_channel.eq(r_channel + 1)]
                    with m.If(r_lane == lanes - 1):
                        m.d.sync += [r_lane.eq(0), r_base.eq(r_base + positions)]
                    with m.Else():
                        m.d.sync += r_lane.eq(r_lane + 1)
                with m.Else():
                    m.d.sync += r_pos.eq(r_pos + 1)
            with m.If(s2_full & (s2_n == n_out - 1)):
                m.d.sync += marker.eq(1)

        # the write ports: a visit's sum, or the sweep's membrane and (where it is due) the reset of the current
        bias_rom = Array(Const(b, signed(acc_bits)) for b in bias)
        update = sweeping & s2_full & move
        reset = update if self._reset_every_step else update & last_step
        with m.If(reset):
            m.d.comb += [c_wr.addr.eq(s2_word), c_wr.en.eq(1 << s2_lane)]
            for l in range(lanes):
                m.d.comb += c_wr.data[l].eq(bias_rom[s2_channel])
        with m.Elif(pending):
            m.d.comb += [c_wr.addr.eq(pending_word), c_wr.en.eq((1 << lanes) - 1)]
            for l in range(lanes):
                m.d.comb += c_wr.data[l].eq(c_rd.data[l] + self.addend[l])
        if spram:
            with m.If(update):
                m.d.comb += [membranes.addr.eq(s2_n), membranes.data_in.eq(saturate(total, bits)),
                             membranes.we.eq(1), membranes.en.eq(1)]
        else:
            m.d.comb += [
                v_wr.addr.eq(s2_n),
                v_wr.data.eq(Mux(last_step, 0, saturate(total, bits))),
                v_wr.en.eq(update),
            ]

        # -- output: the swept neuron's spike, then the marker; the next sweep or the end ---------------------------
        with m.If(sweeping & s2_full & (phase if spram else Const(1))):
            m.d.comb += [self.o.valid.eq(spike), self.o.payload.index.eq(s2_n), self.o.payload.end.eq(0)]
        with m.If(marker):
            m.d.comb += [self.o.valid.eq(1), self.o.payload.index.eq(0), self.o.payload.end.eq(1)]
            with m.If(self.o.ready):
                m.d.sync += [marker.eq(0), s1_full.eq(0), s2_full.eq(0), step.eq(Mux(last_step, 0, step + 1))]
                if self._repeat > 1:
                    m.d.sync += sweeps.eq(Mux(sweeps == self._repeat - 1, 0, sweeps + 1))
                    m.d.comb += restart.eq(sweeps != self._repeat - 1)
                with m.If(~restart):
                    m.d.sync += self.active.eq(0)
        return m
