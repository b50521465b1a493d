"""The whole accelerator generated from a model: cores chained by spike buffers, a cycle counter, a debug stream.

:func:`plan` chooses the parameters of every core from the manifest (lanes, step buffers, the memories and their
sizes); :class:`Network` builds the hardware from a model and a plan::

    i (INT8 map, raster order) -> ConvLayer -> OrPool ... -> [StepBuffer] -> DenseLayer -> [StepBuffer] ... -> Readout

- The **front end** (the conv core and the pools after it) streams spike events with plain valid/ready handshakes.
  Its output goes into a :class:`hw.fifo.StepBuffer`, a bitmap with one slot per time step that is always ready, so
  the front end never waits for the back end and its timeline depends on nothing but the input.
- Every **back-end** core (dense LIF layers and the readout) reads its input from a step buffer, which offers a time
  step only when the whole step is in it: the step then takes a time that depends only on the spikes of that step
  (``golden/cycles.py``), and consecutive layers overlap in time (layer ``l`` works on step ``t`` while layer
  ``l-1`` works on ``t+1``).
- **Environment stalls do not change the timeline.** The cores run under one clock enable ``run``, which drops in
  any cycle where an output towards the environment cannot be taken (a full debug queue, a result not taken); the
  input needs no such freeze because the conv core is the only busy core while it loads the map. The cycle counter
  counts the cycles from the first input transfer of a sample to its result, leaving out the frozen cycles and the
  cycles of the load phase without input. A new sample is admitted only after the result of the previous one.
- **Debug stream** (``debug=True``): every transfer of a LIF layer's spike event becomes a ``(layer, step, neuron)``
  event; each LIF layer has its own small queue, drained into ``events`` by a fixed-priority arbiter (lowest layer
  first), so the events of one layer arrive in order (step, then neuron) while the layers interleave.
"""

from dataclasses import dataclass, field

from amaranth.hdl import EnableInserter, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .conv import ConvLayer
from .dense import DenseLayer, check_lanes, default_lanes, ebr_blocks, row_stride
from .fifo import Queue, StepBuffer
from .layouts import CYCLES_BITS, debug_event, result_layout
from .pool import OrPool
from .readout import Readout
from .spram import SPRAM_DEPTH

#: Bits of one iCE40 block RAM; SPRAMs on the iCE40UP5K.
EBR_BITS = 4096
SPRAM_COUNT = 4

__all__ = ["Memory", "LayerPlan", "Plan", "plan", "Network", "buffer_row", "DEBUG_QUEUE_DEPTH"]

#: ROMs of at most this many words are counted as logic, not block RAM.
SMALL_ROM_WORDS = 16
#: Entries of each per-layer debug queue.
DEBUG_QUEUE_DEPTH = 8
#: Widest bitmap word of a step buffer.
MAX_BUFFER_ROW = 64


@dataclass(frozen=True)
class Memory:
    """One memory (or register file) of the design: ``width`` bits x ``depth`` words."""
    name: str
    width: int
    depth: int
    kind: str = "ram"  # "rom", "ram", "spram" or "registers"

    @property
    def bits(self):
        return self.width * self.depth

    @property
    def ebr(self):
        """iCE40 4-kbit block RAMs in the best aspect ratio.

        0 for registers, SPRAM, and ROMs of at most ``SMALL_ROM_WORDS`` words, which synthesis turns into logic.
        """
        if self.kind in ("registers", "spram") or (self.kind == "rom" and self.depth <= SMALL_ROM_WORDS):
            return 0
        return ebr_blocks(self.width, self.depth)


@dataclass(frozen=True)
class LayerPlan:
    """Parameters of the core of one layer.

    Attributes
    ----------
    index, name, kind : int, str, str
        Position in ``model.layers``, layer name, and core kind (``conv2d``, ``pool``, ``dense``, ``readout``).
    in_shape, out_shape : tuple
    neurons : int
        Output neurons (0 for pools).
    lanes : int or None
        Accumulation lanes (dense, readout) or output channels per pass (conv2d).
    groups : int or None
        Cycles per input spike (dense, readout): ``ceil(out_features / lanes)``.
    lif_units : int
        Neuron updates per cycle of the core (conv2d: ``lanes * T``, by LIF units or by a spike table).
    breakpoints : int or None
        conv2d: comparators of the spike table (:mod:`hw.spiketable`), ``None`` with a pipeline of LIF units.
    buffer_row : int or None
        Neurons per word of the step buffer in front of this core (back-end cores only).
    buffer_rows : int or None
        Words per time step of that buffer.
    memories : tuple of Memory
    word_bits : int or None
        Neurons per spike bitmap word of the conv core.
    options : tuple of (str, object)
        Keyword arguments of the core's constructor that the plan overrides (conv2d: ``lanes``, ``word_bits``,
        ``input_memory``, ``dsp_multipliers``, ``spike_logic``).
    """
    index: int
    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    neurons: int
    lanes: int | None = None
    groups: int | None = None
    lif_units: int = 0
    breakpoints: int | None = None
    buffer_row: int | None = None
    buffer_rows: int | None = None
    memories: tuple = field(default_factory=tuple)
    word_bits: int | None = None
    options: tuple = ()

    @property
    def memory_bits(self):
        return sum(mem.bits for mem in self.memories)


@dataclass(frozen=True)
class Plan:
    """The chosen hardware parameters of a model (see :func:`plan`).

    Attributes
    ----------
    model : str
        Model name.
    time_steps : int
    layers : tuple of LayerPlan
    front : int
        Number of layers of the front end (the conv layer and the pools that follow it).
    """
    model: str
    time_steps: int
    layers: tuple
    front: int

    def layer(self, name):
        """The :class:`LayerPlan` of layer ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"plan of model {self.model} has no layer {name!r}")

    @property
    def ebr(self):
        """Estimated iCE40 block RAMs of all memories (queues included)."""
        return sum(mem.ebr for layer in self.layers for mem in layer.memories)

    @property
    def memory_bits(self):
        return sum(layer.memory_bits for layer in self.layers)


def _count(shape):
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


#: Parameters of a conv2d layer that ``params`` may set (keyword arguments of :class:`hw.conv.ConvLayer`).
CONV_OPTIONS = ("lanes", "word_bits", "input_memory", "dsp_multipliers", "spike_logic")


def _check_params(model, params):
    params = dict(params or {})
    names = {layer.name: layer for layer in model.layers}
    for name, value in params.items():
        if name not in names:
            raise ValueError(f"params: model {model.name} has no layer {name!r} (layers: {', '.join(names)})")
        if not isinstance(value, dict):
            raise ValueError(f"params[{name!r}] must be a dict such as {{'lanes': 4}}, not {value!r}")
        known = {"conv2d": set(CONV_OPTIONS), "dense": {"lanes"},
                 "pool": set()}[names[name].type]
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"params[{name!r}]: unknown parameters {sorted(unknown)} for a {names[name].type} layer "
                             f"(known: {sorted(known) or 'none'})")
    return params


def plan(model, params=None):
    """Choose the hardware parameters of ``model``.

    Parameters
    ----------
    model : golden.manifest.Model
    params : dict, optional
        Overrides per layer name: ``{"conv1": {"lanes": 2, "word_bits": 16}, "fc1": {"lanes": 7}}``.

    Returns
    -------
    Plan

    Raises
    ------
    ValueError
        If an override names an unknown layer or parameter or is out of range, or the model's structure is not
        conv2d, pools, then dense layers.
    """
    params = _check_params(model, params)
    steps = model.time_steps
    layers = []
    front = 0
    in_back = False
    for index, (layer, (in_shape, out_shape)) in enumerate(zip(model.layers, model.shapes)):
        opts = params.get(layer.name, {})
        n_out = _count(out_shape)
        if layer.type == "conv2d":
            if index != 0:
                raise ValueError(f"layer {layer.name}: a conv2d layer must be the first layer")
            opts = {"input_memory": default_input_memory(in_shape), **opts}
            conv = ConvLayer(layer=layer, in_shape=tuple(in_shape), time_steps=steps, **_conv_options(opts))
            conv._MustUse__silence = True  # only asked for its geometry
            geom = conv.geometry
            layers.append(LayerPlan(index, layer.name, "conv2d", tuple(in_shape), tuple(out_shape), n_out,
                                    lanes=geom.lanes, lif_units=geom.lanes * steps,
                                    breakpoints=None if geom.table is None else len(geom.table.breakpoints),
                                    memories=_conv_memories(layer, conv), word_bits=geom.word_bits,
                                    options=tuple(sorted(_conv_options(opts).items()))))
            front = 1
        elif layer.type == "pool":
            if in_back or index == 0:
                raise ValueError(f"layer {layer.name}: a pool layer must follow the conv2d layer or another pool")
            layers.append(LayerPlan(index, layer.name, "pool", tuple(in_shape), tuple(out_shape), 0,
                                    memories=_pool_memories(layer, in_shape)))
            front += 1
        else:
            in_back = True
            readout = layer.neuron.kind == "integrate"
            lanes = check_lanes(layer, opts.get("lanes", default_lanes(layer)))
            groups = -(-layer.out_features // lanes)
            n_in = layer.in_features
            row = buffer_row(layers[-1], in_shape)
            rows = -(-n_in // row)
            state = Memory(f"{layer.name}.{'readout' if readout else 'membranes'}", layer.neuron.mem_bits,
                           layer.out_features, "registers" if readout else "ram")
            buffer = StepBuffer(neurons=n_in, row=row, time_steps=steps)
            buffer._MustUse__silence = True  # only asked for its layout
            mems = (
                Memory(f"{layer.name}.buffer", buffer.word_bits, steps * rows),
                Memory(f"{layer.name}.buffer_registers", buffer.register_bits // steps, steps, "registers"),
                Memory(f"{layer.name}.weights", 8 * lanes, n_in * row_stride(groups), "rom"),
                Memory(f"{layer.name}.accumulators", layer.acc_bits, layer.out_features, "registers"),
                state,
            )
            layers.append(LayerPlan(index, layer.name, "readout" if readout else "dense", tuple(in_shape),
                                    tuple(out_shape), n_out, lanes=lanes, groups=groups, lif_units=1,
                                    buffer_row=row, buffer_rows=rows, memories=mems))
    if not in_back or model.layers[-1].neuron.kind != "integrate":
        raise ValueError(f"model {model.name}: the last layer must be dense with the integrating readout")
    return Plan(model.name, steps, tuple(layers), front)


def buffer_row(producer, shape):
    """Neurons per word of the step buffer that takes the spikes of ``producer`` (a ``LayerPlan``) of ``shape``.

    An OR-pool emits the neurons of one pooled row in any order, so a word must hold whole pooled rows: the most
    pooled rows that fit 16 bits (at least one). Any other producer emits ascending indices: 16 neurons a word.

    Raises
    ------
    ValueError
        If a pooled row is wider than ``MAX_BUFFER_ROW``.
    """
    n = _count(shape)
    if producer.kind == "pool":
        width = int(shape[-1])
        if width > MAX_BUFFER_ROW:
            raise ValueError(f"layer {producer.name}: pooled rows of {width} neurons exceed the step buffer's "
                             f"{MAX_BUFFER_ROW}-bit words")
        return min(width * max(1, 16 // width), max(width, (n // width) * width))
    return min(16, n)


def default_input_memory(in_shape):
    """Where the conv core keeps the input map by default: an iCE40 SPRAM when the map is larger than one block RAM
    (4 kbit) and fits the SPRAMs, block RAM otherwise. Block RAM is what the weights need; the SPRAMs are free."""
    c, h, w = (int(d) for d in in_shape)
    if 8 * c * h * w > EBR_BITS and h * w <= SPRAM_DEPTH and -(-c // 2) <= SPRAM_COUNT:
        return "spram"
    return "bram"


def _conv_options(opts):
    return {key: opts[key] for key in CONV_OPTIONS if key in opts}


def _conv_memories(layer, conv):
    """The conv core's memories, from its own account of their bits (``ConvLayer.memory_bits``)."""
    geom = conv.geometry
    kh, kw = layer.kernel
    shapes = {
        "input": (8 * geom.channels, geom.height * geom.width, "ram"),
        "lines": (8 * geom.channels * (kh - 1), None, "ram"),
        "weights": (8 * geom.lanes * geom.channels * kh * kw, geom.passes, "rom"),
        "bias": (layer.bias_bits * geom.lanes, geom.passes, "rom"),
        "spikes": (geom.word_bits, geom.passes * geom.words_per_row, "ram"),
    }
    mems = []
    for name, bits in conv.memory_bits().items():
        if bits == 0:
            continue
        key = name.split()[0]
        width, depth, kind = shapes.get(key, (bits, 1, "ram"))
        if "SPRAM" in name:
            kind = "spram"
        if key == "spikes":
            for k in range(bits // (width * depth)):
                mems.append(Memory(f"{layer.name}.spikes{k}", width, depth, kind))
            continue
        if depth is None or width * depth != bits:
            depth = -(-bits // width) if width else 1
        mems.append(Memory(f"{layer.name}.{key}", width, depth, kind))
    return tuple(mems)


def _pool_memories(layer, in_shape):
    c, h, w = in_shape
    kh, kw = layer.kernel
    return (Memory(f"{layer.name}.seen", w // kw, 1, "registers"),)


class Network(wiring.Component):
    """The generated accelerator of one model.

    Parameters
    ----------
    model : golden.manifest.Model
    params : dict, optional
        Overrides for :func:`plan`.
    debug : bool
        Build the debug event stream (``events``); a board build may leave it out.

    Members
    -------
    i : In(stream.Signature(signed(8)))
        Input feature maps in raster order ``(c, y, x)``, ``C * H * W`` transfers per sample, samples back to back.
    o : Out(stream.Signature(result_layout(model)))
        One result per sample: class, cycle count, readout values.
    events : Out(stream.Signature(debug_event(model)))
        Only when ``debug``: every spike of every LIF layer as ``(layer, step, neuron)``.

    Raises
    ------
    ValueError
        As :func:`plan`.
    """

    def __init__(self, model, *, params=None, debug=True):
        try:
            self._plan = plan(model, params)
        except Exception:
            self._MustUse__silence = True
            raise
        self._model = model
        self._debug = bool(debug)
        members = {
            "i": In(stream.Signature(signed(8))),
            "o": Out(stream.Signature(result_layout(model))),
        }
        if self._debug:
            members["events"] = Out(stream.Signature(debug_event(model)))
        super().__init__(members)

    @property
    def plan(self):
        return self._plan

    @property
    def model(self):
        return self._model

    def elaborate(self, platform):
        m = Module()
        core = Module()
        run = Signal()
        model, p = self._model, self._plan
        steps = model.time_steps

        # -- cores and the links between them (all frozen when run is low) ----------------------------------------
        cores = []
        for lp, layer in zip(p.layers, model.layers):
            if lp.kind == "conv2d":
                unit = ConvLayer(layer=layer, in_shape=lp.in_shape, time_steps=steps, **dict(lp.options))
            elif lp.kind == "pool":
                unit = OrPool(in_shape=lp.in_shape, kernel=tuple(layer.kernel), time_steps=steps)
            elif lp.kind == "dense":
                unit = DenseLayer(layer=layer, time_steps=steps, lanes=lp.lanes)
            else:
                unit = Readout(layer=layer, time_steps=steps, lanes=lp.lanes)
            core.submodules[layer.name] = unit
            cores.append(unit)

        taps = []  # (layer index, output stream of a LIF core)
        for k in range(1, len(cores)):
            lp, prev = p.layers[k], cores[k - 1]
            if p.layers[k - 1].kind in ("conv2d", "dense"):
                taps.append((k - 1, prev.o))
            if lp.kind in ("pool",):
                wiring.connect(core, prev.o, cores[k].i)
                continue
            # back-end core: a bitmap buffer of a whole sample, read a complete step at a time
            buffer = StepBuffer(neurons=_count(lp.in_shape), row=lp.buffer_row, time_steps=steps)
            core.submodules[f"{lp.name}_buffer"] = buffer
            wiring.connect(core, prev.o, buffer.i)
            wiring.connect(core, buffer.o, cores[k].i)

        # -- the environment side: input admission, result, cycle counter -----------------------------------------
        conv = cores[0]
        n_input = _count(model.input_shape)
        busy = Signal()
        taken_inputs = Signal(range(n_input + 1))
        gate = ~busy | (taken_inputs != n_input)
        m.d.comb += [
            conv.i.payload.eq(self.i.payload),
            conv.i.valid.eq(self.i.valid & gate),
            self.i.ready.eq(conv.i.ready & gate & run),
        ]
        in_transfer = self.i.valid & self.i.ready
        in_stall = conv.i.ready & gate & ~self.i.valid

        # The readout core holds its result until it is taken, so the result goes straight to ``o`` (no queue):
        # while the environment does not take it, everything is frozen and the counter stands still.
        readout = cores[-1]
        count = Signal(CYCLES_BITS)  # the cycle number of the current cycle plus one: the result's value (a register)
        env_stall = Signal()  # a debug queue cannot take an event (never while a result is offered, see below)
        push = self.o.valid & self.o.ready
        m.d.comb += [
            self.o.valid.eq(readout.o.valid & ~env_stall),
            self.o.payload.cls.eq(readout.o.payload.cls),
            self.o.payload.readout.eq(readout.o.payload.readout),
            self.o.payload.cycles.eq(count),
            readout.o.ready.eq(self.o.ready),
        ]
        with m.If(in_transfer & ~busy):
            m.d.sync += [busy.eq(1), count.eq(2)]
        with m.Elif(busy & run & ~in_stall):
            m.d.sync += count.eq(count + 1)
        with m.If(in_transfer):
            m.d.sync += taken_inputs.eq(taken_inputs + 1)
        with m.If(push):
            m.d.sync += [busy.eq(0), taken_inputs.eq(0)]

        # -- debug stream: one queue per LIF layer, fixed-priority merge ------------------------------------------
        # A debug stall needs a LIF core's spike transfer, which cannot happen while the readout offers its result
        # (every core is done with the sample and the next one is not admitted yet), so ``o.valid`` never drops.
        stalls = []
        if self._debug:
            layout = debug_event(model)
            queues = []
            for index, port in taps:
                queue = Queue(shape=layout, depth=DEBUG_QUEUE_DEPTH)
                m.submodules[f"debug_{model.layers[index].name}"] = queue
                step = Signal(range(steps), name=f"debug_{model.layers[index].name}_step")
                fire = port.valid & port.ready
                with core.If(fire & port.payload.end):
                    core.d.sync += step.eq(Mux(step == steps - 1, 0, step + 1))
                m.d.comb += [
                    queue.i.valid.eq(fire & ~port.payload.end & run),
                    queue.i.payload.layer.eq(index),
                    queue.i.payload.step.eq(step),
                    queue.i.payload.neuron.eq(port.payload.index),
                ]
                stalls.append(fire & ~port.payload.end & ~queue.i.ready)
                queues.append(queue)
            # The lowest layer with an event wins, but a choice offered and not yet taken is held: the stream
            # rules forbid changing the payload of a valid transfer before it happens.
            chosen = Signal(range(max(2, len(queues))))
            pick = Signal.like(chosen)
            held = Signal.like(chosen)
            locked = Signal()
            for k in reversed(range(len(queues))):
                with m.If(queues[k].o.valid):
                    m.d.comb += pick.eq(k)
            m.d.comb += chosen.eq(Mux(locked, held, pick))
            m.d.sync += [locked.eq(self.events.valid & ~self.events.ready), held.eq(chosen)]
            m.d.comb += self.events.valid.eq(0)
            for k, queue in enumerate(queues):
                with m.If(chosen == k):
                    m.d.comb += [
                        self.events.valid.eq(queue.o.valid),
                        self.events.payload.eq(queue.o.payload),
                        queue.o.ready.eq(self.events.ready),
                    ]
        any_stall = 0
        for s in stalls:
            any_stall = any_stall | s
        m.d.comb += env_stall.eq(any_stall)
        m.d.comb += run.eq(~env_stall & ~(readout.o.valid & ~self.o.ready))

        m.submodules.core = EnableInserter(run)(core)
        return m
