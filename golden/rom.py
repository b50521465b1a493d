"""The ROM init file format: one two's complement value per line, in exactly ``ceil(bits/4)`` hex digits.

A ROM file (``docs/manifest.md``, "ROM references and files") holds the integer parameters of one layer, in the
text form Verilog's ``$readmemh`` reads. The format is strict so that a file has exactly one reading:

* one value per line, every line exactly ``ceil(bits / 4)`` ASCII hexadecimal digits (``0-9``, ``a-f``, ``A-F``),
  two's complement of ``bits`` bits (``-1`` as an 8-bit value is ``ff``, as a 20-bit value ``fffff``);
* lines end with ``\\n``; the final newline is optional; nothing else: no blank line, sign, prefix, separator,
  comment, carriage return or white space;
* the value must fit ``bits`` (the unused high bits of the top digit are zero: a 10-bit value is ``000`` ... ``3ff``).

:func:`parse_rom` refuses every deviation with :class:`RomError`, naming the line and the reason; the caller adds the
file and the field. The fast path checks a well-formed file with a few vectorized NumPy operations, so a model of
millions of weights loads in well under a second; only a malformed file is scanned line by line to find the reason.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np

__all__ = ["RomError", "digits", "signed_range", "rom_text", "write_rom", "parse_rom", "rom_size"]

_HEX = np.zeros(256, dtype=np.int16) - 1
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i
_NEWLINE = ord("\n")


class RomError(ValueError):
    """A ROM file that breaks the format; the message names the line and the reason (the caller names the file)."""


def signed_range(bits):
    """Return ``(lo, hi)``, the range of a ``bits``-wide two's complement integer."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def digits(bits):
    """Hex digits of one ``bits``-wide value in a ROM file: ``ceil(bits / 4)``."""
    return (bits + 3) // 4


def rom_size(count, bits):
    """Bytes of a ROM file of ``count`` values with the final newline (the largest size the format allows)."""
    return count * (digits(bits) + 1)


def rom_text(values, bits):
    """The ROM file text of ``values``: one two's complement hex value of ``ceil(bits/4)`` digits per line.

    Raises
    ------
    RomError
        If a value does not fit ``bits`` signed bits.
    """
    values = np.asarray(values, dtype=np.int64).ravel()
    lo, hi = signed_range(bits)
    bad = np.flatnonzero((values < lo) | (values > hi))
    if bad.size:
        raise RomError(f"value {int(values[bad[0]])} at index {int(bad[0])} does not fit {bits} signed bits "
                       f"({lo} ... {hi})")
    mask, d = (1 << bits) - 1, digits(bits)
    return "".join(f"{int(v) & mask:0{d}x}\n" for v in values)


def write_rom(path, values, bits):
    """Write a ROM init file (see :func:`rom_text`)."""
    Path(path).write_text(rom_text(values, bits))


def parse_rom(data, bits, count):
    """Decode the bytes of a ROM file of ``count`` signed ``bits``-wide values.

    Parameters
    ----------
    data : bytes
        The file's content.
    bits : int
        Width of every value, 2 ... 48.
    count : int
        Number of values the file must hold (the product of the reference's ``shape``), at least 1.

    Returns
    -------
    ndarray of int64, shape ``(count,)``

    Raises
    ------
    RomError
        On the first deviation from the format, with its line number and reason.
    """
    d = digits(bits)
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == count * (d + 1) - 1:
        raw = np.append(raw, np.uint8(_NEWLINE))
    if raw.size == count * (d + 1):
        grid = raw.reshape(count, d + 1)
        nibbles = _HEX[grid[:, :d]]
        if (grid[:, d] == _NEWLINE).all() and (nibbles >= 0).all():
            values = np.zeros(count, dtype=np.int64)
            for column in range(d):
                values = (values << 4) | nibbles[:, column]
            if not (values >> bits).any():
                return np.where(values >> (bits - 1), values - (1 << bits), values)
    _explain(bytes(data), bits, count)
    raise AssertionError("unreachable: _explain found no deviation in a ROM that failed the fast check")


def _explain(data, bits, count):
    """Raise :class:`RomError` for the first deviation of ``data`` from the format (the slow, precise path)."""
    d = digits(bits)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the optional final newline
    for n, line in enumerate(lines[:count + 1], start=1):
        if not line:
            raise RomError(f"line {n}: blank line (exactly one value per line)")
        if line.endswith(b"\r"):
            raise RomError(f"line {n}: ends with a carriage return (lines end with \\n only)")
        try:
            text = line.decode("utf-8")
            shown = ascii(text)
        except UnicodeDecodeError:
            text, shown = None, repr(line)
        if any(_HEX[c] < 0 for c in line):
            if text is None:
                what = f"byte 0x{next(c for c in line if _HEX[c] < 0):02x}, which is not UTF-8 text"
            else:
                c = next(c for c in text if not ("0" <= c <= "9" or "a" <= c.lower() <= "f"))
                what = repr(c) if "!" <= c <= "~" else f"U+{ord(c):04X} ({unicodedata.name(c, 'unnamed')})"
            raise RomError(f"line {n}: {shown} holds {what}; a value is ASCII hexadecimal digits only "
                           f"(0-9, a-f, A-F)")
        if len(line) != d:
            raise RomError(f"line {n}: {shown} has {len(line)} digits; {bits}-bit values have exactly {d}")
        if int(line, 16) >> bits:
            raise RomError(f"line {n}: value 0x{line.decode()} does not fit {bits} bits")
    if len(lines) != count:
        raise RomError(f"has {len(lines):,} values, {count:,} expected")
