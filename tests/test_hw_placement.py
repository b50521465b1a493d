"""Where the plan puts weights (block RAM or SPRAM), the automatic choice, and the fit check counting both."""

import dataclasses

import pytest

from golden.randmodel import random_model
from hw.device import get as get_device
from hw.plan import plan
from hw.resources import FitError, check_fit, estimate

DEVICE = get_device("iCE40UP5K")


def _wide_model():
    """conv1 (1x1) keeps the 16x24 map, then fc1 of 384 x 128 (49,152 weights, as fsdd_deep's fc1), readout 10."""
    return random_model(7, input_shape=(1, 16, 24), out_channels=1, kernel=(1, 1), stride=(1, 1), padding=(0, 0),
                        pool=False, hidden=[128], classes=10, time_steps=2)


def test_weights_stay_in_block_ram_by_default():
    from golden.manifest import load

    p = plan(load("models/fsdd_scnn"))
    assert [lp.weights for lp in p.layers if hasattr(lp, "weights")] == ["bram", "bram"]
    assert (p.ebr, p.sprams) == (30, 1)  # the SPRAM holds conv1's input map


def test_weights_in_spram_by_option():
    from golden.manifest import load

    p = plan(load("models/fsdd_scnn"), params={"fc1": {"weights": "spram"}})
    fc1 = p.layer("fc1")
    assert fc1.weights == "spram" and p.layer("out").weights == "bram"
    # fewest SPRAMs first: 2 lanes (16-bit words), 14 cycles per spike, 384 rows x 16 words in one SPRAM
    assert (fc1.lanes, fc1.groups, fc1.weight_memory.width, fc1.weight_memory.depth) == (2, 14, 16, 6144)
    assert (fc1.weight_memory.sprams, fc1.weight_memory.blocks) == (1, 0)
    assert (p.ebr, p.sprams) == (9, 2)
    wide = plan(load("models/fsdd_scnn"), params={"fc1": {"weights": "spram", "lanes": 7}})
    assert wide.layer("fc1").weight_memory.sprams == 4  # 56-bit words: four banks side by side


def test_large_dense_layer_goes_to_spram_automatically():
    model = _wide_model()
    p = plan(model)
    fc1 = p.layer("fc1")
    assert fc1.weights == "spram" and p.layer("out").weights == "bram"
    assert fc1.weight_memory.sprams == 2 and p.ebr <= DEVICE.block_ram.count
    check_fit(p, board="icebreaker")
    # forcing block RAM is refused by the fit check, naming the layer and the bound
    forced = plan(model, params={"fc1": {"weights": "bram"}})
    assert forced.layer("fc1").weights == "bram"
    with pytest.raises(FitError, match=r"^model random_7 needs 102 block RAMs \(400,448 bits\); the iCE40UP5K on "
                                       r"icebreaker has 30 \(122,880 bits\); the largest user is fc1 with 98$"):
        check_fit(forced, board="icebreaker")


def test_spram_overflow_names_the_memories_and_the_bound():
    model = _wide_model()
    p = plan(model, params={"fc1": {"weights": "spram", "lanes": 8}, "out": {"weights": "spram", "lanes": 2}})
    need = estimate(p)
    assert need.spram_users == (("fc1.weights", 4), ("out.weights", 1))
    with pytest.raises(FitError, match=r"^model random_7 needs 5 SPRAMs \(fc1.weights 4, out.weights 1\); the "
                                       r"iCE40UP5K on icebreaker has 4$"):
        check_fit(p, board="icebreaker")


def test_weights_option_is_checked():
    model = _wide_model()
    with pytest.raises(ValueError, match=r"^layer fc1: weights must be 'bram' or 'spram', not 'flash'$"):
        plan(model, params={"fc1": {"weights": "flash"}})
    no_spram = dataclasses.replace(DEVICE, name="test-no-spram", wide_ram=None)
    with pytest.raises(ValueError, match=r"^layer out: weights 'spram' needs a device with SPRAM; the test-no-spram "
                                         r"has none \(use 'bram'\)$"):
        plan(model, device=no_spram, params={"out": {"weights": "spram"}})
    # without SPRAM nothing moves: the fit check refuses
    assert plan(model, device=no_spram).layer("fc1").weights == "bram"


def test_build_writes_the_weight_image_beside_the_design(tmp_path):
    """hw.build (without the tools): weights.bin holds the plan's image; the records and reports name it; a model
    whose weights are all in block RAM gets none."""
    import json
    from pathlib import Path

    from flow import build as hwbuild
    from golden.manifest import load
    from hw.weights import image

    tiny = Path(__file__).resolve().parents[1] / "models" / "tiny"
    params = {"fc1": {"weights": "spram"}}
    out = tmp_path / "spram"
    hwbuild.build(board="icebreaker", model_dir=tiny, out=out, clock_mhz=24, do_build=False, progress=False,
                  params=params)
    words = image(plan(load(tiny), params=params))
    assert (out / "weights.bin").read_bytes() == b"".join(w.to_bytes(2, "little") for w in words)
    report = json.loads((out / "report.json").read_text())
    assert report["weight_image"]["bytes"] == 2 * len(words) and report["weight_image"]["chunks"] == 1
    assert report["estimate"]["spram"] == 1 and report["estimate"]["spram_users"] == [["fc1.weights", 1]]
    assert "## Weight image" in (out / "report.md").read_text()
    fit = json.loads((out / "fit.json").read_text())
    assert (fit["spram"], fit["spram_available"]) == (1, 4)
    plain = tmp_path / "plain"
    hwbuild.build(board="icebreaker", model_dir=tiny, out=plain, clock_mhz=24, do_build=False, progress=False)
    assert not (plain / "weights.bin").exists()
    assert json.loads((plain / "report.json").read_text())["weight_image"] is None
