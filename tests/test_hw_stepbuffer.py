# amaranth: UnusedElaboratable=no
"""StepBuffer against a behavioural model of its contract, cycle by cycle (the way Amaranth checks its FIFOs against
``FIFOModel``), in both slot layouts, under random input gaps and backpressure; its reordering; its plan."""

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.device import get as get_device
from hw.kinds.buffer import MAX_ROW, step_buffer
from hw.layouts import pack_spike_event, unpack_spike_event
from hw.stepbuffer import BUFFER_DELAY, StepBuffer

from hw_streams import run_stream, simulator

DEVICE = get_device("iCE40UP5K")


def make(neurons, row, steps, listed=None):
    return StepBuffer(step_buffer("fc1.buffer", neurons, row, steps, DEVICE, listed=listed)[0])


class StepBufferModel:
    """What a step buffer must show in every cycle (its docstring's contract), as plain Python.

    Call :meth:`outputs` at the start of a cycle for ``(i.ready, o.valid, o.index, o.end)`` (``None`` payloads while
    not valid), then :meth:`tick` with that cycle's ``(i.valid, i.index, i.end, o.ready)``.

    - ``i.ready`` while fewer than ``time_steps`` markers have been taken and not passed on;
    - a step taken complete (its marker transferred at cycle ``c``) may start at ``c + BUFFER_DELAY``, and not
      before the cycle after the previous step's marker was passed on;
    - for each word holding spikes, ascending: one cycle fetches it (nothing offered), then its spikes ascending, one
      per transfer; then the marker.
    """

    def __init__(self, row, steps):
        self.row, self.steps = row, steps
        self.cycle = 0
        self.words = {}                     # the step being written: word -> spikes
        self.complete = []                  # (cycle its marker was taken, [sorted spikes per word])
        self.held = 0                       # markers taken and not passed on
        self.free = 0                       # first cycle the reader may start a step
        self.state = None                   # None, "fetch", "spike", "marker"

    def outputs(self):
        if self.state is None and self.complete and self.cycle >= max(self.complete[0][0] + BUFFER_DELAY, self.free):
            self.state, self.word, self.spike = ("fetch" if self.complete[0][1] else "marker"), 0, 0
        i_ready = self.held < self.steps
        if self.state == "spike":
            return i_ready, 1, self.complete[0][1][self.word][self.spike], 0
        if self.state == "marker":
            return i_ready, 1, 0, 1
        return i_ready, 0, None, None

    def tick(self, i_valid, i_index, i_end, o_ready):
        i_ready = self.held < self.steps
        if self.state == "fetch":
            self.state = "spike"
        elif self.state == "spike" and o_ready:
            words = self.complete[0][1]
            self.spike += 1
            if self.spike == len(words[self.word]):
                self.word, self.spike = self.word + 1, 0
                self.state = "fetch" if self.word < len(words) else "marker"
        elif self.state == "marker" and o_ready:
            self.complete.pop(0)
            self.state, self.free, self.held = None, self.cycle + 1, self.held - 1
        if i_valid and i_ready:
            if i_end:
                self.complete.append((self.cycle, [sorted(self.words[w]) for w in sorted(self.words)]))
                self.words = {}
                self.held += 1
            else:
                self.words.setdefault(i_index // self.row, []).append(i_index)
        self.cycle += 1


def _bursty_step_events(rng, neurons, row, steps, samples):
    """Input events of ``samples`` samples: dense, sparse, empty and full steps; rows ascending, any order inside a
    word (the producer's contract)."""
    sent = []
    for _ in range(samples * steps):
        rate = rng.choice([0.3, 0.05, 0.0, 1.0], p=[0.6, 0.2, 0.1, 0.1])
        spikes = np.flatnonzero(rng.random(neurons) < rate)
        for word in range(-(-neurons // row)):
            inside = [int(k) for k in spikes if word * row <= k < (word + 1) * row]
            rng.shuffle(inside)
            sent += [(k, 0) for k in inside]
        sent.append((0, 1))
    return sent


def check_against_model(dut, sent, *, rng, p_ready, p_gap, cycles, index_from_coordinates=False):
    """Drive ``dut`` and the model in lockstep; return the first difference (or None) and the cycles it was full.
    With ``index_from_coordinates`` the buffer gets an event's row and place beside it and 0 as its index."""
    model = StepBufferModel(dut.plan.row, dut.plan.time_steps)
    result = {"difference": None, "full": 0, "markers": 0}

    async def bench(ctx):
        pos, offering = 0, False
        for cycle in range(cycles):
            o_ready = int(rng.random() < p_ready)
            offering = offering or (pos < len(sent) and not rng.random() < p_gap)
            index, end = sent[pos] if offering else (0, 0)
            ctx.set(dut.o.ready, o_ready)
            ctx.set(dut.i.valid, int(offering))
            ctx.set(dut.i.payload.index, 0 if index_from_coordinates else index)
            ctx.set(dut.i.payload.end, end)
            if dut.plan.coordinates:  # the producer's row and place beside the event, as an OR-pool gives them
                ctx.set(dut.in_row, index // dut.plan.in_width)
                ctx.set(dut.in_col, index % dut.plan.in_width)
            o_valid = ctx.get(dut.o.valid)
            got = (ctx.get(dut.i.ready), o_valid) + ((ctx.get(dut.o.payload.index), ctx.get(dut.o.payload.end))
                                                     if o_valid else (None, None))
            want = model.outputs()
            if got != want and result["difference"] is None:
                result["difference"] = f"cycle {cycle}: got {got}, the model {want}"
            result["full"] += not got[0]
            result["markers"] += bool(o_valid and o_ready and got[3])
            model.tick(offering, index, end, o_ready)
            if offering and got[0]:
                pos, offering = pos + 1, False
            await ctx.tick()

    sim = simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return result


LAYOUT_CASES = [(384, 12, 4), (28, 16, 4), (40, 8, 3), (100, 16, 4), (128, 8, 4), (17, 16, 2), (31, 1, 2), (70, 10, 3), (9, 4, 1),
                (202, 101, 2)]


@pytest.mark.parametrize("neurons,row,steps", LAYOUT_CASES)
@pytest.mark.parametrize("p_ready,p_gap", [(1.0, 0.0), (0.6, 0.3), (0.3, 0.0)])
def test_equivalent_to_the_model(neurons, row, steps, p_ready, p_gap):
    rng = np.random.default_rng(neurons * 7 + steps)
    sent = _bursty_step_events(rng, neurons, row, steps, 3)
    cycles = int(len(sent) * 1.5 / p_ready) + 300
    for listed in (False, True):
        result = check_against_model(make(neurons, row, steps, listed), sent, rng=rng, p_ready=p_ready, p_gap=p_gap,
                                     cycles=cycles)
        assert result["difference"] is None, f"listed={listed}, {result['difference']}"
        assert result["markers"] == 3 * steps, f"listed={listed}: {result['markers']} of {3 * steps} steps"
        if p_ready < 0.5 and steps < 3:
            assert result["full"], "the buffer never filled up: the ready path went untested"


@pytest.mark.parametrize("neurons,width,per_word,steps", [(96, 6, 2, 3), (60, 5, 3, 2), (64, 4, 4, 2), (48, 8, 1, 2),
                                                          (42, 7, 2, 4)])
def test_words_from_the_producers_coordinates(neurons, width, per_word, steps):
    """Behind a producer that gives each event's row and place (an OR-pool), a word of one or several of its rows
    is formed from them, not from the index: the same contract as the index, in both layouts (the index is set to
    0 with an event's coordinates, so that a word formed from it would differ)."""
    rng = np.random.default_rng(neurons + per_word)
    sent = _bursty_step_events(rng, neurons, width * per_word, steps, 3)
    for listed in (False, True):
        plan = step_buffer("fc1.buffer", neurons, width * per_word, steps, DEVICE, listed=listed)[0]
        plan = dataclasses.replace(plan, coordinates=True, in_width=width)
        assert (plan.rows_per_word, plan.in_rows) == (per_word, neurons // width)
        result = check_against_model(StepBuffer(plan), sent, rng=rng, p_ready=0.6, p_gap=0.3,
                                     cycles=int(len(sent) * 2.5) + 300, index_from_coordinates=True)
        assert result["difference"] is None, f"listed={listed}, {result['difference']}"
        assert result["markers"] == 3 * steps


def test_the_model_is_the_documented_timeline():
    """The model on the docstring's example: marker taken at cycle 3, written at 4, counted at 5 (with the last
    flag); fetch of word 0 at 6, spike 1 at 7, fetch of word 1 at 8, spike 6 at 9, marker at 10."""
    model = StepBufferModel(4, 2)
    offered = []
    for cycle, (index, end) in enumerate([(1, 0), (6, 0), (None, None), (0, 1)] + [(None, None)] * 8):
        _, valid, o_index, o_end = model.outputs()
        if valid:
            offered.append((cycle, o_index, o_end))
        model.tick(index is not None, index, end, 1)
    assert offered == [(7, 1, 0), (9, 6, 0), (10, 0, 1)]


@pytest.mark.parametrize("neurons,row,steps,rate,stall", [(20, 4, 3, 0.3, 0.0), (37, 8, 2, 0.6, 0.4),
                                                          (16, 16, 4, 0.1, 0.2), (5, 3, 1, 0.5, 0.5)])
@pytest.mark.parametrize("listed", [False, True])
def test_reorders_and_clears(neurons, row, steps, rate, stall, listed):
    dut = make(neurons, row, steps, listed)
    assert dut.plan.listed is listed
    bits = dut.plan.index_bits
    rng = np.random.default_rng(neurons + steps)
    sent, expected = [], []
    for _ in range(3 * steps):
        spikes = np.flatnonzero(rng.random(neurons) < rate)
        expected += [(int(k), 0) for k in spikes] + [(0, 1)]
        for word in range(-(-neurons // row)):
            inside = [int(k) for k in spikes if word * row <= k < (word + 1) * row]
            rng.shuffle(inside)
            sent += [(k, 0) for k in inside]
        sent.append((0, 1))
    got = run_stream(dut, [pack_spike_event(k, e, bits) for k, e in sent], len(expected), rng=rng, stall=stall,
                     until=1e-6 * (len(sent) * 6 + len(expected) * 6 + 500))
    assert [unpack_spike_event(p, bits) for p in got] == expected


def test_plan_of_the_default_layout():
    # the hidden layer of the default network: 32 words of 12 pooled neurons, the row number beside them in 16 bits
    fc1, mems = step_buffer("fc1.buffer", 384, 12, 4, DEVICE)
    assert (fc1.listed, fc1.rows, fc1.word_bits, fc1.bits) == (True, 32, 16, 2048)
    assert [(m.name, m.width, m.depth, m.kind, m.blocks) for m in mems] == \
        [("fc1.buffer", 16, 128, "ram", 1), ("fc1.buffer_registers", 12, 4, "registers", 0)]
    # four slots of a word count (0 ... 32), a flag and a count of lower words (0 ... 16)
    assert fc1.register_bits == 4 * (6 + 1 + 5)
    # two words a step: a bitmap's two flags per slot are cheaper
    assert not step_buffer("out.buffer", 28, 16, 4, DEVICE)[0].listed
    # 16-bit words leave no room for a row number without a second block RAM
    wide = step_buffer("b", 100, 16, 4, DEVICE)[0]
    assert (wide.listed, wide.word_bits, wide.register_bits) == (False, 16, 28)
    # behind a producer of ascending indices the word narrows until the list fits the bitmap's one block RAM
    for neurons, row, rows, word_bits in [(100, 8, 13, 11), (128, 8, 16, 11), (64, 8, 8, 10)]:
        narrow, mems = step_buffer("b", neurons, 16, 4, DEVICE, narrow=True)
        assert (narrow.listed, narrow.row, narrow.rows, narrow.word_bits, mems[0].blocks) == \
            (True, row, rows, word_bits, 1)
    # no narrowing where the list fits anyway, or a step has two words
    assert step_buffer("b", 384, 12, 4, DEVICE, narrow=True)[0].row == 12
    assert not step_buffer("out.buffer", 28, 16, 4, DEVICE, narrow=True)[0].listed
    blocks = DEVICE.block_ram.blocks
    for neurons, row, steps in LAYOUT_CASES:
        buf = step_buffer("b", neurons, row, steps, DEVICE)[0]
        assert blocks(buf.word_bits, buf.depth) == blocks(row, buf.depth)


def test_refuses():
    with pytest.raises(ValueError, match=rf"^b: row must be an integer from 1 to {MAX_ROW}, not {MAX_ROW + 1}$"):
        step_buffer("b", 1000, MAX_ROW + 1, 2, DEVICE)
    with pytest.raises(ValueError, match=r"^b: time_steps must be an integer from 1 to 1024, not 1025$"):
        step_buffer("b", 10, 4, 1025, DEVICE)
    with pytest.raises(TypeError, match="^StepBuffer needs a hw.kinds.buffer.StepBufferPlan"):
        StepBuffer(None)
