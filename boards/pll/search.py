"""What the PLL modules of the ECP5 and Gowin families share: the search for the closest setting, the list of
clocks a board can make, and a domain driven by a PLL primitive (or by the reference itself).

A family module lists its settings (each a frozen dataclass with ``f_in``, ``f_out``, ``direct`` and
``parameters``); :func:`closest` picks one for a request, :func:`clocks` lists the outputs, and
:class:`InstanceDomain` instantiates the primitive with the family's port names and gives the domain the power-on
reset of :mod:`boards.pll.reset`. The iCE40 module predates this one and keeps its own search (its bypass also
divides the reference in the fabric); its domain is an :class:`InstanceDomain` that makes its clock its own way.
"""

from amaranth.hdl import Instance, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import Out

from .reset import power_on_reset, reset_cycles

__all__ = ["closest", "clocks", "fastest", "buffered_source", "InstanceDomain"]


def closest(settings, f_in, f_out, *, tolerance, family, out_range, error, bypass):
    """The setting of ``settings`` (an iterable) whose output is closest to ``f_out``; the first among equals.

    ``bypass(f_in)`` is returned for a request within ``tolerance`` of the reference itself.

    Raises
    ------
    error
        If ``f_out`` is outside ``out_range`` (Hz) or nothing comes within ``tolerance``.
    """
    if abs(f_out - f_in) <= tolerance * f_out:
        return bypass(f_in)
    low, high = out_range
    if not low <= f_out <= high:
        raise error(f"PLL output {f_out / 1e6:g} MHz is outside the {family} PLL's range of {low / 1e6:g} ... "
                    f"{high / 1e6:g} MHz")
    best = None
    for config in settings:
        difference = abs(config.f_out - f_out)
        if best is None or difference < best[0] - 1e-6:
            best = (difference, config)
    if best is None:
        raise error(f"no {family} PLL setting exists for a {f_in / 1e6:g} MHz reference")
    difference, config = best
    if difference > tolerance * f_out:
        raise error(f"the {family} PLL cannot make {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz: the closest is "
                    f"{config.f_out / 1e6:.4f} MHz ({difference / f_out:.2%} off, at most {tolerance:.2%})")
    return config


def clocks(f_in, settings, *, low=None, high=None):
    """The reference and every output of ``settings`` within ``low`` ... ``high`` Hz, ascending, without repeats."""
    found = {round(f_in, 3)} | {round(config.f_out, 3) for config in settings}
    return sorted(f for f in found if (low is None or f >= low) and (high is None or f <= high))


def fastest(f_in, fmax, achievable, error):
    """The fastest of ``achievable(f_in, high=fmax)``.

    Raises
    ------
    error
        If even the slowest achievable clock is faster than ``fmax``.
    """
    found = achievable(f_in, high=fmax)
    if not found:
        slowest = achievable(f_in)[0]
        raise error(f"the design's Fmax of {fmax / 1e6:.2f} MHz is below the slowest clock the board can make "
                    f"from its {f_in / 1e6:g} MHz reference ({slowest / 1e6:g} MHz)")
    return found[-1]


def buffered_source(m, pin, config, primitive):
    """The reference clock pin through an input buffer added to ``m`` (the PLL's reference input is a fabric
    net on these families)."""
    m.submodules.clk_buf = buffer = io.Buffer("i", pin)
    return buffer.i


class InstanceDomain(wiring.Component):
    """Drives a clock domain from a PLL primitive, held in reset until it locks and for ``reset_us`` after.

    Parameters
    ----------
    config : a family's PLL setting
        With ``f_out``, ``direct`` (run from the reference, no PLL) and ``parameters`` (the primitive's).
    source : Signal
        The reference clock (through its input buffer).
    primitive : str
        The primitive's name (``"EHXPLLL"``, ``"rPLL"``).
    ports : dict
        The primitive's fixed ports, and ``clock_in``, ``clock_out``, ``lock``: the names of its reference input,
        output and lock ports; ``feedback``: the name of a feedback input to tie to the output, or None.
    attributes : dict, optional
        Synthesis attributes of the instance (``a_...`` arguments).
    domain : str
    reset_us : float

    Members
    -------
    locked : Out(1)
        High when the domain is out of reset.
    """

    locked: Out(1)

    def __init__(self, *, config, source, primitive, ports, attributes=None, domain="sync", reset_us=20.0):
        self._delay = reset_cycles(reset_us, config.f_out)
        self._config = config
        self._source = source
        self._primitive = primitive
        self._ports = dict(ports)
        self._attributes = dict(attributes or {})
        self._domain = domain
        super().__init__()

    @property
    def config(self):
        return self._config

    @property
    def reset_cycles(self):
        """Cycles of the output clock between lock and the release of the domain's reset."""
        return self._delay

    def elaborate(self, platform):
        m = Module()
        clk, lock = self.clock(m)
        power_on_reset(m, domain=self._domain, clk=clk, lock=lock, delay=self._delay, locked=self.locked)
        return m

    def clock(self, m):
        """Add the clock's source to ``m``: the primitive, or the reference itself for a direct setting. Returns
        ``(clk, lock)``; a family whose clock is made otherwise overrides this (:class:`boards.pll.ice40.PLLDomain`)."""
        clk = Signal()
        lock = Signal()
        if self._config.direct:
            m.d.comb += [clk.eq(self._source), lock.eq(1)]
        else:
            ports = dict(self._ports)
            names = {"clock_in": ports.pop("clock_in"), "clock_out": ports.pop("clock_out"),
                     "lock": ports.pop("lock"), "feedback": ports.pop("feedback", None)}
            args = {f"i_{names['clock_in']}": self._source, f"o_{names['clock_out']}": clk,
                    f"o_{names['lock']}": lock}
            if names["feedback"]:
                args[f"i_{names['feedback']}"] = clk
            m.submodules.pll = Instance(self._primitive, **self._config.parameters, **self._attributes, **ports,
                                        **args)
        return clk, lock
