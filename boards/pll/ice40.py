"""The iCE40 PLL (``SB_PLL40_PAD`` / ``SB_PLL40_CORE``): divider computation and a clock domain with its own
power-on reset.

The iCE40 ``SB_PLL40_*`` primitives in ``SIMPLE`` feedback mode produce

    f_out = f_in * (DIVF + 1) / ((DIVR + 1) * 2 ** DIVQ)

under the limits of the iCE40 sysCLOCK PLL (Lattice TN1251): phase detector input ``f_in / (DIVR + 1)`` from 10 to
133 MHz, VCO ``f_in * (DIVF + 1) / (DIVR + 1)`` from 533 to 1,066 MHz, output from 16 to 275 MHz, ``DIVR`` 0 ... 15,
``DIVF`` 0 ... 127, ``DIVQ`` 1 ... 6. :func:`pll_config` searches all settings for the output closest to the request
(like the ``icepll`` tool); :class:`PLLDomain` instantiates the primitive and a power-on reset for the new domain.
"""

import dataclasses

from amaranth.hdl import ClockDomain, ClockSignal, Instance, Mux, Signal
from amaranth.lib import io

from . import search
from .search import InstanceDomain

__all__ = ["PLLError", "PLLConfig", "pll_config", "filter_range", "PLLDomain", "clock_source", "achievable_clocks",
           "fastest_clock",
           "PFD_MIN_HZ", "PFD_MAX_HZ", "VCO_MIN_HZ", "VCO_MAX_HZ", "OUT_MIN_HZ", "OUT_MAX_HZ"]

PFD_MIN_HZ, PFD_MAX_HZ = 10e6, 133e6
VCO_MIN_HZ, VCO_MAX_HZ = 533e6, 1066e6
OUT_MIN_HZ, OUT_MAX_HZ = 16e6, 275e6
#: Largest integer division of the reference clock in the fabric (below the PLL's range).
MAX_DIVIDE = 12


class PLLError(ValueError):
    """A requested frequency cannot be made by the iCE40 PLL."""


@dataclasses.dataclass(frozen=True)
class PLLConfig:
    """One setting of the PLL dividers and the frequencies it gives.

    Members
    -------
    f_in, f_out, f_pfd, f_vco : float
        Input, output, phase detector and VCO frequency in Hz.
    divr, divf, divq, filter_range : int
        The primitive's ``DIVR``, ``DIVF``, ``DIVQ`` and ``FILTER_RANGE`` parameters.
    """

    f_in: float
    f_out: float
    f_pfd: float
    f_vco: float
    divr: int
    divf: int
    divq: int
    filter_range: int
    direct: bool = False
    divide: int = 1

    @classmethod
    def bypass(cls, f_in, divide=1):
        """The reference clock without the PLL, divided by ``divide`` in the fabric (for clocks below the PLL's
        16 MHz minimum)."""
        if not isinstance(divide, int) or divide < 1:
            raise PLLError(f"clock divider must be a positive integer, not {divide!r}")
        return cls(f_in, f_in / divide, f_in, 0.0, 0, 0, 0, 0, direct=True, divide=divide)

    @property
    def record(self):
        """The setting as plain data (for the build's records)."""
        return {"divr": self.divr, "divf": self.divf, "divq": self.divq, "filter_range": self.filter_range,
                "f_vco_mhz": self.f_vco / 1e6, "direct": self.direct, "divide": self.divide}

    @property
    def parameters(self):
        """Parameters of ``SB_PLL40_PAD`` / ``SB_PLL40_CORE`` for this setting."""
        return {
            "p_FEEDBACK_PATH": "SIMPLE",
            "p_DIVR": self.divr,
            "p_DIVF": self.divf,
            "p_DIVQ": self.divq,
            "p_FILTER_RANGE": self.filter_range,
        }


def filter_range(f_pfd):
    """Loop filter setting for a phase detector frequency ``f_pfd`` in Hz (the table ``icepll`` uses)."""
    mhz = f_pfd / 1e6
    for limit, value in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
        if mhz < limit:
            return value
    return 6


def _settings(f_in):
    """Every divider setting within the PLL's limits for an ``f_in`` reference, lowest ``DIVR`` first."""
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not PFD_MIN_HZ <= f_pfd <= PFD_MAX_HZ:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not VCO_MIN_HZ <= f_vco <= VCO_MAX_HZ:
                continue
            for divq in range(1, 7):
                out = f_vco / 2 ** divq
                if OUT_MIN_HZ <= out <= OUT_MAX_HZ:
                    yield PLLConfig(f_in, out, f_pfd, f_vco, divr, divf, divq, filter_range(f_pfd))


def pll_config(f_in, f_out, *, tolerance=0.005):
    """The PLL setting whose output is closest to ``f_out`` from an ``f_in`` reference.

    Among equally close settings the lowest ``DIVR`` (highest phase detector frequency) wins. A request equal to
    the reference gives :meth:`PLLConfig.bypass` (the design runs from the reference without the PLL).

    Parameters
    ----------
    f_in : float
        Reference frequency in Hz (10 ... 133 MHz after ``DIVR``).
    f_out : float
        Requested output frequency in Hz, 16 ... 275 MHz.
    tolerance : float
        Largest accepted relative difference between the requested and the achieved output.

    Returns
    -------
    PLLConfig

    Raises
    ------
    PLLError
        If ``f_out`` is outside the PLL's output range or no setting comes within ``tolerance``.
    """
    if f_out <= f_in:
        divide = max(1, round(f_in / f_out))
        if abs(f_in / divide - f_out) <= tolerance * f_out and divide <= MAX_DIVIDE:
            return PLLConfig.bypass(f_in, divide)
    if not OUT_MIN_HZ <= f_out <= OUT_MAX_HZ:
        raise PLLError(f"PLL output {f_out / 1e6:g} MHz is outside the iCE40 PLL's range of "
                       f"{OUT_MIN_HZ / 1e6:g} ... {OUT_MAX_HZ / 1e6:g} MHz (below it: the "
                       f"{f_in / 1e6:g} MHz reference divided by 1 ... {MAX_DIVIDE})")
    best = None
    for config in _settings(f_in):
        error = abs(config.f_out - f_out)
        if best is None or error < best[0] - 1e-6:
            best = (error, config)
    if best is None:
        raise PLLError(f"no PLL setting exists for a {f_in / 1e6:g} MHz reference (the phase detector needs "
                       f"{PFD_MIN_HZ / 1e6:g} ... {PFD_MAX_HZ / 1e6:g} MHz)")
    error, config = best
    if error > tolerance * f_out:
        raise PLLError(f"the PLL cannot make {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz: the closest is "
                       f"{config.f_out / 1e6:.4f} MHz ({error / f_out:.2%} off, at most {tolerance:.2%})")
    return config


def achievable_clocks(f_in, *, low=None, high=OUT_MAX_HZ):
    """Every frequency the board can run at from an ``f_in`` reference: the reference itself and all PLL outputs.

    Parameters
    ----------
    f_in : float
        Reference frequency in Hz.
    low, high : float, optional
        Keep only frequencies in this range (Hz).

    Returns
    -------
    list of float
        Ascending.
    """
    found = {f_in / n for n in range(1, MAX_DIVIDE + 1)} | {config.f_out for config in _settings(f_in)}
    return sorted(f for f in found if (low is None or f >= low) and f <= high)


def fastest_clock(f_in, fmax):
    """The fastest achievable clock (:func:`achievable_clocks`) not above ``fmax`` Hz.

    Raises
    ------
    PLLError
        If even the slowest clock (the reference divided by :data:`MAX_DIVIDE`) is faster than ``fmax``.
    """
    return search.fastest(f_in, fmax, achievable_clocks, PLLError)


def clock_source(m, pin, config, primitive):
    """The reference clock as :class:`PLLDomain` takes it: the pin itself when it is the PLL's dedicated pad
    (``SB_PLL40_PAD``), else the pin through an input buffer added to ``m``."""
    if primitive == "SB_PLL40_PAD" and not config.direct:
        return pin
    m.submodules.clk_buf = buffer = io.Buffer("i", pin)
    return buffer.i


class PLLDomain(InstanceDomain):
    """Drives a clock domain from the iCE40 PLL, held in reset until the PLL locks and for ``reset_us`` after.

    The domain itself is defined by the parent module (``m.domains.sync = ClockDomain()``); this component drives
    its clock and reset signals.

    iCE40 block RAM reads as zero for a few microseconds after configuration, and the PLL output is unusable until
    it locks: the domain's reset is released only after the lock signal has been high for the power-on delay (a
    counter in the PLL's output clock; it restarts whenever the lock drops).

    Parameters
    ----------
    config : PLLConfig
        The divider setting.
    source : object
        For ``primitive="SB_PLL40_PAD"``: the clock pin (an IO port from ``platform.request(..., dir="-")``); the
        pin must be the PLL's dedicated input. For ``"SB_PLL40_CORE"``: a 1-bit signal (a global clock net).
    primitive : str
        ``"SB_PLL40_PAD"`` or ``"SB_PLL40_CORE"``; ignored for a :meth:`PLLConfig.bypass` config, whose
        ``source`` is the (buffered) reference clock signal itself.
    domain : str
        Name of the clock domain to drive (default ``"sync"``).
    reset_us : float
        Power-on delay after lock, in microseconds (default 20, several times the block RAM's settling time).

    Members
    -------
    locked : Out(1)
        High when the domain is out of reset.
    """

    def __init__(self, *, config, source, primitive="SB_PLL40_PAD", domain="sync", reset_us=20.0):
        if primitive not in ("SB_PLL40_PAD", "SB_PLL40_CORE"):
            raise ValueError(f"PLL primitive must be 'SB_PLL40_PAD' or 'SB_PLL40_CORE', not {primitive!r}")
        if not isinstance(config, PLLConfig):
            raise TypeError(f"config must be a PLLConfig, not {config!r}")
        super().__init__(config=config, source=source, primitive=primitive, ports={}, domain=domain,
                         reset_us=reset_us)

    def clock(self, m):
        """The reference itself, the reference divided in the fabric onto a global buffer, or the PLL's output."""
        clk = Signal()
        lock = Signal()
        if self._config.direct and self._config.divide == 1:
            m.d.comb += [clk.eq(self._source), lock.eq(1)]
        elif self._config.direct:
            # the reference divided by a counter in its own domain, onto a global buffer
            n = self._config.divide
            m.domains += ClockDomain("refclk", reset_less=True, local=True)
            m.d.comb += [ClockSignal("refclk").eq(self._source), lock.eq(1)]
            count = Signal(range(n))
            divided = Signal()
            m.d.refclk += [count.eq(Mux(count == n - 1, 0, count + 1)), divided.eq(count < n // 2)]
            m.submodules.gb = Instance("SB_GB", i_USER_SIGNAL_TO_GLOBAL_BUFFER=divided,
                                       o_GLOBAL_BUFFER_OUTPUT=clk)
        else:
            if self._primitive == "SB_PLL40_PAD":
                source = {"io_PACKAGEPIN": getattr(self._source, "io", self._source)}
            else:
                source = {"i_REFERENCECLK": self._source}
            m.submodules.pll = Instance(
                self._primitive,
                **self._config.parameters,
                **source,
                i_RESETB=1,
                i_BYPASS=0,
                o_PLLOUTGLOBAL=clk,
                o_LOCK=lock,
            )
        return clk, lock
