"""Layer kinds: what the generator knows about each kind of layer, found by the manifest layer it implements.

A *kind* is one module here (:mod:`hw.kinds.conv2d`, :mod:`hw.kinds.mapdense`, :mod:`hw.kinds.pool`,
:mod:`hw.kinds.spikeconv`, :mod:`hw.kinds.dense`, :mod:`hw.kinds.readout`) that defines a :class:`Kind` and registers
it. A manifest layer's kind follows from its type, its neurons and whether its input is the INT8 map (the first
layer) or spikes (:func:`kind_of`). A kind provides:

- its **plan**: ``plan_layer(layer, context)``, a pure function that validates the layer and the options the user set
  for it and returns a frozen plan object holding every parameter its core needs (geometry, lanes, memories, ...);
- its **core**: ``core(plan)``, the Amaranth component built from that plan alone (imported only when called, so
  that planning needs no Amaranth);
- its **timeline**: ``timeline(plan, markers, inputs, outputs, delay)``, its part of the cycle model
  (:mod:`hw.cycles`), which lives in the core's module, next to the RTL that causes it;
- its **work**: ``work(plan, ops)``, its operations over its parallel units, for the cycle model's lower bound;
- its **logic**: ``logic(plan)``, its share of the pre-synthesis logic estimate (:mod:`hw.resources`);
- its **stimulus**: ``random_options(layer, in_shape, device, rng, time_steps=T)``, random plan options for the
  verification runs;
- optionally its **ROM contents**: ``rom_words(plan, memory_name)``, the words of a constant memory that its plan
  puts in SPRAM (kind ``"spram_rom"``), as unsigned integers of the memory's width, from which the weight image
  loaded at start-up is made (:func:`hw.weights.image`).

The generic code (:mod:`hw.plan`, :class:`hw.network.Network`, :mod:`hw.cycles`, :mod:`hw.resources`,
``sim.stimulus``) iterates over the plans of a model and asks each one's kind; it never branches on a kind's name.
The topology rules are stated as properties of the kinds (:class:`Kind`), checked by :func:`hw.plan.plan`.
"""

from dataclasses import dataclass

from golden.checks import check_int

__all__ = ["Kind", "LayerPlan", "KINDS", "register", "kind_of", "kinds_of", "get", "check_option"]


def check_option(name, value, low=None, high=None):
    """:func:`golden.checks.check_int` for an option the user gave (``--params``): every refusal is a
    ``ValueError``, a value of the wrong type included, so that the commands report it like any other."""
    try:
        return check_int(name, value, low, high)
    except TypeError as error:
        raise ValueError(str(error)) from None


@dataclass(frozen=True)
class LayerPlan:
    """What the plan of every kind holds (each kind's plan type adds its own parameters and its ``memories``).

    Attributes
    ----------
    index : int
        Position of the layer in the model.
    name, kind : str
        The layer's name and its kind's name.
    layer : golden.manifest layer
        The manifest layer (weights, neuron parameters).
    in_shape, out_shape : tuple of int
    time_steps : int
    """
    index: int
    name: str
    kind: str
    layer: object
    in_shape: tuple
    out_shape: tuple
    time_steps: int

    @property
    def memory_bits(self):
        return sum(mem.bits for mem in self.memories)

    @property
    def cycles_per_spike(self):
        """The most cycles the core spends on one input spike (or value), or ``None`` for a core whose work is not
        per input: its lane groups unless its kind says otherwise."""
        return getattr(self, "groups", None)


@dataclass(frozen=True)
class Kind:
    """One layer kind.

    Members
    -------
    name : str
        The kind's name (the ``kind`` of its plans).
    manifest_type : str
        The ``type`` of the manifest layers it implements.
    neuron : str or None
        The neuron kind it needs (``"lif"``, ``"integrate"``), or ``None`` for a layer without neurons.
    options : tuple of str
        The names of the plan options ``params`` may set for a layer of this kind.
    takes_map : bool
        Its input is the INT8 input map (the first layer); otherwise spike events.
    buffered : bool
        It reads whole time steps from a step buffer (:class:`hw.stepbuffer.StepBuffer`); otherwise it takes its
        producer's events (or the map) directly: the first layer, or a filter such as a pool, which may follow any
        core (behind a buffered one, its output goes into the next step buffer, which is always ready).
    final : bool
        It produces the result (class and readout values); exactly the last layer is final.
    emits_rows : bool
        Within a step it emits whole rows of its output map together, in any order inside a row (a step buffer
        behind it keeps whole rows per word); otherwise ascending indices.
    spiking : bool
        It emits the spikes of LIF neurons (these go to the debug stream).
    plan_layer, core, timeline, work, logic, random_options : callables
        See the module docstring.
    rom_words : callable or None
        See the module docstring (``None``: the kind puts no constant in SPRAM).
    """
    name: str
    manifest_type: str
    neuron: str | None
    options: tuple
    takes_map: bool
    buffered: bool
    final: bool
    emits_rows: bool
    spiking: bool
    plan_layer: object
    core: object
    timeline: object
    work: object
    logic: object
    random_options: object
    rom_words: object = None

    def accepts(self, layer, *, on_map):
        """Whether ``layer`` (a ``golden.manifest`` layer) is of this kind, given whether its input is the INT8 map
        (``on_map``, the first layer) or spikes."""
        if getattr(layer, "type", None) != self.manifest_type or self.takes_map != bool(on_map):
            return False
        return self.neuron is None or getattr(getattr(layer, "neuron", None), "kind", None) == self.neuron


#: Every kind, by name, in registration order.
KINDS = {}


def register(kind):
    """Add ``kind`` to :data:`KINDS`; return it."""
    if kind.name in KINDS:
        raise ValueError(f"layer kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


def get(name):
    """The :class:`Kind` called ``name``."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown layer kind {name!r} (known: {', '.join(KINDS)})") from None


def kind_of(layer, *, on_map):
    """The :class:`Kind` of a manifest layer.

    Parameters
    ----------
    layer : golden.manifest layer
    on_map : bool
        Its input is the INT8 input map (the model's first layer); otherwise spike events.

    Raises
    ------
    ValueError
        If no kind implements the layer in that place.
    """
    for kind in KINDS.values():
        if kind.accepts(layer, on_map=on_map):
            return kind
    neuron = getattr(getattr(layer, "neuron", None), "kind", None)
    where = "on the INT8 input map" if on_map else "on spikes"
    raise ValueError(f"layer {getattr(layer, 'name', layer)}: no hardware for a {getattr(layer, 'type', '?')} "
                     f"layer" + (f" with {neuron} neurons" if neuron else "") + f" {where}"
                     + f" (kinds: {', '.join(KINDS)}; see docs/hardware.md, 'Adding a layer kind')")


def kinds_of(layers):
    """The :class:`Kind` of each layer of a model, in order (the first takes the INT8 map)."""
    return [kind_of(layer, on_map=index == 0) for index, layer in enumerate(layers)]


from . import conv2d, mapdense, pool, spikeconv, dense, readout  # noqa: E402,F401  (register the kinds)
