"""hw.plan: pure Python, frozen, the single source of the default model's parameters; the topology rules of the
kinds; the device's part in the plan."""

import dataclasses
import subprocess
import sys

import pytest

from golden.manifest import load
from golden.randmodel import random_model
from hw.device import get as get_device
from hw.kinds import KINDS, kind_of, kinds_of
from hw.plan import plan

DEVICE = get_device("iCE40UP5K")


def test_plan_imports_no_amaranth():
    code = ("import sys; from golden.manifest import load; from hw.plan import plan; import hw.resources; "
            "plan(load('models/fsdd_scnn')); print(sorted(m for m in sys.modules if m.startswith('amaranth')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_default_model_plan():
    p = plan(load("models/fsdd_scnn"))
    assert [(lp.name, lp.kind, lp.lanes) for lp in p.layers] == \
        [("conv1", "conv2d", 1), ("pool1", "pool", None), ("fc1", "dense", 7), ("out", "readout", 2)]
    conv, pool, fc1, out = p.layers
    assert (conv.spike_logic, conv.breakpoints, conv.input_memory, conv.dsp_multipliers) == ("table", 10, "spram", 8)
    assert (fc1.groups, fc1.stride, fc1.buffer.row, fc1.buffer.rows, fc1.buffer.listed) == (4, 4, 12, 32, True)
    assert (out.buffer.row, out.buffer.rows, out.buffer.listed) == (16, 2, False)
    assert p.ebr == 30 and p.memory_bits == 112_506 and p.front == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        fc1.lanes = 14


def test_every_layer_has_one_kind():
    model = load("models/fsdd_scnn")
    assert [kind.name for kind in kinds_of(model.layers)] == ["conv2d", "pool", "dense", "readout"]
    assert set(KINDS) == {"conv2d", "mapdense", "pool", "spikeconv", "dense", "readout"}
    conv, _, fc1, _ = model.layers
    assert kind_of(conv, on_map=False).name == "spikeconv" and kind_of(fc1, on_map=True).name == "mapdense"


def test_topology_refusals():
    model = random_model(3, input_shape=(1, 6, 8), hidden=[5], pool=(2, 2), time_steps=2)
    conv, pool, fc1, out = model.layers

    def refused(layers, message):
        with pytest.raises(ValueError, match=message):
            plan(dataclasses.replace(model, layers=layers))

    refused([pool, conv, fc1, out], r"^layer pool1: no hardware for a pool layer on the INT8 input map \(kinds: "
                                    r"conv2d, dense, mapdense, pool, spikeconv, readout; see docs/hardware.md")
    refused([conv, pool, out, fc1], r"the last layer must be dense with the integrating readout, and only the last")


def test_the_device_decides():
    model = load("models/fsdd_scnn")
    no_spram = dataclasses.replace(DEVICE, name="test-no-spram", wide_ram=None, dsp=None)
    p = plan(model, device=no_spram)
    assert p.device is no_spram
    assert (p.layers[0].input_memory, p.layers[0].dsp_multipliers) == ("bram", 0)
    assert p.ebr == 32  # the map in two more block RAMs
    with pytest.raises(ValueError, match=r"^layer conv1: input_memory 'spram' needs a device with SPRAM; the "
                                         r"test-no-spram has none \(use 'bram'\)$"):
        plan(model, device=no_spram, params={"conv1": {"input_memory": "spram"}})
    with pytest.raises(ValueError, match=r"^unknown device 'iCE99' \(known: GW1NR-9, LFE5U-25F, LFE5U-85F, iCE40UP5K\)$"):
        plan(model, device="iCE99")
