"""The Gowin PLL (``rPLL`` of the GW1N(R)-9): divider computation and a clock domain with its own power-on reset.

The rPLL with internal feedback makes

    f_out = f_in * (FBDIV_SEL + 1) / (IDIV_SEL + 1),    VCO = f_out * ODIV_SEL

under these limits (the GW1NR-9C figures of Apicula's ``gowin_pll``): phase detector input
``f_in / (IDIV_SEL + 1)`` from 3 to 400 MHz, output from 3.125 to 600 MHz, VCO from 400 to 1,200 MHz, ``IDIV_SEL``
and ``FBDIV_SEL`` 0 ... 63, ``ODIV_SEL`` one of 2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128. From the Tang Nano 9K's
27 MHz, 81 MHz is ``IDIV_SEL`` 0, ``FBDIV_SEL`` 2, ``ODIV_SEL`` 8. nextpnr does not derive the output's timing
constraint: the build gives it ``--freq`` (``flow.steps``).
"""

import dataclasses

from . import search

__all__ = ["PLLError", "PLLConfig", "pll_config", "achievable_clocks", "fastest_clock", "clock_source", "PLLDomain",
           "PFD_MIN_HZ", "PFD_MAX_HZ", "VCO_MIN_HZ", "VCO_MAX_HZ", "OUT_MIN_HZ", "OUT_MAX_HZ", "ODIV", "PRIMITIVE"]

PFD_MIN_HZ, PFD_MAX_HZ = 3e6, 400e6
VCO_MIN_HZ, VCO_MAX_HZ = 400e6, 1200e6
OUT_MIN_HZ, OUT_MAX_HZ = 3.125e6, 600e6
#: The output dividers ``ODIV_SEL`` may take.
ODIV = (2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128)
PRIMITIVE = "rPLL"


class PLLError(ValueError):
    """A requested frequency cannot be made by the Gowin PLL."""


@dataclasses.dataclass(frozen=True)
class PLLConfig:
    """One setting of the ``rPLL`` dividers and the frequencies it gives.

    Members
    -------
    f_in, f_out, f_pfd, f_vco : float
        Input, output, phase detector and VCO frequency in Hz.
    idiv_sel, fbdiv_sel, odiv_sel : int
        The primitive's parameters.
    direct : bool
        Run from the reference without the PLL (``f_out == f_in``).
    """

    f_in: float
    f_out: float
    f_pfd: float
    f_vco: float
    idiv_sel: int
    fbdiv_sel: int
    odiv_sel: int
    direct: bool = False

    @classmethod
    def bypass(cls, f_in):
        """The reference clock without the PLL."""
        return cls(f_in, f_in, f_in, 0.0, 0, 0, 2, direct=True)

    @property
    def divide(self):
        return 1

    @property
    def record(self):
        """The setting as plain data (for the build's records)."""
        return {"idiv_sel": self.idiv_sel, "fbdiv_sel": self.fbdiv_sel, "odiv_sel": self.odiv_sel,
                "f_vco_mhz": self.f_vco / 1e6, "direct": self.direct}

    @property
    def parameters(self):
        """Parameters of ``rPLL`` for this setting (static dividers, internal feedback, ``CLKOUT`` only)."""
        return {
            "p_FCLKIN": f"{self.f_in / 1e6:g}", "p_DEVICE": "GW1NR-9C",
            "p_DYN_IDIV_SEL": "false", "p_IDIV_SEL": self.idiv_sel,
            "p_DYN_FBDIV_SEL": "false", "p_FBDIV_SEL": self.fbdiv_sel,
            "p_DYN_ODIV_SEL": "false", "p_ODIV_SEL": self.odiv_sel,
            "p_PSDA_SEL": "0000", "p_DYN_DA_EN": "false", "p_DUTYDA_SEL": "1000",
            "p_CLKFB_SEL": "internal", "p_CLKOUT_BYPASS": "false", "p_CLKOUTP_BYPASS": "false",
            "p_CLKOUTD_BYPASS": "false", "p_DYN_SDIV_SEL": 2, "p_CLKOUTD_SRC": "CLKOUT", "p_CLKOUTD3_SRC": "CLKOUT",
        }


def _settings(f_in):
    """Every setting within the PLL's limits for an ``f_in`` reference, lowest ``IDIV_SEL`` first."""
    for idiv in range(64):
        f_pfd = f_in / (idiv + 1)
        if f_pfd < PFD_MIN_HZ:
            break
        if f_pfd > PFD_MAX_HZ:
            continue
        for fbdiv in range(64):
            out = f_pfd * (fbdiv + 1)
            if out > OUT_MAX_HZ:
                break
            if out < OUT_MIN_HZ:
                continue
            # the output divider whose VCO is nearest the middle of its range
            dividers = [od for od in ODIV if VCO_MIN_HZ <= out * od <= VCO_MAX_HZ]
            if dividers:
                odiv = min(dividers, key=lambda od: abs(out * od - (VCO_MIN_HZ + VCO_MAX_HZ) / 2))
                yield PLLConfig(f_in, out, f_pfd, out * odiv, idiv, fbdiv, odiv)


def pll_config(f_in, f_out, *, tolerance=0.005):
    """The ``rPLL`` setting whose output is closest to ``f_out`` from an ``f_in`` reference (the reference itself,
    without the PLL, for a request equal to it).

    Raises
    ------
    PLLError
        If ``f_out`` is outside 3.125 ... 600 MHz or no setting comes within ``tolerance``.
    """
    return search.closest(_settings(f_in), f_in, f_out, tolerance=tolerance, family="Gowin",
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
    """A :class:`boards.pll.search.InstanceDomain` on ``rPLL``: drives ``domain`` from the PLL with a power-on
    reset after lock (or from the reference itself for a bypass setting).

    Raises
    ------
    ValueError
        If ``primitive`` is not ``"rPLL"`` or ``reset_us`` is not positive.
    TypeError
        If ``config`` is not a Gowin :class:`PLLConfig`.
    """
    if primitive != PRIMITIVE:
        raise ValueError(f"Gowin PLL primitive must be {PRIMITIVE!r}, not {primitive!r}")
    if not isinstance(config, PLLConfig):
        raise TypeError(f"config must be a Gowin PLLConfig, not {config!r}")
    ports = {"clock_in": "CLKIN", "clock_out": "CLKOUT", "lock": "LOCK", "feedback": None,
             "i_RESET": 0, "i_RESET_P": 0, "i_CLKFB": 0, "i_FBDSEL": 0, "i_IDSEL": 0, "i_ODSEL": 0, "i_PSDA": 0,
             "i_DUTYDA": 0, "i_FDLY": 0}
    return search.InstanceDomain(config=config, source=source, primitive=primitive, ports=ports, domain=domain,
                                 reset_us=reset_us)
