"""The whole accelerator generated from a plan: cores chained by step buffers, a cycle counter, a debug stream.

:class:`Network` builds the hardware of a :class:`hw.plan.Plan` (see :func:`hw.plan.plan`): one core per layer, each
made by its kind (:mod:`hw.kinds`) from its own plan, and a step buffer (:class:`hw.stepbuffer.StepBuffer`) in front
of every buffered kind::

    i (INT8 map, raster order) -> ConvLayer -> OrPool ... -> [StepBuffer] -> DenseLayer -> [StepBuffer] ... -> Readout
    (or ... -> [StepBuffer] -> SpikeConvLayer -> OrPool -> [StepBuffer] -> ..., or MapDenseLayer first)

- The **front end** (the first layer and the unbuffered kinds after it) streams spike events with plain
  valid/ready handshakes. Its output goes into a step buffer, which is always ready, so the front end never waits
  for the back end and its timeline depends on nothing but the input.
- Every **back-end** core (buffered kinds: convolutions on spikes, dense LIF layers and the readout) reads its
  input from a step buffer, which offers a time step only when the whole step is in it: the step then takes a time
  that depends only on the spikes of that step (:mod:`hw.cycles`), and consecutive layers overlap in time (layer
  ``l`` works on step ``t`` while layer ``l-1`` works on ``t+1``). A pool after a back-end core passes its events
  straight into the next step buffer, which is always ready, so it never holds that core up.
- **Environment stalls do not change the timeline.** The cores run under one clock enable ``run``, which drops in
  any cycle where a debug queue cannot take an event; the input needs no such freeze because the first core is the
  only busy core while it loads the map. A result waiting to be taken freezes nothing: every core is done with the
  sample by then, the readout holds the result (stream rules) and the next sample is not admitted before the result
  is taken, so ``run`` does not depend on ``o.ready``, whose path through a board's protocol engine and UART would
  otherwise reach every register and memory enable of the network. The cycle counter counts the cycles from the
  first input transfer of a sample to its result offered, leaving out the frozen cycles and the cycles of the load
  phase without input, and stands still while the result waits.
- **Weight image** (only when the plan puts constants in SPRAM, which the bitstream does not initialize): the
  cores that hold such memories take their words through ``load``, chained in layer order
  (:func:`hw.weights.chain_loads`; the image is :func:`hw.weights.image`); ``load.full`` rises once every word is
  in. Nothing checks it here: the board's protocol engine refuses to classify before a valid image is loaded.
- **Debug stream** (``debug=True``): every transfer of a spiking layer's event becomes a ``(layer, step, neuron)``
  event; each such layer has its own small queue, drained into ``events`` by a fixed-priority arbiter (lowest layer
  first), so the events of one layer arrive in order (step, then neuron) while the layers interleave.

Submodule names: the cores are ``core.<layer name>``, the step buffers ``core.<consumer's layer name>_buffer`` and
the debug queues ``debug_<layer name>``. A generated name that a layer already has (layers called ``fc1`` and
``fc1_buffer``) gets underscores appended until it is free (:func:`generated_name`), so no user name can collide
with a generated one.
"""

from amaranth.hdl import EnableInserter, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from . import plan as planning
from .fifo import Queue
from .layouts import CYCLES_BITS, debug_event, result_layout
from .plan import Plan
from .stepbuffer import StepBuffer
from .weights import LOAD_SIGNATURE, chain_loads

__all__ = ["Network", "generated_name", "DEBUG_QUEUE_DEPTH"]

#: Entries of each per-layer debug queue.
DEBUG_QUEUE_DEPTH = 8


def generated_name(name, taken):
    """``name``, with underscores appended while it is in ``taken`` (the layer names and the names generated so far),
    which it joins."""
    while name in taken:
        name += "_"
    taken.add(name)
    return name


class Network(wiring.Component):
    """The generated accelerator of one plan.

    Parameters
    ----------
    plan : hw.plan.Plan
        From :func:`hw.plan.plan`: every parameter of the design.
    debug : bool
        Build the debug event stream (``events``); a board build may leave it out.

    Members
    -------
    i : In(stream.Signature(signed(8)))
        Input feature maps in raster order ``(c, y, x)``, ``C * H * W`` transfers per sample, samples back to back.
    o : Out(stream.Signature(result_layout(model)))
        One result per sample: class, cycle count, readout values.
    events : Out(stream.Signature(debug_event(model)))
        Only when ``debug``: every spike of every spiking layer as ``(layer, step, neuron)``.
    load : In(hw.weights.LOAD_SIGNATURE)
        Only when the plan puts weights in SPRAM (``hw.weights.image(plan)`` is not empty): the weight image, 16
        bits a word; load it while no sample is in the network.

    Raises
    ------
    TypeError
        If ``plan`` is not a plan (a model is planned first: ``Network(hw.plan.plan(model, params=...))``).
    """

    def __new__(cls, plan, *, debug=True):
        # checked before the component exists, so that a refusal leaves no unused elaboratable behind
        if not isinstance(plan, Plan):
            raise TypeError(f"Network needs a hw.plan.Plan (plan a model with hw.plan.plan first), not {plan!r}")
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, plan, *, debug=True):
        self._plan = plan
        self._model = plan.model
        self._debug = bool(debug)
        members = {
            "i": In(stream.Signature(signed(8))),
            "o": Out(stream.Signature(result_layout(self._model))),
        }
        if self._debug:
            members["events"] = Out(stream.Signature(debug_event(self._model)))
        if any(mem.kind == "spram_rom" for mem in plan.memories):
            members["load"] = In(LOAD_SIGNATURE)
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
        p = self._plan
        model = p.model
        steps = p.time_steps

        # -- cores and the links between them (all frozen when run is low) ----------------------------------------
        cores = []
        for lp in p.layers:
            unit = p.kind(lp).core(lp)
            core.submodules[lp.name] = unit
            cores.append(unit)

        if "load" in self.signature.members:
            chain_loads(m, wiring.flipped(self.load),
                        [unit.load for unit in cores if "load" in unit.signature.members])

        taps = []  # (layer index, output stream of a spiking core)
        taken = {lp.name for lp in p.layers}
        for k in range(1, len(cores)):
            lp, prev = p.layers[k], cores[k - 1]
            if p.kind(p.layers[k - 1]).spiking:
                taps.append((k - 1, prev.o))
            if lp.buffer is None:
                wiring.connect(core, prev.o, cores[k].i)
                continue
            buffer = StepBuffer(lp.buffer)
            core.submodules[generated_name(f"{lp.name}_buffer", taken)] = buffer
            wiring.connect(core, prev.o, buffer.i)
            if lp.buffer.coordinates:  # the producer's rows are the buffer's words
                core.d.comb += [buffer.in_row.eq(prev.row), buffer.in_col.eq(prev.col)]
            wiring.connect(core, buffer.o, cores[k].i)
            if "row" in cores[k].signature.members:  # a core that takes the event's word and place beside it
                core.d.comb += [cores[k].row.eq(buffer.row), cores[k].col.eq(buffer.col)]

        # -- the environment side: input admission, result, cycle counter -----------------------------------------
        first = cores[0]                                  # takes the input map
        n_input = planning.count(model.input_shape)
        busy = Signal()
        taken_inputs = Signal(range(n_input + 1))
        gate = ~busy | (taken_inputs != n_input)
        m.d.comb += [
            first.i.payload.eq(self.i.payload),
            first.i.valid.eq(self.i.valid & gate),
            self.i.ready.eq(first.i.ready & gate & run),
        ]
        in_transfer = self.i.valid & self.i.ready
        in_stall = first.i.ready & gate & ~self.i.valid

        # The readout core holds its result until it is taken, so the result goes straight to ``o`` (no queue):
        # while the environment does not take it, the counter stands still (the cores are idle: see the docstring).
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
        with m.Elif(busy & run & ~in_stall & ~readout.o.valid):
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
        m.d.comb += run.eq(~env_stall)

        m.submodules.core = EnableInserter(run)(core)
        return m
