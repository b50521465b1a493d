"""The one adapter between the flow and the hardware generator's API.

Everything the build needs from the generator goes through these few functions: the plan (:func:`hw.plan.plan`, the
single source of the hardware's parameters, on the board's device), the network built from it
(:class:`hw.network.Network`), the cycle model (:func:`hw.cycles.cycles`), the fit check
(:func:`hw.resources.check_fit`) and what synthesis must be told about the design (:func:`synthesis_overrides`).
"""

from hw.resources import FitError

__all__ = ["FitError", "make_plan", "plan_params", "make_network", "cycle_totals", "check_fit", "synthesis_overrides"]


def make_plan(model, *, device=None, params=None):
    """The hardware plan of ``model`` on ``device`` (default: the iCE40UP5K) with the per-layer overrides ``params``.

    Raises
    ------
    ValueError
        If an override names an unknown layer or option, or is out of range (the message names the layer).
    """
    from hw.plan import plan

    return plan(model, device=device, params=params)


def plan_params(model, device, params=None):
    """The hardware options a plan of ``model`` on ``device`` takes (:func:`hw.plan.plan_params`): ``params``, else
    the model's own for the device."""
    from hw.plan import plan_params as options

    return options(model, device, params)


def make_network(plan, *, debug=False):
    """The accelerator (:class:`hw.network.Network`) that ``plan`` describes."""
    from hw.network import Network

    return Network(plan, debug=debug)


def cycle_totals(plan, spikes):
    """Cycles per sample of the generated hardware (the cycle model) for the golden model's ``spikes``."""
    from hw.cycles import cycles

    return cycles(plan, spikes).total


def check_fit(plan, *, board, force=False, flash=False):
    """The pre-synthesis fit check of ``plan`` on ``board``: ``(Need, warnings)``; ``flash``: the design reads its
    weight image from the board's SPI flash (its reader counts in the logic).

    Raises
    ------
    FitError
        If the model cannot fit the board's device (unless ``force``), naming the resource and the bound.
    """
    from hw.resources import check_fit as check

    return check(plan, board=board.name, force=force, flash=flash)


def synthesis_overrides(device):
    """The Amaranth build overrides of a design for ``device``: its synthesis options, and the Yosys commands run
    right after the design is read (:data:`hw.exclusive.SYNTHESIS_SCRIPT`: no read-during-write bypass for the
    memories that never read the word they write)."""
    from hw.exclusive import SYNTHESIS_SCRIPT

    return {"synth_opts": device.synth_options, "script_after_read": SYNTHESIS_SCRIPT}
