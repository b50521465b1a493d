"""The input core: a line-buffered INT8 convolution with LIF neurons, run for ``T`` steps per sample.

:class:`ConvLayer` turns one INT8 input map into the spike events of the first layer (docs/arithmetic.md sections 3
and 5). Direct encoding presents the same map at every step, so a neuron's current is the same at every step and its
whole spike train depends on that current alone. The core therefore forms all ``T`` spikes of a neuron at once and
keeps no membrane memory: by default from a table of current thresholds (:mod:`hw.spiketable`, derived from the
golden LIF update over every current), or with ``spike_logic="pipeline"`` in a pipeline of ``T``
:class:`hw.lif.LIFUnit` per lane (the membrane lives only in the pipeline registers). The spikes go into one bitmap
per step that is read out step by step.

Phases of one sample
--------------------
1. **load**: the map arrives in raster order ``(c, y, x)``, one value per transfer, and is kept in the input memory
   (one word of ``C`` bytes per pixel). With several input channels the whole map is loaded first (``C*H*W``
   transfers, ``i.ready`` = 1 throughout). With one input channel (``plan.streaming``) the load phase takes only
   the first value and the first pass of the compute phase takes the others straight from the stream, as its scan
   reaches their cells.
2. **compute** (no output): for each group of ``lanes`` output channels (a *pass*) the padded grid is scanned in
   raster order through a :class:`hw.linebuffer.LineBuffer`, one cell per cycle: ``Hn = (Ho-1)*Sh + Kh`` rows of
   ``Wn = (Wo-1)*Sw + Kw`` cells, zero padding injected as cells; a streaming first pass scans ``Hs x Ws`` cells,
   the grid widened to hold every pixel of the map. At every output position each lane forms the exact current
   ``b[o] + sum w * x`` (``C*Kh*Kw`` multipliers per lane) and the spikes of its ``T`` steps from a zero membrane:
   with the spike table in one stage, or with ``T`` LIF updates, one pipeline stage per step (the reset flag of
   step ``t`` is the spike of step ``t - 1``), writing the spike of step ``t`` into the bitmap of step ``t``. The
   pipeline after the scan is ``S + 2`` stages deep (line memory read and window, current, ``S`` spike stages:
   ``S = 1`` with the table, ``T`` without); the model counts two more cycles here for the registers of the emit
   phase (below), so the phase takes ``passes * Hn * Wn + S + 4`` cycles without input stalls
   (``Hs*Ws + (passes-1)*Hn*Wn + S + 4`` when streaming).
3. **emit**: for ``t = 0 .. T-1``, the bitmap words of step ``t`` are read in flat order (``word_bits`` neurons
   each) and their set bits are sent on ``o`` in ascending flat index ``(o*Ho + y)*Wo + x``, then one end-of-step
   marker. One cycle fetches the first word; then a word with ``p`` spikes takes ``max(1, p)`` cycles and a marker
   1 cycle. The items pass a fetch stage, a register holding the current word, and an output register
   (``o.valid`` and ``o.payload`` are registers, ``o.ready`` only enables them), so no memory output or index
   arithmetic lies on the handshake path; while ``o.valid`` is held without ``o.ready`` nothing in the core moves.
   The cycle after the last marker's transfer the core is back in the load phase.

The core's timeline is thus fixed by the model and the input (the spikes), independent of stalls: each stall cycle
(``i.ready`` without ``i.valid``, or ``o.valid`` without ``o.ready``) only delays everything after it by one cycle.
:func:`conv_schedule` gives that timeline and :func:`conv_cycles` its length without stalls.

Cost
----
Per lane: ``C*Kh*Kw`` multipliers (8 x 8 bits; the first ``dsp_multipliers`` of the core are left to DSP
inference, the others are built from adders) and a comparator per breakpoint of the spike table (or ``T`` LIF
units). Memories, with the default model (1x16x48 input,
4 output channels 3x3 with padding 1, ``T = 4``, ``lanes = 1``, 16-bit bitmap words) as the example:

- input memory: ``H*W`` words of ``C`` bytes (768 x 8 = 6,144 bits), block RAM or ``ceil(C/2)`` SPRAMs;
- line memory: ``Wn`` words of ``(Kh-1)*C`` bytes (50 x 16 = 800 bits);
- spike bitmaps: ``lanes * T`` memories of ``ceil(Co/lanes) * ceil(Ho*Wo/word_bits)`` words of ``word_bits``
  (4 x 192 x 16 = 12,288 bits), written one bit at a time (bit write enables);
- weight ROM: ``ceil(Co/lanes)`` words of ``lanes*C*Kh*Kw`` bytes (288 bits); bias ROM: ``lanes`` biases per word.

Measured for that example (``lanes = 1``, ``input_memory="spram"``, Yosys ``synth_ice40 -dsp`` and nextpnr for the
iCE40UP5K, the core alone, with the LIF pipeline): 1,571 logic cells, 8 SB_MAC16, 5 block RAMs, 1 SPRAM, about 29 MHz.

Cycles per sample for the default model with ``lanes = 1`` (streaming, spike table): 1 (load) + 4 * 18 * 50 + 1 + 4
= 3,605
(compute, the other 767 input values arrive during its first pass) + the emit phase (per step one cycle per empty
16-neuron word, one per spike, one for the marker: 192 words per step).
"""

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.exclusive import ExclusiveMemory
from hw.kinds.conv2d import ConvPlan
from hw.layouts import bits_for_count, spike_event
from hw.lif import LIFUnit
from hw.linebuffer import LineBuffer
from hw.spiketable import table_spikes
from hw.spram import SPRAM
from hw.trees import chained

__all__ = ["ConvLayer", "conv_schedule", "conv_cycles", "timeline", "load_cycles", "compute_cycles",
           "shift_add_multiply", "PIPELINE_DEPTH"]

#: Pipeline stages of the compute phase after the scan and before the spike stages (line memory read and window,
#: current).
PIPELINE_DEPTH = 2
#: Registers every event passes on its way out of the compute phase (counted once in the drain).
OUTPUT_REGISTERS = 2


# -- the timeline (the cycle model's part of this core) ---------------------------------------------------------------

def load_cycles(plan):
    """Cycles of the load phase: 1 when streaming (the first value), else ``C*H*W``."""
    return 1 if plan.streaming else plan.channels * plan.height * plan.width


def drain_cycles(plan):
    """Cycles of the compute phase after the last scanned cell: the pipeline (:data:`PIPELINE_DEPTH` and the spike
    stages) and the two registers every event passes on its way out."""
    return plan.spike_stages + PIPELINE_DEPTH + OUTPUT_REGISTERS


def compute_cycles(plan):
    """Cycles of the compute phase, without input stalls (the rest of the input arrives in it when streaming)."""
    cells = plan.passes * plan.grid_height * plan.grid_width
    if plan.streaming:
        cells += plan.stream_height * plan.stream_width - plan.grid_height * plan.grid_width
    return cells + drain_cycles(plan)


def _word_counts(plan, spikes):
    """Spikes per bitmap word: (..., T, Co, words_per_row) from (..., T, Co*Ho*Wo)."""
    spikes = np.asarray(spikes, dtype=bool)
    lead = spikes.shape[:-2]
    steps, per_row = plan.time_steps, plan.out_height * plan.out_width
    wb, wpr = plan.word_bits, plan.words_per_row
    padded = np.zeros(lead + (steps, plan.out_channels, wpr * wb), dtype=np.int64)
    padded[..., :per_row] = spikes.reshape(lead + (steps, plan.out_channels, per_row))
    return padded.reshape(lead + (steps, plan.out_channels, wpr, wb)).sum(axis=-1)


def conv_schedule(plan, spikes):
    """The timeline of one sample through a :class:`ConvLayer`.

    Parameters
    ----------
    plan : hw.kinds.conv2d.ConvPlan
    spikes : array of bool, shape (T, Co*Ho*Wo)
        The layer's spikes for this sample (``golden.network.run(...).spikes[name][n]``).

    Returns
    -------
    dict
        ``load``: input transfers (the core takes one per cycle while ``i.valid``);
        ``compute``: the cycles between the last input transfer and the first emit cycle (no I/O);
        ``gaps``: list, one entry per output transfer (spikes and markers in order): the cycles from the previous
        transfer (for the first, from the last compute cycle) to the cycle where this one is first offered;
        a stall only postpones the transfer, and the next gap counts from the actual transfer;
        ``tail``: cycles from the last transfer to the first cycle of the next load phase (1).

        Timeline: load transfer ``k`` (``k < load``) is the core's cycle ``k``; the compute phase fills the
        ``compute`` cycles after the last load transfer; ``gaps[0]`` counts from the last compute cycle, every
        other gap from the previous output transfer. Without stalls the last output transfer is the core's cycle
        ``load + compute + sum(gaps) - 1``.
    """
    spikes = np.asarray(spikes, dtype=bool)
    steps, n = plan.time_steps, plan.neurons
    if spikes.shape != (steps, n):
        raise ValueError(f"spikes must have shape ({steps}, {n}), not {spikes.shape}")
    counts = _word_counts(plan, spikes)
    gaps = []
    pending = 1  # the first emit cycle only fetches the first word
    for t in range(steps):
        for count in counts[t].ravel():
            if count == 0:
                pending += 1
            else:
                gaps.append(pending + 1)
                gaps.extend([1] * (int(count) - 1))
                pending = 0
        gaps.append(pending + 1)
        pending = 0
    return {"load": load_cycles(plan), "compute": compute_cycles(plan), "gaps": gaps, "tail": 1}


def conv_cycles(plan, spikes):
    """Cycles of one sample without any stall: first input transfer to the last output transfer, inclusive.

    Parameters
    ----------
    plan : hw.kinds.conv2d.ConvPlan
    spikes : array of bool, shape (T, Co*Ho*Wo)

    Returns
    -------
    int
        ``load + compute + sum(gaps)``: each load cycle transfers one input, then ``compute`` cycles, then the
        emit phase whose last cycle is the last marker's transfer.
    """
    s = conv_schedule(plan, spikes)
    return s["load"] + s["compute"] + sum(s["gaps"])


def timeline(plan, markers, inputs, outputs):
    """The core's part of the cycle model (:func:`hw.cycles.cycles`), vectorized over samples.

    The end-of-step marker of step ``t`` is transferred at ``load + compute + sum_{t' <= t} S(t')`` with
    ``S(t) = sum over bitmap words of max(1, spikes in the word) + 1`` (one cycle fetches the first word):
    :func:`conv_schedule`'s gaps, summed per step.

    Parameters
    ----------
    plan : hw.kinds.conv2d.ConvPlan
    markers : None
        The core takes the input map, not events.
    inputs : None
    outputs : ndarray (N, T, Co*Ho*Wo) bool
        The layer's spikes.

    Returns
    -------
    dict
        ``markers`` (N, T): the cycle of each output marker's transfer; ``busy`` and ``finish`` (N,): the core
        works from the first input transfer to its last marker.
    """
    counts = _word_counts(plan, outputs)
    per_step = np.maximum(counts, 1).sum(axis=(-2, -1)) + 1
    out = load_cycles(plan) + compute_cycles(plan) + np.cumsum(per_step, axis=-1)
    done = out[:, -1] + 1
    return {"markers": out, "busy": done, "finish": done}


# -- arithmetic ---------------------------------------------------------------------------------------------------------

def shift_add_multiply(a, b):
    """``a * b`` of two signed values as a sum of shifted partial products (no ``$mul`` cell for the synthesizer).

    Yosys maps every ``*`` it finds to a DSP block when DSP inference is on; a core that has more products than
    the device has DSP blocks builds the rest with this function, which synthesizes into adders in logic.

    Parameters
    ----------
    a, b : amaranth Value
        Signed operands.

    Returns
    -------
    amaranth Value
        The exact signed product.
    """
    width = len(a)
    total = 0
    for k in range(width):
        term = Mux(a[k], b, 0) << k
        total = total - term if k == width - 1 else total + term
    return total


class ConvLayer(wiring.Component):
    """The conv2d + LIF input core (see the module docstring for the schedule).

    Parameters
    ----------
    plan : hw.kinds.conv2d.ConvPlan
        Everything the core is built from (:func:`hw.plan.plan`): the layer, the scan, the lanes (output channels
        per pass; each has ``C*Kh*Kw`` multipliers), the bitmap words, the input memory (block RAM, or SPRAMs
        through :class:`hw.spram.SPRAM`, with the same timing), the products left to DSP inference (the others are
        built from adders by :func:`shift_add_multiply`) and the spike logic (a table or ``T`` LIF units).

    Members
    -------
    i : In(stream.Signature(signed(8)))
        The input map, raster order ``(c, y, x)``, ``C*H*W`` transfers per sample.
    o : Out(stream.Signature(spike_event(index_bits)))
        Spike events and end-of-step markers, ``T`` steps per sample.

    Raises
    ------
    TypeError
        If ``plan`` is not a :class:`hw.kinds.conv2d.ConvPlan`.
    """

    def __init__(self, plan):
        if not isinstance(plan, ConvPlan):
            raise TypeError(f"ConvLayer needs a hw.kinds.conv2d.ConvPlan, not {plan!r}")
        self._plan = plan
        self.index_bits = bits_for_count(plan.neurons)
        super().__init__({
            "i": In(stream.Signature(signed(8))),
            "o": Out(stream.Signature(spike_event(self.index_bits))),
        })

    @property
    def plan(self):
        return self._plan

    def elaborate(self, platform):
        m = Module()
        g = self._plan
        layer = g.layer
        c_in, h, w = g.channels, g.height, g.width
        (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
        lanes, passes, steps = g.lanes, g.passes, g.time_steps
        hn, wn, per_row = g.grid_height, g.grid_width, g.out_height * g.out_width
        wb, wpr = g.word_bits, g.words_per_row
        taps = c_in * kh * kw

        # -- memories and ROMs ------------------------------------------------------------------------------------
        # The input memory: x_write_* and x_read_* are driven below, x_data is the word read.
        x_write_addr = Signal(range(max(2, h * w)))
        x_write_lanes = Signal(c_in)                      # byte enables, one per channel
        x_write_byte = Signal(8)
        x_read_addr = Signal(range(max(2, h * w)))
        x_read_en = Signal()
        x_data = Signal(8 * c_in)
        if g.input_memory == "bram":
            # written while loading and in a streaming first pass, which read nothing from it
            xmem = ExclusiveMemory(shape=unsigned(8 * c_in), depth=h * w, init=[])
            m.submodules.xmem = xmem
            x_wr = xmem.write_port(granularity=8)
            x_rd = xmem.read_port()
            m.d.comb += [
                x_wr.addr.eq(x_write_addr),
                x_wr.data.eq(x_write_byte.replicate(c_in)),
                x_wr.en.eq(x_write_lanes),
                x_rd.addr.eq(x_read_addr),
                x_rd.en.eq(x_read_en),
                x_data.eq(x_rd.data),
            ]
        else:
            # Single-port RAMs, two channels each; written in the load phase, read in the compute phase.
            for k in range(g.spram_blocks):
                spram = SPRAM()
                m.submodules[f"xspram{k}"] = spram
                nibbles = Signal(4)
                for lane in range(2):
                    if 2 * k + lane < c_in:
                        m.d.comb += nibbles[2 * lane:2 * lane + 2].eq(x_write_lanes[2 * k + lane].replicate(2))
                writing = x_write_lanes.any()
                m.d.comb += [
                    spram.addr.eq(Mux(writing, x_write_addr, x_read_addr)),
                    spram.data_in.eq(x_write_byte.replicate(2)),
                    spram.mask.eq(nibbles),
                    spram.we.eq(writing),
                    spram.cs.eq(writing | x_read_en),
                ]
                width = 8 * min(2, c_in - 2 * k)
                m.d.comb += x_data[16 * k:16 * k + width].eq(spram.data_out[:width])

        weights = np.zeros((passes * lanes, c_in, kh, kw), dtype=np.int64)
        weights[:g.out_channels] = np.asarray(layer.weights, dtype=np.int64)
        bias = np.zeros(passes * lanes, dtype=np.int64)
        bias[:g.out_channels] = np.asarray(layer.bias, dtype=np.int64)
        bias_bits = layer.bias_bits
        w_init, b_init = [], []
        for p in range(passes):
            word = 0
            for k, value in enumerate(weights[p * lanes:(p + 1) * lanes].ravel()):
                word |= (int(value) & 0xff) << (8 * k)
            w_init.append(word)
            word = 0
            for k, value in enumerate(bias[p * lanes:(p + 1) * lanes]):
                word |= (int(value) & ((1 << bias_bits) - 1)) << (bias_bits * k)
            b_init.append(word)
        wrom = Memory(shape=unsigned(8 * lanes * taps), depth=passes, init=w_init)
        brom = Memory(shape=unsigned(bias_bits * lanes), depth=passes, init=b_init)
        m.submodules.wrom = wrom
        m.submodules.brom = brom
        w_rd = wrom.read_port()
        b_rd = brom.read_port()

        bitmaps = {}
        for lane in range(lanes):
            for t in range(steps):
                # written while computing, read while emitting
                mem = ExclusiveMemory(shape=unsigned(wb), depth=passes * wpr, init=[])
                m.submodules[f"spikes_{lane}_{t}"] = mem
                bitmaps[lane, t] = (mem.write_port(granularity=None if g.whole_words else 1), mem.read_port())

        m.submodules.lines = lines = LineBuffer(channels=c_in, kernel=(kh, kw), width=g.stream_width)

        # -- load: the input stream into the input memory --------------------------------------------------------
        load_pos = Signal(range(max(2, h * w)))
        load_ch = Signal(range(max(2, c_in)))
        computing = Signal()
        emitting = Signal()
        loading = ~computing & ~emitting
        first_pixel = Signal(8)                           # streaming: the value taken in the load phase
        with m.If(self.i.valid & loading):
            m.d.sync += first_pixel.eq(self.i.payload.as_unsigned())
            if g.streaming:
                # The first value is pixel 0 (load_pos stays 0); the scan takes the others.
                m.d.sync += computing.eq(1)
            else:
                with m.If(load_pos == h * w - 1):
                    m.d.sync += load_pos.eq(0)
                    with m.If(load_ch == c_in - 1):
                        m.d.sync += [load_ch.eq(0), computing.eq(1)]
                    with m.Else():
                        m.d.sync += load_ch.eq(load_ch + 1)
                with m.Else():
                    m.d.sync += load_pos.eq(load_pos + 1)

        # -- compute, stage 0: scan the padded grid ---------------------------------------------------------------
        hs, ws = g.stream_height, g.stream_width          # the grid of the first pass (Hn x Wn unless streaming)
        gy = Signal(range(max(2, hs)))
        gx = Signal(range(max(2, ws)))
        og = Signal(range(max(2, passes)))
        row_addr = Signal(signed(max(hs * w, ph * w).bit_length() + 2), init=-ph * w)
        y_wait = Signal(range(max(2, kh, sh)), init=kh - 1)
        x_wait = Signal(range(max(2, kw, sw)), init=kw - 1)
        scanning = Signal()
        pipeline_drain = g.spike_stages + PIPELINE_DEPTH   # drain_cycles adds the output registers
        drain = Signal(range(pipeline_drain + 1))
        m.d.comb += scanning.eq(computing & (drain == 0))

        inside = (gy >= ph) & (gy < ph + h) & (gx >= pw) & (gx < pw + w)
        # A streaming first pass takes each pixel from the input (the first one came in the load phase).
        stream_pass = Signal()
        need = Signal()
        if g.streaming:
            m.d.comb += [
                stream_pass.eq(og == 0),
                need.eq(stream_pass & inside & ~((gy == ph) & (gx == pw))),
            ]
        step = Signal()
        m.d.comb += step.eq(scanning & (~need | self.i.valid))
        take = scanning & need & self.i.valid
        scan_addr = row_addr + gx - pw
        m.d.comb += [
            self.i.ready.eq(loading | (scanning & need)),
            x_write_addr.eq(Mux(loading, load_pos, scan_addr)),
            x_write_byte.eq(self.i.payload.as_unsigned()),
            x_write_lanes.eq(Mux(self.i.valid & loading, Const(1, c_in) << load_ch, Mux(take, 1, 0))),
            x_read_addr.eq(scan_addr),
            x_read_en.eq(step & ~stream_pass),
            lines.next_x.eq(gx),
            lines.next_en.eq(step),
        ]
        valid1, inside1, out1, og1 = Signal(), Signal(), Signal(), Signal.like(og)
        streamed1, streamed_pixel1 = Signal(), Signal(8)
        m.d.sync += [
            valid1.eq(step),
            inside1.eq(inside),
            out1.eq((y_wait == 0) & (x_wait == 0) & (gy < hn) & (gx < wn)),
            og1.eq(og),
            streamed1.eq(stream_pass),
            streamed_pixel1.eq(Mux(need, self.i.payload.as_unsigned(), first_pixel)),
        ]
        last_col = Mux(stream_pass, ws - 1, wn - 1)
        last_row = Mux(stream_pass, hs - 1, hn - 1)
        with m.If(step):
            with m.If(gx == last_col):
                m.d.sync += [gx.eq(0), x_wait.eq(kw - 1)]
                with m.If(gy == last_row):
                    m.d.sync += [gy.eq(0), row_addr.eq(-ph * w), y_wait.eq(kh - 1)]
                    with m.If(og == passes - 1):
                        m.d.sync += [og.eq(0), drain.eq(pipeline_drain)]
                    with m.Else():
                        m.d.sync += og.eq(og + 1)
                with m.Else():
                    m.d.sync += [gy.eq(gy + 1), y_wait.eq(Mux(y_wait == 0, sh - 1, y_wait - 1))]
                    m.d.sync += row_addr.eq(row_addr + w)
            with m.Else():
                m.d.sync += [gx.eq(gx + 1), x_wait.eq(Mux(x_wait == 0, sw - 1, x_wait - 1))]
        with m.If(computing & (drain != 0)):
            m.d.sync += drain.eq(drain - 1)
            with m.If(drain == 1):
                m.d.sync += [computing.eq(0), emitting.eq(1)]

        # -- stage 1: pixel into the line buffer, ROM reads -------------------------------------------------------
        pixel = Signal(unsigned(8 * c_in))
        m.d.comb += [
            pixel.eq(Mux(inside1, Mux(streamed1, streamed_pixel1, x_data), 0)),
            lines.pixel.eq(pixel),
            lines.en.eq(valid1),
            w_rd.addr.eq(og1),
            b_rd.addr.eq(og1),
        ]
        valid2 = Signal()
        m.d.sync += valid2.eq(valid1 & out1)

        # -- stage 2: one current per lane, with the bitmap position of its neuron ---------------------------------
        window = lines.window
        currents = []
        hard = 0                                          # multipliers left to the synthesizer (DSP blocks)
        for lane in range(lanes):
            # the bias and one product per tap, in chains joined by a balanced tree (one chain of C*Kh*Kw
            # additions would nest as deep as the taps are many)
            terms = [b_rd.data[lane * bias_bits:(lane + 1) * bias_bits].as_signed()]
            for ch in range(c_in):
                for i in range(kh):
                    for j in range(kw):
                        k = ((lane * c_in + ch) * kh + i) * kw + j
                        weight = w_rd.data[8 * k:8 * k + 8].as_signed()
                        if hard < g.dsp_multipliers:
                            terms.append(weight * window[i][j][ch])
                            hard += 1
                        else:
                            terms.append(shift_add_multiply(weight, window[i][j][ch]))
            current = Signal(signed(layer.acc_bits), name=f"current{lane}", reset_less=True)
            m.d.sync += current.eq(chained(terms))
            currents.append(current)
        bit = Signal(range(max(2, wb)))
        word = Signal(range(max(2, passes * wpr)))
        row_word = Signal(range(max(2, passes * wpr)))
        count = Signal(range(max(2, per_row)))
        stage_valid = Signal()
        stage_word = Signal.like(word, reset_less=True)
        stage_bit = Signal.like(bit, reset_less=True)
        m.d.sync += [stage_valid.eq(valid2), stage_word.eq(word), stage_bit.eq(bit)]
        with m.If(valid2):
            with m.If(count == per_row - 1):
                m.d.sync += [count.eq(0), bit.eq(0)]
                next_row = Mux(row_word == (passes - 1) * wpr, 0, row_word + wpr)
                m.d.sync += [row_word.eq(next_row), word.eq(next_row)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
                with m.If(bit == wb - 1):
                    m.d.sync += [bit.eq(0), word.eq(word + 1)]
                with m.Else():
                    m.d.sync += bit.eq(bit + 1)

        # -- stage 3: the spikes of all T steps at once, from the table of current thresholds -------------------
        if g.table is not None:
            for lane in range(lanes):
                train = Signal(steps, name=f"train{lane}")
                m.d.comb += train.eq(table_spikes(g.table, currents[lane]))
                for t in range(steps):
                    self._write_spike(m, bitmaps[lane, t][0], stage_word, stage_bit, stage_valid, train[t],
                                      f"{lane}_{t}")

        # -- or stages 3 .. 2+T: one LIF update per stage, the spike of step t written at stage 3+t --------------
        else:
            self._lif_pipeline(m, currents, bitmaps, stage_valid, stage_word, stage_bit)

        # -- emit: bitmap words of each step in flat order, then a marker -----------------------------------------
        # Three stages: fetch (the read of the next item is issued), current (the item being emitted, its bits in a
        # register, cleared one by one) and the output register. Only registers feed the handshake logic.
        et = Signal(range(max(2, steps)))                 # next item to fetch: step, channel, word
        eo = Signal(range(max(2, g.out_channels)))
        ew = Signal(range(max(2, wpr)))
        e_lane = Signal(range(max(2, lanes)))
        e_row_addr = Signal(range(max(2, passes * wpr)))
        e_row_base = Signal(range(max(2, g.neurons)))
        e_marker = Signal()                               # the next item is the step's marker
        e_done = Signal()                                 # no items left to fetch in this sample

        f_word, f_marker, f_last = Signal(), Signal(), Signal()   # the item fetched at the previous advance
        f_lane = Signal.like(e_lane)
        f_step = Signal.like(et)
        f_base = Signal(range(max(2, g.neurons + wb)))

        c_word, c_marker, c_last = Signal(), Signal(), Signal()   # the current item
        c_bits = Signal(wb)
        c_base = Signal.like(f_base)

        fetched = Signal(wb)
        with m.Switch(f_step):
            for t in range(steps):
                with m.Case(t):
                    with m.Switch(f_lane):
                        for lane in range(lanes):
                            with m.Case(lane):
                                m.d.comb += fetched.eq(bitmaps[lane, t][1].data)

        low = Signal(range(max(2, wb)))                   # lowest set bit of the current word
        for b in reversed(range(wb)):
            with m.If(c_bits[b]):
                m.d.comb += low.eq(b)
        rest = Signal(wb)                                 # the current word without that bit
        m.d.comb += rest.eq(c_bits & ~(Const(1, wb) << low))
        c_empty = Signal()                                # c_bits == 0, kept in a register
        c_single = Signal()                               # c_bits has at most one bit set, kept in a register

        # The item of this cycle goes into the output register when it is free or being emptied; while the
        # register holds an item that is not taken, the whole emit phase waits.
        item_valid = c_marker | (c_word & ~c_empty)
        accept = ~self.o.valid | self.o.ready
        produce = item_valid & accept
        with m.If(accept):
            m.d.sync += [
                self.o.valid.eq(item_valid),
                self.o.payload.end.eq(c_marker),
                self.o.payload.index.eq(Mux(c_marker, 0, c_base + low)),
            ]
        finished = Signal()                               # the last marker is in the output register
        finish = Mux(c_marker, produce, Mux(c_word, c_empty | (c_single & produce), 1))
        advance = emitting & ~finished & accept & finish
        with m.If(produce & c_word):
            m.d.sync += [
                c_bits.eq(rest),
                c_empty.eq(c_single),
                c_single.eq((rest & (rest - 1)) == 0),
            ]
        with m.If(produce & c_last):
            m.d.sync += finished.eq(1)
        with m.If(finished & self.o.valid & self.o.ready):
            m.d.sync += [finished.eq(0), emitting.eq(0), e_done.eq(0)]

        for lane in range(lanes):
            for t in range(steps):
                rd = bitmaps[lane, t][1]
                m.d.comb += [rd.addr.eq(e_row_addr + ew), rd.en.eq(advance)]

        with m.If(advance):
            m.d.sync += [
                c_word.eq(f_word), c_marker.eq(f_marker), c_last.eq(f_last), c_bits.eq(fetched),
                c_base.eq(f_base), c_empty.eq(fetched == 0), c_single.eq((fetched & (fetched - 1)) == 0),
            ]
            with m.If(e_done):
                m.d.sync += [f_word.eq(0), f_marker.eq(0), f_last.eq(0)]
            with m.Elif(e_marker):
                m.d.sync += [f_word.eq(0), f_marker.eq(1), f_last.eq(et == steps - 1), e_marker.eq(0)]
                with m.If(et == steps - 1):
                    m.d.sync += [et.eq(0), e_done.eq(1)]
                with m.Else():
                    m.d.sync += et.eq(et + 1)
            with m.Else():
                m.d.sync += [
                    f_word.eq(1), f_marker.eq(0), f_last.eq(0),
                    f_lane.eq(e_lane), f_step.eq(et), f_base.eq(e_row_base + ew * wb),
                ]
                with m.If(ew == wpr - 1):
                    m.d.sync += ew.eq(0)
                    with m.If(eo == g.out_channels - 1):
                        m.d.sync += [eo.eq(0), e_lane.eq(0), e_row_addr.eq(0), e_row_base.eq(0),
                                     e_marker.eq(1)]
                    with m.Else():
                        m.d.sync += [eo.eq(eo + 1), e_row_base.eq(e_row_base + per_row)]
                        with m.If(e_lane == lanes - 1):
                            m.d.sync += [e_lane.eq(0), e_row_addr.eq(e_row_addr + wpr)]
                        with m.Else():
                            m.d.sync += e_lane.eq(e_lane + 1)
                with m.Else():
                    m.d.sync += ew.eq(ew + 1)
        return m

    def _write_spike(self, m, wr, word, bit, valid, spike, name):
        """Write ``spike`` as bit ``bit`` of bitmap word ``word`` when ``valid``: under the write mask, or (with
        ``whole_words``) as the whole word, its lower bits from a register that holds the word so far (the bits of a
        word arrive in order, from bit 0; a word is read only once complete)."""
        wb = self._plan.word_bits
        m.d.comb += wr.addr.eq(word)
        if not self._plan.whole_words:
            m.d.comb += [wr.data.eq(Mux(spike, (1 << wb) - 1, 0)), wr.en.eq(Mux(valid, Const(1, wb) << bit, 0))]
            return
        held = Signal(wb, name=f"word_so_far{name}")
        data = Signal(wb, name=f"word_data{name}")
        m.d.comb += [data.eq(Mux(bit == 0, 0, held) | (spike.as_unsigned() << bit)[:wb]), wr.data.eq(data),
                     wr.en.eq(valid)]
        with m.If(valid):
            m.d.sync += held.eq(data)

    def _lif_pipeline(self, m, currents, bitmaps, stage_valid, stage_word, stage_bit):
        """``T`` LIF units per lane in a pipeline; the spike of step ``t`` is written ``t`` cycles after the current."""
        g = self._plan
        layer = g.layer
        lanes, steps = g.lanes, g.time_steps
        currents = list(currents)
        membranes = [Const(0, signed(layer.neuron.mem_bits))] * lanes
        fired = [Const(0, 1)] * lanes
        for t in range(steps):
            for lane in range(lanes):
                unit = LIFUnit(layer.neuron, layer.acc_bits, fired_input=True)
                m.submodules[f"lif_{lane}_{t}"] = unit
                m.d.comb += [unit.v.eq(membranes[lane]), unit.current.eq(currents[lane]), unit.fired.eq(fired[lane])]
                self._write_spike(m, bitmaps[lane, t][0], stage_word, stage_bit, stage_valid, unit.spike,
                                  f"{lane}_{t}")
                if t < steps - 1:
                    v = Signal(signed(layer.neuron.mem_bits), name=f"v{lane}_{t + 1}", reset_less=True)
                    current = Signal(signed(layer.acc_bits), name=f"current{lane}_{t + 1}", reset_less=True)
                    spiked = Signal(name=f"spike{lane}_{t}", reset_less=True)
                    m.d.sync += [v.eq(unit.v_next), current.eq(currents[lane]), spiked.eq(unit.spike)]
                    membranes[lane], currents[lane], fired[lane] = v, current, spiked
            if t < steps - 1:
                valid = Signal()
                word_q = Signal.like(stage_word, reset_less=True)
                bit_q = Signal.like(stage_bit, reset_less=True)
                m.d.sync += [valid.eq(stage_valid), word_q.eq(stage_word), bit_q.eq(stage_bit)]
                stage_valid, stage_word, stage_bit = valid, word_q, bit_q
