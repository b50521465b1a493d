"""The hardware plan: every parameter of the generated accelerator, chosen once, in pure Python.

:func:`plan` walks the layers of a model, finds each one's kind (:mod:`hw.kinds`), checks the topology and the
user's options, and asks the kind for the layer's plan: a frozen object holding everything its core needs (geometry,
lanes and groups, spike logic, memories with their kind, width, depth, bits and block count, the layout of the step
buffer in front of it, DSP use). The network (:class:`hw.network.Network`), the cycle model (:mod:`hw.cycles`), the
resource estimate (:mod:`hw.resources`), the generator summary and the testbench stimulus all read the same plan; no
core derives a parameter of its own. Nothing here imports Amaranth.

The device (:mod:`hw.device`, the iCE40UP5K by default) decides what a memory costs and what the defaults are (the
block-RAM aspect ratios, whether the input map goes to an SPRAM, how many multipliers go to DSP blocks).

**Weights in SPRAM.** A layer whose kind has the option ``weights`` (dense, readout) keeps its weight ROM in block
RAM unless the user sets ``"weights": "spram"`` or the block RAMs do not suffice: then :func:`plan` moves the
largest weight ROMs whose placement the user left open into the device's SPRAM, one layer at a time, until the
block RAMs suffice or the SPRAMs are full (:func:`auto_weights`). SPRAM is not initialized by the bitstream: such a
design loads a weight image at start-up (:mod:`hw.weights`, docs/hardware.md).

**Membranes in SPRAM.** A layer whose kind has the option ``state`` (spikeconv, mapdense) keeps its membranes in
block RAM unless the user sets ``"state": "spram"`` or, after the weights have moved, the block RAMs still do not
suffice: then :func:`auto_state` moves the largest membrane memories into SPRAM, and returns a convolution's input
map to block RAM where that frees the SPRAM they need and saves block RAMs on balance.
"""

from dataclasses import dataclass

from golden.checks import MAX_TIME_STEPS, check_int

from . import device as devices
from . import kinds
from .kinds.memory import Memory, memory

__all__ = ["Memory", "Context", "Plan", "plan", "plan_params", "plan_layer", "count", "auto_weights", "auto_state"]


def count(shape):
    """Elements of a shape: the product of its dimensions."""
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


@dataclass(frozen=True)
class Context:
    """What a kind's ``plan_layer`` is given besides the layer.

    Attributes
    ----------
    index : int
        Position of the layer in the model.
    in_shape, out_shape : tuple of int
    time_steps : int
    device : hw.device.Device
    options : dict
        The user's options for this layer (names already checked against the kind's ``options``).
    producer : layer plan or None
        The plan of the previous layer (``None`` for the first).
    producer_kind : hw.kinds.Kind or None
    """
    index: int
    in_shape: tuple
    out_shape: tuple
    time_steps: int
    device: object
    options: dict
    producer: object = None
    producer_kind: object = None

    @property
    def inputs(self):
        """Elements of the layer's input (:func:`count` of :attr:`in_shape`)."""
        return count(self.in_shape)

    def memory(self, name, width, depth, kind="ram"):
        """A :class:`Memory` with its block count on :attr:`device` (:func:`hw.kinds.memory.memory`)."""
        return memory(self.device, name, width, depth, kind)


@dataclass(frozen=True)
class Plan:
    """The chosen hardware of a model on a device (see :func:`plan`).

    Attributes
    ----------
    model : golden.manifest.Model
    device : hw.device.Device
    time_steps : int
    layers : tuple
        One plan per layer, of its kind's plan type; each has ``index``, ``name``, ``kind``, ``in_shape``,
        ``out_shape``, ``neurons``, ``lanes``, ``groups``, ``lif_units``, ``buffer`` (the step buffer in front of
        it, or ``None``), ``buffer_row``, ``buffer_rows`` and ``memories``.
    """
    model: object
    device: object
    time_steps: int
    layers: tuple

    def layer(self, name):
        """The plan of layer ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"plan of model {self.model.name} has no layer {name!r}")

    def kind(self, layer):
        """The :class:`hw.kinds.Kind` of a layer plan (or of the layer called ``layer``)."""
        if isinstance(layer, str):
            layer = self.layer(layer)
        return kinds.get(layer.kind)

    @property
    def front(self):
        """Layers of the front end: the leading layers that are not fed by a step buffer."""
        n = 0
        for layer in self.layers:
            if layer.buffer is not None:
                break
            n += 1
        return n

    @property
    def memories(self):
        """Every memory of the design, in layer order."""
        return tuple(mem for layer in self.layers for mem in layer.memories)

    @property
    def ebr(self):
        """Block RAMs of all memories."""
        return sum(mem.blocks for mem in self.memories)

    @property
    def memory_bits(self):
        return sum(mem.bits for mem in self.memories)

    @property
    def sprams(self):
        """The device's SPRAMs taken by all memories."""
        return sum(mem.sprams for mem in self.memories)


def _check_params(model, params, layer_kinds):
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict such as {{'fc1': {{'lanes': 4}}}}, not {params!r}")
    names = {layer.name: kind for layer, kind in zip(model.layers, layer_kinds)}
    for name, value in params.items():
        if name not in names:
            raise ValueError(f"params: model {model.name} has no layer {name!r} (layers: {', '.join(names)})")
        if not isinstance(value, dict):
            raise ValueError(f"params[{name!r}] must be a dict such as {{'lanes': 4}}, not {value!r}")
        known = set(names[name].options)
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"params[{name!r}]: unknown parameters {sorted(unknown)} for a {names[name].name} "
                             f"layer (known: {sorted(known) or 'none'})")
    return params


def _check_topology(model, layer_kinds):
    # The first layer's kind takes the map and no other does (kinds.kind_of); a filter without a step buffer of its
    # own (a pool) may follow any core, since whatever follows it in the back end reads through a step buffer, which
    # is always ready. What remains: the readout last, and only there.
    last = len(model.layers) - 1
    for index, (layer, kind) in enumerate(zip(model.layers, layer_kinds)):
        if kind.final != (index == last):
            raise ValueError(f"model {model.name}: the last layer must be dense with the integrating readout, "
                             f"and only the last (layer {layer.name} is a {kind.name} layer)")


def plan_params(model, device, params=None):
    """The options :func:`plan` takes: ``params`` when given (``{}`` too), else the model's own for ``device`` (a
    :class:`hw.device.Device`; the manifest's ``hardware`` object), else ``None``."""
    if params is not None:
        return params
    return (getattr(model, "hardware", None) or {}).get(device.name)


def plan(model, *, device=None, params=None):
    """Choose the hardware of ``model`` on ``device``.

    Parameters
    ----------
    model : golden.manifest.Model
    device : hw.device.Device or str, optional
        Default: the iCE40UP5K.
    params : dict, optional
        Options per layer name: ``{"conv1": {"lanes": 2, "spike_logic": "pipeline"}, "fc1": {"lanes": 7}}``; the
        options of each kind are listed in docs/hardware.md. ``None``: the model's own options for the device
        (``model.hardware``, the manifest's ``hardware`` object), if it has any; ``{}``: none.

    Returns
    -------
    Plan

    Raises
    ------
    ValueError
        If an option names an unknown layer or parameter or is out of range, a layer has no hardware kind in its
        place (the first takes the map, the others spikes), the readout is not last (and only last), or
        a layer cannot be built on the device, or an option has the wrong type; the message names the layer, the
        bound and what to change.
    """
    if device is None:
        device = devices.get("iCE40UP5K")
    elif isinstance(device, str):
        device = devices.get(device)
    params = plan_params(model, device, params)
    steps = check_int(f"model {model.name}: time_steps", model.time_steps, 1, MAX_TIME_STEPS)
    layer_kinds = kinds.kinds_of(model.layers)
    params = _check_params(model, params, layer_kinds)
    _check_topology(model, layer_kinds)
    chosen = _plan_layers(model, device, steps, layer_kinds, params)
    replan = lambda more: _plan_layers(model, device, steps, layer_kinds, more)  # noqa: E731
    chosen, params = auto_weights(chosen, replan, params, with_params=True)
    return auto_state(chosen, replan, params)


def auto_weights(chosen, replan, params, *, with_params=False):
    """Move weight ROMs into SPRAM while ``chosen`` needs more block RAMs than its device has.

    Candidates are the layers whose kind has the option ``weights`` and whose ``params`` leave it unset, the
    largest weight ROM (in block RAMs) first; a candidate is moved (``replan`` with ``"weights": "spram"`` added to
    its options) when the SPRAMs it then takes still fit the device, and the moves stop as soon as the block RAMs
    suffice. A plan that still does not fit is returned as it is: the fit check (:func:`hw.resources.check_fit`)
    names what is over. ``with_params``: return the plan and the options that made it.
    """
    device = chosen.device
    if device.wide_ram is None or chosen.ebr <= device.block_ram.count:
        return (chosen, params or {}) if with_params else chosen
    params = {name: dict(options) for name, options in (params or {}).items()}
    for name in _candidates(chosen, params, "weights", "weights"):
        trial = params | {name: params.get(name, {}) | {"weights": "spram"}}
        moved = replan(trial)
        if moved.sprams <= device.wide_ram.count:
            chosen, params = moved, trial
            if chosen.ebr <= device.block_ram.count:
                break
    return (chosen, params) if with_params else chosen


def _candidates(chosen, params, option, what):
    """The layers of ``chosen`` whose kind has ``option`` and whose ``params`` leave it unset, with a memory
    ``<layer>.<what>`` in block RAM: the largest (in block RAMs) first, then in layer order."""
    found = []
    for lp in chosen.layers:
        if option in chosen.kind(lp).options and option not in params.get(lp.name, {}):
            mem = next((mem for mem in lp.memories if mem.name == f"{lp.name}.{what}"), None)
            if mem is not None and mem.blocks:
                found.append((-mem.blocks, lp.index, lp.name))
    return [name for _, _, name in sorted(found)]


def auto_state(chosen, replan, params):
    """Move membranes into SPRAM while ``chosen`` needs more block RAMs than its device has.

    Candidates are the layers whose kind has the option ``state`` and whose ``params`` leave it unset, the largest
    membrane memory (in block RAMs) first, then in layer order. A candidate is moved (``replan`` with ``"state":
    "spram"``) when the plan then fits the device's SPRAMs; where it does not, the input maps that a layer keeps in
    SPRAM by default (option ``input_memory`` unset) go back to block RAM, the smallest first, until it does. The
    move is kept only if it saves block RAMs on balance; the moves stop as soon as the block RAMs suffice. A plan
    that still does not fit is returned as it is (the fit check names what is over).
    """
    device = chosen.device
    if device.wide_ram is None or chosen.ebr <= device.block_ram.count:
        return chosen
    params = {name: dict(options) for name, options in (params or {}).items()}
    for name in _candidates(chosen, params, "state", "membranes"):
        trial = params | {name: params.get(name, {}) | {"state": "spram"}}
        moved = replan(trial)
        maps = sorted((mem.bits, lp.index, lp.name)
                      for lp in moved.layers for mem in lp.memories
                      if mem.name == f"{lp.name}.input" and mem.kind == "spram"
                      and "input_memory" in moved.kind(lp).options and "input_memory" not in params.get(lp.name, {}))
        for _, _, owner in maps:
            if moved.sprams <= device.wide_ram.count:
                break
            trial = trial | {owner: trial.get(owner, {}) | {"input_memory": "bram"}}
            moved = replan(trial)
        if moved.sprams <= device.wide_ram.count and moved.ebr < chosen.ebr:
            chosen, params = moved, trial
            if chosen.ebr <= device.block_ram.count:
                break
    return chosen


def _plan_layers(model, device, steps, layer_kinds, params):
    layers = []
    producer = producer_kind = None
    for index, (layer, kind, (in_shape, out_shape)) in enumerate(zip(model.layers, layer_kinds, model.shapes)):
        context = Context(index, tuple(int(d) for d in in_shape), tuple(int(d) for d in out_shape), steps, device,
                          dict(params.get(layer.name, {})), producer, producer_kind)
        producer = kind.plan_layer(layer, context)
        producer_kind = kind
        layers.append(producer)
    return Plan(model, device, steps, tuple(layers))


def plan_layer(layer, in_shape, time_steps, *, on_map, device=None, options=None):
    """The plan of one layer alone, fed by the input map (a first layer) or by ascending spike events: for the
    tests of a single core and for tools that look at one layer.

    Parameters
    ----------
    layer : golden.manifest layer
    in_shape : tuple of int
    time_steps : int
    on_map : bool
        The layer takes the INT8 input map (as a first layer); otherwise spike events.
    device : hw.device.Device or str, optional
    options : dict, optional
        The layer's options (as in ``params[layer.name]``).
    """
    if device is None:
        device = devices.get("iCE40UP5K")
    elif isinstance(device, str):
        device = devices.get(device)
    kind = kinds.kind_of(layer, on_map=on_map)
    options = dict(options or {})
    unknown = set(options) - set(kind.options)
    if unknown:
        raise ValueError(f"layer {layer.name}: unknown parameters {sorted(unknown)} for a {kind.name} layer "
                         f"(known: {sorted(kind.options) or 'none'})")
    in_shape = tuple(int(d) for d in in_shape)
    steps = check_int("time_steps", time_steps, 1, MAX_TIME_STEPS)
    context = Context(0 if kind.takes_map else 1, in_shape, tuple(int(d) for d in layer.out_shape(in_shape)), steps,
                      device, options)
    return kind.plan_layer(layer, context)
