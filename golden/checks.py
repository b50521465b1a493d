"""The one integer argument check and the project-wide bounds, shared by every package.

Amaranth's convention: the wrong kind of value is a ``TypeError``, a value out of range a ``ValueError``, and the
message reads ``"<name> must be <what>, not <value!r>"``.
"""

import numbers

__all__ = ["MAX_TIME_STEPS", "check_int"]

#: The most time steps a model may run (manifest, golden model, generator alike).
MAX_TIME_STEPS = 1024


def check_int(name, value, low=None, high=None):
    """Return ``value`` as an ``int`` if it is an integer (not a bool) in ``low ... high`` (either bound optional).

    Raises
    ------
    TypeError
        If ``value`` is not an integer (``bool`` is refused; NumPy integers are accepted).
    ValueError
        If it is out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            what = f"an integer of at least {low}"
        elif low is None:
            what = f"an integer of at most {high}"
        else:
            what = f"an integer from {low} to {high}"
        raise ValueError(f"{name} must be {what}, not {value!r}")
    return value
