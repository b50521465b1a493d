"""Payload layouts shared by the cores, the testbenches and the golden model's packing helpers.

Every stream between spikesmith cores carries one of the :class:`amaranth.lib.data.StructLayout` payloads defined
here, so that each field is defined exactly once:

- :func:`spike_event`: the address event of a spike FIFO. For each time step ``t = 0 .. T-1`` a producer emits the
  spike events of that step (``end = 0``, ``index`` = flat neuron index, row-major ``(c, y, x)`` as in
  ``docs/arithmetic.md``) followed by exactly one end-of-step marker (``end = 1``, ``index = 0``).
- :func:`debug_event`: one spike of one LIF layer (``layer`` = index of the layer in ``model.layers``).
- :func:`readout_layout`: the readout core's result (class, readout values); :func:`result_layout`: the network's,
  the same with the cycle count of the inference.

:func:`pack` and :func:`unpack` convert between these payloads and plain integers (the flat bit vector that
Amaranth's Verilog backend puts on a ``*__payload`` port, fields from the least significant bit in declaration order)
with Amaranth's own ``Layout.const(...).as_bits()`` and ``Layout.from_bits()``; ``pack`` reads its result back and
refuses a value that a field would truncate.
"""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = [
    "CYCLES_BITS",
    "bits_for_count",
    "spike_event",
    "debug_event",
    "readout_layout",
    "result_layout",
    "lif_layer_indices",
    "pack",
    "unpack",
    "pack_spike_event",
    "unpack_spike_event",
    "pack_debug_event",
    "unpack_debug_event",
    "unpack_result",
]

#: Width of the per-inference cycle counter in :func:`result_layout`.
CYCLES_BITS = 32


def bits_for_count(count):
    """Number of bits of an unsigned index into ``count`` items (at least 1).

    Parameters
    ----------
    count : int
        Number of distinct values, at least 1.

    Returns
    -------
    int
        ``max(1, (count - 1).bit_length())``.

    Raises
    ------
    ValueError
        If ``count`` is not a positive integer.
    """
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    return max(1, (count - 1).bit_length())


def spike_event(index_bits):
    """Layout of a spike event: ``{"index": unsigned(index_bits), "end": unsigned(1)}``.

    Parameters
    ----------
    index_bits : int
        Width of the flat neuron index, at least 1.

    Returns
    -------
    amaranth.lib.data.StructLayout

    Raises
    ------
    ValueError
        If ``index_bits`` is not a positive integer.
    """
    if not isinstance(index_bits, int) or isinstance(index_bits, bool) or index_bits < 1:
        raise ValueError(f"spike event index width must be a positive integer, not {index_bits!r}")
    return data.StructLayout({"index": unsigned(index_bits), "end": unsigned(1)})


def _neuron_count(shape):
    count = 1
    for dim in shape:
        count *= int(dim)
    return count


def lif_layer_indices(model):
    """Indices in ``model.layers`` of the layers with LIF neurons (the layers of the debug stream).

    Parameters
    ----------
    model : golden.manifest.Model

    Returns
    -------
    list of int
    """
    from golden.manifest import LIF

    return [index for index, layer in enumerate(model.layers) if isinstance(getattr(layer, "neuron", None), LIF)]


def debug_event(model):
    """Layout of the debug spike stream of ``model``.

    ``{"neuron": unsigned(..), "step": unsigned(..), "layer": unsigned(..)}``: ``neuron`` holds the flat index of the
    largest LIF layer, ``step`` holds ``T - 1``, ``layer`` holds the index of the last layer.

    Parameters
    ----------
    model : golden.manifest.Model

    Returns
    -------
    amaranth.lib.data.StructLayout
    """
    shapes = model.shapes
    lif = lif_layer_indices(model)
    neurons = max([_neuron_count(shapes[index][1]) for index in lif] or [1])
    return data.StructLayout({
        "neuron": unsigned(bits_for_count(neurons)),
        "step": unsigned(bits_for_count(model.time_steps)),
        "layer": unsigned(bits_for_count(len(model.layers))),
    })


def readout_layout(layer):
    """Layout of the readout core's result: ``{"cls": unsigned(..), "readout": ArrayLayout(signed(B), M)}``.

    Parameters
    ----------
    layer : golden.manifest.Dense
        The readout layer (``M = out_features`` classes, ``B`` its neuron's ``mem_bits``).

    Returns
    -------
    amaranth.lib.data.StructLayout
    """
    return data.StructLayout({
        "cls": unsigned(bits_for_count(layer.out_features)),
        "readout": data.ArrayLayout(signed(layer.neuron.mem_bits), layer.out_features),
    })


def result_layout(model):
    """Layout of the result of one inference of ``model``: :func:`readout_layout` with the cycle count.

    ``{"cls": unsigned(..), "cycles": unsigned(32), "readout": ArrayLayout(signed(B), n_classes)}`` where ``B`` is
    the ``mem_bits`` of the readout layer (the last layer).

    Parameters
    ----------
    model : golden.manifest.Model

    Returns
    -------
    amaranth.lib.data.StructLayout
    """
    readout = readout_layout(model.layers[-1]).members
    return data.StructLayout({"cls": readout["cls"], "cycles": unsigned(CYCLES_BITS), "readout": readout["readout"]})


# -- the codec: Amaranth's own constants, checked by a round trip ---------------------------------------------------

def _plain(const):
    """A ``data.Const`` as nested dicts (structs) and lists (arrays) of Python ints."""
    if not isinstance(const, data.Const):
        return int(const)
    layout = const.shape()
    if isinstance(layout, data.ArrayLayout):
        return [_plain(const[index]) for index in range(layout.length)]
    return {name: _plain(const[name]) for name, _ in layout}


def _normal(value):
    """``value`` with NumPy arrays and scalars and tuples turned into lists and ints (what ``Layout.const`` takes)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {name: _normal(item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(item) for item in value]
    return value


def _difference(want, got, path):
    """The first field where ``want`` (what the caller gave) and ``got`` (its round trip) differ, as a message."""
    where = path or "payload"
    if isinstance(got, dict):
        if not isinstance(want, dict):
            return f"field {where}: expected a dict of {list(got)}, not {want!r}"
        for name in got:
            if name not in want:
                return f"field {path + '.' if path else ''}{name} is missing"
            found = _difference(want[name], got[name], f"{path}.{name}" if path else name)
            if found:
                return found
        return None
    if isinstance(got, list):
        if not isinstance(want, list) or len(want) != len(got):
            return f"field {where}: expected {len(got)} elements, not {want!r}"
        for index, (w, g) in enumerate(zip(want, got)):
            found = _difference(w, g, f"{where}[{index}]")
            if found:
                return found
        return None
    if isinstance(want, bool) or not isinstance(want, int):
        return f"field {where}: expected an integer, not {want!r}"
    if want != got:
        return f"field {where}: value {want} does not fit its field (it would read back as {got})"
    return None


def pack(layout, value):
    """Pack a nested dict/list ``value`` into the flat integer of ``layout``.

    The bits are Amaranth's own (``layout.const(value).as_bits()``); the value is read back with
    ``layout.from_bits`` and compared, so that a missing field or a value that does not fit is refused rather than
    truncated as ``Layout.const`` alone would.

    Parameters
    ----------
    layout : amaranth.lib.data.Layout
    value : dict or list
        One entry per field (lists for array layouts, NumPy arrays accepted); every field is required.

    Returns
    -------
    int
        The bit vector, fields from the least significant bit in declaration order.

    Raises
    ------
    ValueError
        If a field is missing or unknown, or a value does not fit its field (the message names the field).
    """
    want = _normal(value)
    try:
        bits = layout.const(want).as_bits()
    except (TypeError, ValueError) as error:
        raise ValueError(f"payload {value!r} does not match {layout!r}: {error}") from None
    problem = _difference(want, _plain(layout.from_bits(bits)), "")
    if problem:
        raise ValueError(problem)
    return bits


def unpack(layout, bits):
    """Unpack the flat integer ``bits`` of ``layout`` (``layout.from_bits``) into nested dicts/lists of ints.

    An array field is always a list, also of one element.

    Raises
    ------
    ValueError
        If ``bits`` is negative or wider than the layout.
    """
    bits = int(bits)
    if bits < 0 or bits >> layout.size:
        raise ValueError(f"payload {bits:#x} does not fit the {layout.size}-bit layout")
    return _plain(layout.from_bits(bits))


def pack_spike_event(index, end, index_bits):
    """Pack a spike event (``end`` = 0 or 1) into an integer of ``index_bits + 1`` bits."""
    return pack(spike_event(index_bits), {"index": int(index), "end": int(end)})


def unpack_spike_event(bits, index_bits):
    """Unpack a spike event into ``(index, end)``."""
    fields = unpack(spike_event(index_bits), bits)
    return fields["index"], fields["end"]


def pack_debug_event(model, layer, step, neuron):
    """Pack a debug event of ``model`` into an integer."""
    return pack(debug_event(model), {"neuron": int(neuron), "step": int(step), "layer": int(layer)})


def unpack_debug_event(model, bits):
    """Unpack a debug event of ``model`` into ``(layer, step, neuron)``."""
    fields = unpack(debug_event(model), bits)
    return fields["layer"], fields["step"], fields["neuron"]


def unpack_result(model, bits):
    """Unpack a result of ``model`` into ``{"cls": int, "cycles": int, "readout": [int, ...]}``."""
    return unpack(result_layout(model), bits)
