"""Where the plan keeps the membranes of the sweeping cores (option ``state``), the automatic choice
(hw.plan.auto_state) and the SPRAM count of the fit check."""

import dataclasses

import pytest

from golden.manifest import load
from hw.device import get as get_device
from hw.plan import plan
from hw.resources import FitError, check_fit, estimate

DEVICE = get_device("iCE40UP5K")


def _memories(p):
    return {mem.name: mem for mem in p.memories}


def test_default_model_keeps_its_plan():
    p = plan(load("models/fsdd_scnn"))
    assert (p.ebr, p.sprams) == (30, 1)
    assert estimate(p).spram_users == (("conv1.input", 1),)


def test_overflowing_block_ram_moves_the_membranes_and_the_input_map():
    """fsdd_deep on the UP5K: after the weights of fc1 and fc2 went to SPRAM (3) and conv1's map (1), block RAM
    still overflows; conv2's membranes (12 EBR) take the map's SPRAM, the map goes back to block RAM (2 EBR)."""
    model = load("models/fsdd_deep")
    p = plan(model)
    mems = _memories(p)
    assert p.layer("conv2").state == "spram" and p.layer("conv1").input_memory == "bram"
    assert (mems["conv2.membranes"].kind, mems["conv2.membranes"].sprams) == ("spram", 1)
    assert estimate(p).spram_users == (("conv2.membranes", 1), ("fc1.weights", 2), ("fc2.weights", 1))
    kept = plan(model, params={"conv2": {"state": "bram"}})
    assert kept.layer("conv2").state == "bram" and kept.layer("conv1").input_memory == "spram"
    assert (kept.ebr, kept.sprams) == (p.ebr + 12 - 2, 4)
    # the map pinned to SPRAM by the user: no SPRAM left, nothing moves
    pinned = plan(model, params={"conv1": {"input_memory": "spram"}})
    assert pinned.layer("conv2").state == "bram" and pinned.ebr == kept.ebr
    # the same rule on a device with block RAM to spare moves nothing
    roomy = dataclasses.replace(DEVICE, name="test-roomy", block_ram=dataclasses.replace(DEVICE.block_ram, count=60))
    spare = plan(model, device=roomy)
    assert spare.layer("conv2").state == "bram" and spare.layer("conv1").input_memory == "spram"


def test_state_in_spram_counts_in_the_fit_check():
    model = load("models/fsdd_deep")
    p = plan(model, params={"conv1": {"input_memory": "spram"}, "conv2": {"state": "spram"},
                            "fc1": {"weights": "spram"}, "fc2": {"weights": "spram"}})
    assert p.sprams == 5
    with pytest.raises(FitError, match=r"^model fsdd_deep needs \d+ block RAMs .*; model fsdd_deep needs 5 SPRAMs "
                                       r"\(fc1.weights 2, conv1.input 1, conv2.membranes 1, fc2.weights 1\); the "
                                       r"iCE40UP5K on icebreaker has 4; "):
        check_fit(p, board="icebreaker")


def test_state_option_is_checked():
    model = load("models/fsdd_deep")
    with pytest.raises(ValueError, match=r"^layer conv2: state must be 'bram' or 'spram', not 'flash'$"):
        plan(model, params={"conv2": {"state": "flash"}})
    with pytest.raises(ValueError, match=r"^params\['fc1'\]: unknown parameters \['state'\] for a dense layer "):
        plan(model, params={"fc1": {"state": "spram"}})
    no_spram = dataclasses.replace(DEVICE, name="test-no-spram", wide_ram=None)
    with pytest.raises(ValueError, match=r"^layer conv2: state 'spram' needs a device with SPRAM; the test-no-spram "
                                         r"has none \(use 'bram'\)$"):
        plan(model, device=no_spram, params={"conv2": {"state": "spram"}})
    assert plan(model, device=no_spram).layer("conv2").state == "bram"
