"""hw.resources: the estimate and the fit check of a plan on its device, and the board code's thin layer over it."""

import dataclasses
from pathlib import Path

import pytest

from golden.randmodel import random_model
from hw.device import get as get_device
from hw.plan import plan
from hw.resources import Budget, FitError, check_fit, estimate

MODELS = Path(__file__).resolve().parents[1] / "models"
TINY = MODELS / "tiny"
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


def test_flash_reader_counts_in_the_logic():
    """A --flash design holds the SPI flash reader beside the board logic: its own row, in the total and the check."""
    p = plan(_tiny())
    without, with_reader = estimate(p), estimate(p, flash=True)
    assert DEVICE.flash_reader_logic > 0
    assert with_reader.breakdown[:-1] == without.breakdown
    assert with_reader.breakdown[-1] == ("SPI flash reader", DEVICE.flash_reader_logic, 0)
    assert with_reader.logic_cells == without.logic_cells + DEVICE.flash_reader_logic
    assert (with_reader.ebr, with_reader.spram) == (without.ebr, without.spram)
    # a device with room for the network but not for the reader: refused only with --flash
    tight = dataclasses.replace(DEVICE, logic_cells=without.logic_cells + DEVICE.flash_reader_logic // 2)
    check_fit(plan(_tiny(), device=tight), board="tight-board")
    with pytest.raises(FitError, match=r"logic cells \(estimate\); the iCE40UP5K on tight-board"):
        check_fit(plan(_tiny(), device=tight), board="tight-board", flash=True)


def test_default_model_figures():
    """The default model: 30 block RAMs, one SPRAM (the input map), the calibrated logic estimate."""
    from golden.manifest import load

    need = estimate(plan(load(MODELS / "fsdd_scnn")))
    assert (need.ebr, need.spram, need.dsp) == (30, 1, 0)
    assert 3000 < need.logic_cells < DEVICE.logic_cells


#: Placed builds (README: the "Boards" table and the builds quoted after it): board, model, --flash, nextpnr's logic
#: cells or LUT4s.
PLACED = [
    ("icebreaker", "fsdd_robust", False, 4774),
    ("icebreaker", "fsdd_robust", True, 4958),
    ("icebreaker", "fsdd_scnn", False, 3602),
    ("icebreaker", "fsdd_deep2", False, 4994),
    ("tangnano9k", "fsdd_scnn", False, 4047),
    ("ulx3s-85f", "fsdd_scnn", False, 10893),
    ("ulx3s-25f", "fsdd_scnn", False, 8109),
    ("ulx3s-85f", "fsdd_deep", False, 22703),
]


@pytest.mark.parametrize("board,model,flash,placed", PLACED)
def test_estimate_refuses_no_placed_build(board, model, flash, placed):
    """The calibration's rule: each family's factor is at or just below the smallest of its builds' ratios, so no
    design that placed is estimated above what it took (and so refused by the check), and none is under-estimated by
    more than half."""
    from boards import BOARDS
    from golden.manifest import load

    device = BOARDS[board].device
    need = estimate(plan(load(MODELS / model), device=device), flash=flash)
    assert placed / 2 < need.logic_cells <= placed


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
