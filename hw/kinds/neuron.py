"""The neuron parameters the hardware accepts (docs/arithmetic.md section 1), checked before any core is built."""

from golden.checks import check_int

__all__ = ["check_neuron"]


def check_neuron(neuron, *, acc_bits=None, layer=None):
    """Validate a neuron description for hardware use and return its kind (``"lif"`` or ``"integrate"``).

    Parameters
    ----------
    neuron : golden.manifest.LIF or golden.manifest.Integrate
    acc_bits : int, optional
        Width of the current fed to the neuron; checked when given.
    layer : str, optional
        The layer's name, for the messages.

    Returns
    -------
    str

    Raises
    ------
    TypeError
        If ``neuron`` is neither kind.
    ValueError
        If a parameter is outside the bounds of docs/arithmetic.md section 1.
    """
    where = f"layer {layer}: neuron" if layer else "neuron"
    kind = getattr(neuron, "kind", None)
    if kind not in ("lif", "integrate"):
        raise TypeError(f"{where} must be a golden.manifest.LIF or Integrate, not {neuron!r}")
    bits = check_int(f"{where} mem_bits", neuron.mem_bits, 2, 32)
    if kind == "lif":
        if bits < 3:
            raise ValueError(f"{where} mem_bits must be at least 3 for a LIF neuron, not {bits}: the threshold must "
                             f"lie in 1 ... 2**(mem_bits-1) - 2, which is empty below 3 bits (use mem_bits 3 or more; "
                             f"2 bits suit only the integrating readout)")
        if neuron.reset not in ("subtract", "zero"):
            raise ValueError(f"{where} reset must be 'subtract' or 'zero', not {neuron.reset!r}")
        check_int(f"{where} leak_shift", neuron.leak_shift, 0, bits - 1)
        check_int(f"{where} threshold", neuron.threshold, 1, (1 << (bits - 1)) - 2)
    if acc_bits is not None:
        check_int(f"{'layer ' + layer + ': ' if layer else ''}acc_bits", acc_bits, 2, 64)
    return kind
