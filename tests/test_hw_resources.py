"""hw.resources: the estimate and the fit check of a plan on its device, and the board code's thin layer over it."""

import dataclasses
from pathlib import Path

import pytest

from golden.randmodel import random_model
from hw.device import get as get_device
from hw.plan import plan
from hw.resources import Budget, FitError, check_fit, estimate

TINY = Path(__file__).resolve().parents[1] / "models" / "tiny"
DEVICE = get_device("iCE40UP5K")


def _tiny():
    from golden.manifest import load

    if not (TINY / "manifest.json").is_file():
        pytest.skip(f"{TINY}: the tiny test model is missing")
    return load(TINY)


def test_estimate_of_tiny_model():
    p = plan(_tiny())
    need = estimate(p)
    assert 0 < need.ebr <= DEVICE.block_ram.count and need.ebr == p.ebr
    assert need.logic_cells > DEVICE.board_logic
    assert [row[0] for row in need.breakdown] == [lp.name for lp in p.layers] + ["board logic (UART, protocol, reset)"]
    assert sum(row[1] for row in need.breakdown) == need.logic_cells


def test_default_model_figures():
    """The default model: 30 block RAMs, one SPRAM (the input map), the calibrated logic estimate."""
    from golden.manifest import load

    need = estimate(plan(load("models/fsdd_scnn")))
    assert (need.ebr, need.spram, need.dsp) == (30, 1, 0)
    assert 3000 < need.logic_cells < DEVICE.logic_cells


def test_fit_check_accepts_tiny_model():
    need, warnings = check_fit(plan(_tiny()), board="icebreaker")
    assert need.ebr >= 1 and warnings == []


def test_fit_check_refuses_too_many_block_rams():
    # a wide first dense layer: weight ROM far beyond 30 EBRs
    model = random_model(1, input_shape=(1, 16, 48), out_channels=8, pool=(2, 2), hidden=[200], classes=10)
    with pytest.raises(FitError, match=r"^model random_1 needs \d+ block RAMs \([\d,]+ bits\); the iCE40UP5K on "
                                       r"icebreaker has 30 \(122,880 bits\); the largest user is fc1 with \d+") as e:
        check_fit(plan(model), board="icebreaker")
    assert e.value.budget == Budget.of(DEVICE) and e.value.need.ebr > 30
    need, warnings = check_fit(plan(model), board="icebreaker", force=True)
    assert any("ignored: --force" in w for w in warnings)


def test_fit_check_refuses_logic_on_a_smaller_device():
    small = dataclasses.replace(DEVICE, logic_cells=100)
    with pytest.raises(FitError, match=r"needs about [\d,]+ logic cells \(estimate\); the iCE40UP5K on tiny-board "
                                       r"has 100; the largest user is"):
        check_fit(plan(_tiny(), device=small), board="tiny-board")


def test_board_layer_keeps_its_names():
    from boards.resources import ICE40UP5K_SG48
    from boards.resources import check_fit as board_check_fit
    from boards.resources import estimate as board_estimate

    assert ICE40UP5K_SG48 == Budget("iCE40UP5K", "SG48", 5280, 30, 4, 8, 39, 1, 8)
    assert ICE40UP5K_SG48.ebr_bits == 122_880
    model = _tiny()
    assert board_estimate(model, {"fc1": {"lanes": 1}}) == estimate(plan(model, params={"fc1": {"lanes": 1}}))
    assert board_check_fit(model, ICE40UP5K_SG48, board="icebreaker")[0] == estimate(plan(model))
