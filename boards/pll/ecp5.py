"""The ECP5 PLL (``EHXPLLL``): divider computation and a clock domain with its own power-on reset.

With the feedback taken from the primary output ``CLKOP``, the ECP5 sysCLOCK PLL (Lattice TN1263) makes

    f_out = f_in * CLKFB_DIV / CLKI_DIV,    VCO = f_out * CLKOP_DIV

under these limits: phase detector input ``f_in / CLKI_DIV`` from 3.125 to 400 MHz, VCO from 400 to 800 MHz,
output from 3.125 to 400 MHz, every divider 1 ... 128. :func:`pll_config` searches the settings for the output
closest to the request, with the VCO nearest 600 MHz (as ``ecppll`` does; from the ULX3S's 25 MHz, 60 MHz is
``CLKI_DIV`` 5, ``CLKFB_DIV`` 12, ``CLKOP_DIV`` 10, ``CLKOP_CPHASE`` 4). nextpnr derives the output's timing constraint from the reference's.
"""

import dataclasses

from . import search

__all__ = ["PLLError", "PLLConfig", "pll_config", "achievable_clocks", "fastest_clock", "clock_source", "PLLDomain",
           "PFD_MIN_HZ", "PFD_MAX_HZ", "VCO_MIN_HZ", "VCO_MAX_HZ", "OUT_MIN_HZ", "OUT_MAX_HZ", "PRIMITIVE"]

PFD_MIN_HZ, PFD_MAX_HZ = 3.125e6, 400e6
VCO_MIN_HZ, VCO_MAX_HZ = 400e6, 800e6
VCO_MID_HZ = 600e6
OUT_MIN_HZ, OUT_MAX_HZ = 3.125e6, 400e6
MAX_DIV = 128
PRIMITIVE = "EHXPLLL"


class PLLError(ValueError):
    """A requested frequency cannot be made by the ECP5 PLL."""


@dataclasses.dataclass(frozen=True)
class PLLConfig:
    """One setting of the ``EHXPLLL`` dividers and the frequencies it gives.

    Members
    -------
    f_in, f_out, f_pfd, f_vco : float
        Input, output, phase detector and VCO frequency in Hz.
    clki_div, clkfb_div, clkop_div : int
        The primitive's dividers.
    direct : bool
        Run from the reference without the PLL (``f_out == f_in``).
    """

    f_in: float
    f_out: float
    f_pfd: float
    f_vco: float
    clki_div: int
    clkfb_div: int
    clkop_div: int
    direct: bool = False

    @classmethod
    def bypass(cls, f_in):
        """The reference clock without the PLL."""
        return cls(f_in, f_in, f_in, 0.0, 1, 1, 1, direct=True)

    @property
    def divide(self):
        return 1

    @property
    def record(self):
        """The setting as plain data (for the build's records)."""
        return {"clki_div": self.clki_div, "clkfb_div": self.clkfb_div, "clkop_div": self.clkop_div,
                "f_vco_mhz": self.f_vco / 1e6, "direct": self.direct}

    @property
    def parameters(self):
        """Parameters of ``EHXPLLL`` for this setting (feedback from ``CLKOP``, the other outputs off)."""
        return {
            "p_PLLRST_ENA": "DISABLED", "p_INTFB_WAKE": "DISABLED", "p_STDBY_ENABLE": "DISABLED",
            "p_DPHASE_SOURCE": "DISABLED", "p_OUTDIVIDER_MUXA": "DIVA", "p_FEEDBK_PATH": "CLKOP",
            "p_CLKI_DIV": self.clki_div, "p_CLKFB_DIV": self.clkfb_div,
            "p_CLKOP_ENABLE": "ENABLED", "p_CLKOP_DIV": self.clkop_div,
            "p_CLKOP_CPHASE": self.clkop_div // 2 - 1 if self.clkop_div > 1 else 0, "p_CLKOP_FPHASE": 0,
        }


def _settings(f_in):
    """Every setting within the PLL's limits for an ``f_in`` reference, lowest ``CLKI_DIV`` first."""
    for clki in range(1, MAX_DIV + 1):
        f_pfd = f_in / clki
        if f_pfd < PFD_MIN_HZ:
            break
        if f_pfd > PFD_MAX_HZ:
            continue
        for clkfb in range(1, MAX_DIV + 1):
            out = f_pfd * clkfb
            if out > OUT_MAX_HZ:
                break
            if out < OUT_MIN_HZ:
                continue
            # the output divider whose VCO is nearest the middle of its range (as ecppll chooses)
            dividers = [op for op in range(1, MAX_DIV + 1) if VCO_MIN_HZ <= out * op <= VCO_MAX_HZ]
            if dividers:
                clkop = min(dividers, key=lambda op: abs(out * op - VCO_MID_HZ))
                yield PLLConfig(f_in, out, f_pfd, out * clkop, clki, clkfb, clkop)


def pll_config(f_in, f_out, *, tolerance=0.005):
    """The ``EHXPLLL`` setting whose output is closest to ``f_out`` from an ``f_in`` reference (the reference
    itself, without the PLL, for a request equal to it).

    Raises
    ------
    PLLError
        If ``f_out`` is outside 3.125 ... 400 MHz or no setting comes within ``tolerance``.
    """
    return search.closest(_settings(f_in), f_in, f_out, tolerance=tolerance, family="ECP5",
                          out_range=(OUT_MIN_HZ, OUT_MAX_HZ), error=PLLError, bypass=PLLConfig.bypass)


def achievable_clocks(f_in, *, low=None, high=OUT_MAX_HZ):
    """Every frequency the board can run at from an ``f_in`` reference, ascending (Hz)."""
    return search.clocks(f_in, _settings(f_in), low=low, high=high)


def fastest_clock(f_in, fmax):
    """The fastest achievable clock not above ``fmax`` Hz."""
    return search.fastest(f_in, fmax, achievable_clocks, PLLError)


def clock_source(m, pin, config, primitive=PRIMITIVE):
    """The reference clock as :class:`PLLDomain` takes it: the pin through an input buffer."""
    return search.buffered_source(m, pin, config, primitive)


def PLLDomain(*, config, source, primitive=PRIMITIVE, domain="sync", reset_us=20.0):
    """A :class:`boards.pll.search.InstanceDomain` on ``EHXPLLL``: drives ``domain`` from the PLL with a power-on
    reset after lock (or from the reference itself for a bypass setting).

    Raises
    ------
    ValueError
        If ``primitive`` is not ``"EHXPLLL"`` or ``reset_us`` is not positive.
    TypeError
        If ``config`` is not an ECP5 :class:`PLLConfig`.
    """
    if primitive != PRIMITIVE:
        raise ValueError(f"ECP5 PLL primitive must be {PRIMITIVE!r}, not {primitive!r}")
    if not isinstance(config, PLLConfig):
        raise TypeError(f"config must be an ECP5 PLLConfig, not {config!r}")
    ports = {"clock_in": "CLKI", "clock_out": "CLKOP", "lock": "LOCK", "feedback": "CLKFB",
             "i_RST": 0, "i_STDBY": 0, "i_PHASESEL0": 0, "i_PHASESEL1": 0, "i_PHASEDIR": 1, "i_PHASESTEP": 1,
             "i_PHASELOADREG": 1, "i_PLLWAKESYNC": 0, "i_ENCLKOP": 0}
    attributes = {"a_FREQUENCY_PIN_CLKI": f"{config.f_in / 1e6:g}", "a_FREQUENCY_PIN_CLKOP": f"{config.f_out / 1e6:g}",
                  "a_ICP_CURRENT": "12", "a_LPF_RESISTOR": "8", "a_MFG_ENABLE_FILTEROPAMP": "1",
                  "a_MFG_GMCREF_SEL": "2"}
    return search.InstanceDomain(config=config, source=source, primitive=primitive, ports=ports,
                                 attributes=attributes, domain=domain, reset_us=reset_us)
