"""The power-on reset every family's clock module gives its domain: held until the PLL locks, and a while after.

Block RAM can read as zero for a few microseconds after configuration and a PLL output is unusable until it locks,
so a domain made from a PLL leaves reset only after the lock signal has been high for a delay, counted in the new
clock (the count restarts whenever the lock drops). :func:`power_on_reset` adds that logic to a module; each family's
``PLLDomain`` calls it with its own clock and lock.
"""

from amaranth.hdl import ClockDomain, ClockSignal, ResetSignal, Signal

__all__ = ["power_on_reset", "reset_cycles"]


def reset_cycles(reset_us, f_out):
    """Cycles of an ``f_out`` Hz clock in ``reset_us`` microseconds (at least 16).

    Raises
    ------
    ValueError
        If ``reset_us`` is not positive.
    """
    if not reset_us > 0:
        raise ValueError(f"power-on delay must be positive, not {reset_us!r}")
    return max(16, int(round(reset_us * 1e-6 * f_out)))


def power_on_reset(m, *, domain, clk, lock, delay, locked):
    """Drive ``domain``'s clock from ``clk`` and its reset until ``lock`` has been high for ``delay`` cycles.

    Parameters
    ----------
    m : amaranth.hdl.Module
    domain : str
        The clock domain (defined by the caller's parent).
    clk, lock : Signal
        The PLL's output clock and lock indication.
    delay : int
        Cycles of ``clk`` between lock and the release of the reset.
    locked : Signal
        Driven high when the domain is out of reset.
    """
    m.d.comb += ClockSignal(domain).eq(clk)
    por = f"{domain}_por"
    m.domains += ClockDomain(por, reset_less=True, local=True)
    m.d.comb += ClockSignal(por).eq(clk)
    lock_sync = Signal(2)
    timer = Signal(range(delay + 1))
    ready = Signal()
    m.d[por] += lock_sync.eq(lock_sync << 1 | lock)
    with m.If(~lock_sync[1]):
        m.d[por] += [timer.eq(0), ready.eq(0)]
    with m.Elif(timer == delay):
        m.d[por] += ready.eq(1)
    with m.Else():
        m.d[por] += timer.eq(timer + 1)
    m.d.comb += [ResetSignal(domain).eq(~ready), locked.eq(ready)]
