"""Device budgets and the fit check, as the board code has used them: a thin layer over :mod:`hw.resources`.

The estimate and the fit check read the plan and its device (:mod:`hw.plan`, :mod:`hw.device`, each layer kind's
own estimate); this module keeps the names the board descriptions and the build use (:data:`ICE40UP5K_SG48`,
``check_fit(model, budget, ...)``) until their callers plan first and call :func:`hw.resources.check_fit`.
"""

from hw.device import get as get_device
from hw.resources import LOGIC_WARN, Budget, FitError, Need
from hw.resources import check_fit as check_plan
from hw.resources import estimate as estimate_plan

__all__ = ["Budget", "ICE40UP5K_SG48", "Need", "FitError", "estimate", "check_fit", "LOGIC_WARN"]

#: iCE40UP5K in the SG48 package (iCEBreaker, iCEBreaker bitsy, UPduino v3).
ICE40UP5K_SG48 = Budget.of(get_device("iCE40UP5K"))


def estimate(model, params=None):
    """:func:`hw.resources.estimate` of ``model`` planned on the iCE40UP5K with ``params``."""
    from hw.plan import plan
    return estimate_plan(plan(model, params=params))


def check_fit(model, budget, *, params=None, board="board", force=False):
    """:func:`hw.resources.check_fit` of ``model`` planned with ``params`` on the device that ``budget`` names."""
    from hw.plan import plan
    return check_plan(plan(model, device=get_device(budget.device), params=params), board=board, force=force)
