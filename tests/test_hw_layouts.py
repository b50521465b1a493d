"""hw.layouts: field widths derived from the model, and pack/unpack against Amaranth's own struct constants."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from golden.randmodel import random_model
from hw.layouts import (bits_for_count, debug_event, lif_layer_indices, pack, pack_debug_event, pack_spike_event,
                        result_layout, spike_event, unpack, unpack_debug_event, unpack_result, unpack_spike_event)


def test_bits_for_count():
    assert [bits_for_count(n) for n in (1, 2, 3, 4, 5, 384, 385, 3072)] == [1, 1, 2, 2, 3, 9, 9, 12]
    with pytest.raises(ValueError, match="count must be a positive integer, not 0"):
        bits_for_count(0)


def test_spike_event_layout():
    layout = spike_event(9)
    assert layout.size == 10
    assert layout.members == {"index": unsigned(9), "end": unsigned(1)}
    assert pack_spike_event(383, 0, 9) == 383
    assert pack_spike_event(0, 1, 9) == 1 << 9
    assert unpack_spike_event(layout.const({"index": 17, "end": 1}).as_bits(), 9) == (17, 1)
    with pytest.raises(ValueError, match="spike event index width must be a positive integer, not 0"):
        spike_event(0)
    with pytest.raises(ValueError, match=r"^field index: value 512 does not fit its field \(it would read back as 0\)$"):
        pack_spike_event(512, 0, 9)


def test_model_layouts():
    model = random_model(3, input_shape=(1, 8, 12), hidden=[8], pool=(2, 2), classes=4, time_steps=5,
                         out_channels=2, kernel=(3, 3), padding=(1, 1), stride=(1, 1))
    assert lif_layer_indices(model) == [0, 2]
    layout = debug_event(model)
    assert layout.members == {"neuron": unsigned(bits_for_count(2 * 8 * 12)), "step": unsigned(3),
                              "layer": unsigned(2)}
    bits = pack_debug_event(model, 2, 4, 7)
    assert bits == layout.const({"neuron": 7, "step": 4, "layer": 2}).as_bits()
    assert unpack_debug_event(model, bits) == (2, 4, 7)
    result = result_layout(model)
    b = model.layers[-1].neuron.mem_bits
    assert result.members == {"cls": unsigned(2), "cycles": unsigned(32),
                              "readout": data.ArrayLayout(signed(b), 4)}
    value = {"cls": 3, "cycles": 123456, "readout": [-(1 << (b - 1)), -1, 0, (1 << (b - 1)) - 1]}
    assert unpack_result(model, result.const(value).as_bits()) == value
    assert pack(result, value) == result.const(value).as_bits()


def test_pack_refuses_bad_values():
    layout = data.StructLayout({"a": unsigned(3), "b": data.ArrayLayout(signed(4), 2)})
    with pytest.raises(ValueError, match="^field b is missing$"):
        pack(layout, {"a": 1})
    with pytest.raises(ValueError, match="refers to key 'c', which is not a part of the layout"):
        pack(layout, {"a": 1, "b": [0, 0], "c": 2})
    with pytest.raises(ValueError, match=r"^field b\[1\]: value 8 does not fit its field \(it would read back as -8\)$"):
        pack(layout, {"a": 1, "b": [0, 8]})
    with pytest.raises(ValueError, match=r"^field b: expected 2 elements, not \[0\]$"):
        pack(layout, {"a": 1, "b": [0]})
    with pytest.raises(ValueError, match="'float' object cannot be interpreted as an integer"):
        pack(layout, {"a": 1.5, "b": [0, 0]})
    assert pack(layout, {"a": np.int64(5), "b": np.array([-8, 7])}) == layout.const({"a": 5, "b": [-8, 7]}).as_bits()
    with pytest.raises(ValueError, match="does not fit the 11-bit layout"):
        unpack(layout, 1 << 11)
    rng = np.random.default_rng(0)
    for bits in rng.integers(0, 1 << 11, 50):
        assert pack(layout, unpack(layout, int(bits))) == int(bits)


def test_one_element_array_stays_a_list():
    """A model with one class: the readout is a list of one value, not a scalar."""
    layout = data.StructLayout({"cls": unsigned(1), "readout": data.ArrayLayout(signed(6), 1)})
    bits = pack(layout, {"cls": 0, "readout": [-3]})
    assert unpack(layout, bits) == {"cls": 0, "readout": [-3]}


def test_result_layout_extends_the_readout_core_layout():
    from hw.layouts import readout_layout
    from hw.readout import readout_layout as core_layout

    model = random_model(4, input_shape=(1, 6, 6), hidden=[5], classes=3)
    assert core_layout is readout_layout
    readout = readout_layout(model.layers[-1])
    result = result_layout(model)
    assert result.members == {"cls": readout.members["cls"], "cycles": unsigned(32),
                              "readout": readout.members["readout"]}
