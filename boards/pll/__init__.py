"""Clock generation per FPGA family: one module each (:mod:`boards.pll.ice40`, :mod:`boards.pll.ecp5`,
:mod:`boards.pll.gowin`), chosen by the board's device.

A family module provides ``pll_config(f_in, f_out)`` (the divider setting closest to a request, or the reference
divided in the fabric), ``achievable_clocks(f_in, low=, high=)``, ``fastest_clock(f_in, fmax)``, ``PLLError``,
``clock_source(m, pin, config, primitive)`` (the board's clock pin as the PLL takes it) and the gateware
``PLLDomain(config=, source=, primitive=)`` that drives a clock domain with its own power-on reset
(:mod:`boards.pll.reset`); a setting has ``f_out``, ``direct`` and ``record`` (its dividers as plain data).
:func:`for_device` picks the module of a ``hw.device.Device``; adding a family means adding its module to
:data:`FAMILIES`. The iCE40 names are re-exported here for the code that predates the split.
"""

from . import ecp5, gowin, ice40
from .ice40 import (MAX_DIVIDE, OUT_MAX_HZ, OUT_MIN_HZ, PFD_MAX_HZ, PFD_MIN_HZ, VCO_MAX_HZ, VCO_MIN_HZ, PLLConfig,
                    PLLDomain, PLLError, achievable_clocks, clock_source, fastest_clock, filter_range, pll_config)

__all__ = ["FAMILIES", "for_device", "PLLError", "PLLConfig", "pll_config", "filter_range", "PLLDomain", "clock_source",
           "achievable_clocks", "fastest_clock", "PFD_MIN_HZ", "PFD_MAX_HZ", "VCO_MIN_HZ", "VCO_MAX_HZ", "OUT_MIN_HZ",
           "OUT_MAX_HZ", "MAX_DIVIDE"]

#: The clock module of each FPGA family (``hw.device.Device.family``).
FAMILIES = {"ice40": ice40, "ecp5": ecp5, "gowin": gowin}


def for_device(device):
    """The clock module of ``device``'s family.

    Raises
    ------
    ValueError
        If no module knows the family.
    """
    try:
        return FAMILIES[device.family]
    except KeyError:
        raise ValueError(f"no clock generator for the {device.family} family of {device.name} "
                         f"(known: {', '.join(sorted(FAMILIES))}); add boards/pll/{device.family}.py") from None
