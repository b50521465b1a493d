"""Payload layouts shared by the cores, the testbenches and the golden model's packing helpers.

Every stream between spikesmith cores carries one of the :class:`amaranth.lib.data.StructLayout` payloads defined
here, so that each field is defined exactly once:

- :func:`spike_event`: the address event of a spike FIFO. For each time step ``t = 0 .. T-1`` a producer emits the
  spike events of that step (``end = 0``, ``index`` = flat neuron index, row-major ``(c, y, x)`` as in
  ``docs/arithmetic.md``) followed by exactly one end-of-step marker (``end = 1``, ``index = 0``).
- :func:`debug_event`: one spike of one LIF layer (``layer`` = index of the layer in ``model.layers``).
- :func:`result_layout`: the result of one inference (class, cycle count, readout values).

The pure-Python helpers :func:`pack` and :func:`unpack` convert between these payloads and plain integers (the flat
bit vector that Amaranth's Verilog backend puts on a ``*__payload`` port, fields from the least significant bit in
declaration order).
"""

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

__all__ = [
    "CYCLES_BITS",
    "bits_for_count",
    "spike_event",
    "debug_event",
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


def result_layout(model):
    """Layout of the result of one inference of ``model``.

    ``{"cls": unsigned(..), "cycles": unsigned(32), "readout": ArrayLayout(signed(B), n_classes)}`` where ``B`` is
    the ``mem_bits`` of the readout layer (the last layer).

    Parameters
    ----------
    model : golden.manifest.Model

    Returns
    -------
    amaranth.lib.data.StructLayout
    """
    readout = model.layers[-1]
    n_classes = readout.out_features
    return data.StructLayout({
        "cls": unsigned(bits_for_count(n_classes)),
        "cycles": unsigned(CYCLES_BITS),
        "readout": data.ArrayLayout(signed(readout.neuron.mem_bits), n_classes),
    })


# -- packing helpers -----------------------------------------------------------------------------------------------

def _size(shape):
    return Shape.cast(shape).width


def _check_fits(path, shape, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"field {path}: expected an integer, not {value!r}")
    if shape.signed:
        low, high = -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    else:
        low, high = 0, (1 << shape.width) - 1
    if not low <= value <= high:
        raise ValueError(f"field {path}: value {value} does not fit {shape} ({low} ... {high})")


def _pack(layout, value, path):
    if isinstance(layout, data.StructLayout):
        if not isinstance(value, dict):
            raise TypeError(f"field {path or 'payload'}: expected a dict, not {value!r}")
        unknown = set(value) - set(layout.members)
        if unknown:
            raise KeyError(f"field {path or 'payload'}: unknown fields {sorted(unknown)} "
                           f"(known: {list(layout.members)})")
        bits = 0
        for name, field in layout:
            if name not in value:
                raise KeyError(f"field {path + '.' if path else ''}{name} is missing")
            bits |= _pack(field.shape, value[name], f"{path}.{name}" if path else name) << field.offset
        return bits
    if isinstance(layout, data.ArrayLayout):
        values = list(value)
        if len(values) != layout.length:
            raise ValueError(f"field {path}: expected {layout.length} elements, not {len(values)}")
        bits = 0
        width = _size(layout.elem_shape)
        for index, element in enumerate(values):
            bits |= _pack(layout.elem_shape, int(element), f"{path}[{index}]") << (index * width)
        return bits
    shape = layout if not isinstance(layout, data.Layout) else layout.as_shape()
    _check_fits(path, shape, value)
    return value & ((1 << shape.width) - 1)


def _unpack(layout, bits):
    if isinstance(layout, data.StructLayout):
        return {name: _unpack(field.shape, (bits >> field.offset) & ((1 << _size(field.shape)) - 1))
                for name, field in layout}
    if isinstance(layout, data.ArrayLayout):
        width = _size(layout.elem_shape)
        mask = (1 << width) - 1
        return [_unpack(layout.elem_shape, (bits >> (index * width)) & mask) for index in range(layout.length)]
    shape = layout if not isinstance(layout, data.Layout) else layout.as_shape()
    if shape.signed and bits >> (shape.width - 1):
        return bits - (1 << shape.width)
    return bits


def pack(layout, value):
    """Pack a nested dict/list ``value`` into the flat integer of ``layout``.

    Parameters
    ----------
    layout : amaranth.lib.data.StructLayout or ArrayLayout
    value : dict or list
        One entry per field (lists for array layouts); every field is required.

    Returns
    -------
    int
        The bit vector, fields from the least significant bit in declaration order.

    Raises
    ------
    KeyError
        If a field is missing or unknown.
    ValueError
        If a value does not fit its field.
    """
    return _pack(layout, value, "")


def unpack(layout, bits):
    """Unpack the flat integer ``bits`` of ``layout`` into nested dicts/lists of Python ints.

    Parameters
    ----------
    layout : amaranth.lib.data.StructLayout or ArrayLayout
    bits : int
        Non-negative bit vector of at most ``layout.size`` bits.

    Returns
    -------
    dict or list

    Raises
    ------
    ValueError
        If ``bits`` is negative or wider than the layout.
    """
    bits = int(bits)
    if bits < 0 or bits >> layout.size:
        raise ValueError(f"payload {bits:#x} does not fit the {layout.size}-bit layout")
    return _unpack(layout, bits)


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
