"""The one adapter between the flow and the hardware generator's API.

Everything the build needs from the generator goes through these few functions, so that the switch to the plan as
the single source (``hw.plan.plan(model, device=..., params=...)``, ``hw.network.Network(plan)``,
``hw.cycles.cycles(plan, spikes)``, ``hw.resources.check_fit(plan, board=...)``) changes this module only.
"""

__all__ = ["FitError", "make_plan", "make_network", "cycle_totals", "check_fit"]

from boards.resources import FitError  # noqa: E402  (moves to hw.resources with the plan)


def make_plan(model, *, device=None, params=None):
    """The hardware plan of ``model`` with the per-layer overrides ``params``.

    Raises
    ------
    ValueError
        If an override names an unknown layer or option, or is out of range (the message names the layer).
    """
    from hw.network import plan

    return plan(model, params)


def make_network(model, plan, *, params=None, debug=False):
    """The accelerator (``hw.network.Network``) of ``model`` as ``plan`` describes it."""
    from hw.network import Network

    return Network(model, params=params, debug=debug)


def cycle_totals(model, plan, spikes):
    """Cycles per sample of the generated hardware (the cycle model) for the golden model's ``spikes``."""
    from golden.cycles import cycles

    return cycles(model, plan, spikes).total


def check_fit(model, plan, *, board, params=None, force=False):
    """The pre-synthesis fit check of ``model`` on ``board``: ``(Need, warnings)``.

    Raises
    ------
    FitError
        If the model cannot fit the board's device (unless ``force``), naming the resource and the bound.
    """
    from boards.resources import check_fit as check

    return check(model, board.budget, params=params, board=board.name, force=force)
