"""The manifest's JSON layer: strict decoding and the typed checks of its fields.

:func:`decode` turns the bytes of ``manifest.json`` into Python objects or refuses them: UTF-8 only, no ``NaN`` or
``Infinity``, no integer longer than :data:`MAX_INT_DIGITS` digits, no key twice in one object, no nesting deeper than
:data:`MAX_DEPTH`. The ``field_*`` functions then check one field each for its type and range and raise
:class:`ManifestError` naming it, so that nothing a hostile file holds reaches NumPy, the generator or a terminal
unchecked. The bounds are stated in ``docs/manifest.md``.
"""

from __future__ import annotations

import json
import math
import re

from .checks import check_int

__all__ = ["ManifestError", "decode", "get", "field_int", "field_name", "field_text", "field_classes",
           "field_number", "field_object", "MAX_INT_DIGITS", "MAX_DEPTH", "MAX_NAME", "MAX_LABEL",
           "MAX_DESCRIPTION"]

MAX_INT_DIGITS = 18
MAX_DEPTH = 32
MAX_NAME = 64
MAX_LABEL = 64
MAX_DESCRIPTION = 10_000
_MAX_LIST = 4096
_KEY = re.compile(r"[a-z_][a-z0-9_]{0,63}")


class ManifestError(ValueError):
    """A model that spikesmith refuses: the message names the field or file and the bound."""


def _no_constant(name):
    raise ManifestError(f"manifest.json holds {name}, which is not a JSON number")


def _int_token(text):
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ManifestError(f"manifest.json holds an integer of {len(text.lstrip('-')):,} digits; at most "
                            f"{MAX_INT_DIGITS} are allowed")
    return int(text)


def _float_token(text):
    value = float(text)
    if not math.isfinite(value):
        raise ManifestError(f"manifest.json holds the number {text[:40]}, which is too large for a float")
    return value


def _unique_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ManifestError(f"manifest.json: key {_show(key)} appears twice in one object")
        seen[key] = value
    return seen


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def _depth(text):
    """The deepest nesting of ``[`` / ``{`` outside strings (checked before parsing, which recurses)."""
    depth = deepest = 0
    for c in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if c in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def decode(data, name="manifest.json"):
    """Decode the bytes of a manifest strictly; see the module docstring for what is refused."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{name}: not UTF-8 text (byte {e.start:,}: {e.reason})") from None
    if _depth(text) > MAX_DEPTH:
        raise ManifestError(f"{name}: nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_int=_int_token, parse_float=_float_token, parse_constant=_no_constant,
                          object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{name}: not valid JSON ({e})") from None
    except (ValueError, RecursionError) as e:
        if isinstance(e, ManifestError):
            raise
        raise ManifestError(f"{name}: not valid JSON ({e})") from None


def _show(value, limit=60):
    """A short, printable (ASCII) form of ``value`` for an error message."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit] + "..."


def get(d, key, where, kind=None):
    """The value of ``key`` in the object ``d``; refuse a missing key or one of the wrong JSON type."""
    if not isinstance(d, dict):
        raise ManifestError(f"{where} must be an object, not {type(d).__name__}")
    if key not in d:
        raise ManifestError(f"{where}: field '{key}' is missing")
    v = d[key]
    if kind is not None and (not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ManifestError(f"{where}.{key} must be of type {names}, not {type(v).__name__}")
    return v


def field_int(where, value, low, high):
    """``value`` as an ``int`` in ``low ... high`` (the project's :func:`golden.checks.check_int`)."""
    try:
        return check_int(where, value, low, high)
    except (TypeError, ValueError) as e:
        raise ManifestError(str(e)) from None


def field_name(where, value, pattern, alphabet):
    """A name: a string matched in full by ``pattern`` and at most :data:`MAX_NAME` characters."""
    if not isinstance(value, str) or len(value) > MAX_NAME or not pattern.fullmatch(value):
        raise ManifestError(f"{where} {_show(value)} must be 1 ... {MAX_NAME} characters of {alphabet}")
    return value


def field_text(where, value, limit, *, lines=False):
    """Printable text (``\\n`` and ``\\t`` too when ``lines``) of at most ``limit`` characters, valid Unicode."""
    if not isinstance(value, str):
        raise ManifestError(f"{where} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise ManifestError(f"{where} has {len(value):,} characters; at most {limit:,} are allowed")
    stripped = value.replace("\n", "").replace("\t", "") if lines else value
    if not stripped.isprintable():
        bad = next(c for c in stripped if not c.isprintable())
        raise ManifestError(f"{where} {_show(value)} holds the unprintable character {_show(bad)}")
    return value


def field_classes(value, outputs):
    """The class labels: one per readout output, unique, each 1 ... :data:`MAX_LABEL` printable characters."""
    if not isinstance(value, (list, tuple)):
        raise ManifestError(f"classes must be a list of strings, not {type(value).__name__}")
    if len(value) != outputs:
        raise ManifestError(f"classes has {len(value)} labels; the readout has {outputs} outputs")
    seen = set()
    for i, label in enumerate(value):
        field_text(f"classes[{i}]", label, MAX_LABEL)
        if not label.strip():
            raise ManifestError(f"classes[{i}] is empty or blank")
        if label in seen:
            raise ManifestError(f"classes[{i}] {_show(label)} is used twice")
        seen.add(label)
    return list(value)


def field_number(where, value, *, positive=False):
    """A finite real number (an integer is accepted, a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ManifestError(f"{where} must be a number, not {_show(value)}")
    if not math.isfinite(value) or (positive and not value > 0):
        raise ManifestError(f"{where} must be a finite{' positive' if positive else ''} number, not {value!r}")
    return value


def _scalar(where, value):
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        field_number(where, value)
    elif isinstance(value, str):
        field_text(where, value, 256)
    elif isinstance(value, list):
        if len(value) > _MAX_LIST:
            raise ManifestError(f"{where} has {len(value):,} entries; at most {_MAX_LIST:,} are allowed")
        for i, v in enumerate(value):
            field_number(f"{where}[{i}]", v)
    else:
        raise ManifestError(f"{where} must be null, a boolean, a number, a string or a list of numbers, "
                            f"not {type(value).__name__}")


def field_object(where, value):
    """An optional flat object (``features``, ``quantization``, ``training``): ``None``, or at most 64 keys
    ``[a-z_][a-z0-9_]*`` whose values are null, booleans, finite numbers, short printable strings or lists of
    finite numbers."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ManifestError(f"{where} must be an object or null, not {type(value).__name__}")
    if len(value) > 64:
        raise ManifestError(f"{where} has {len(value)} fields; at most 64 are allowed")
    for key, v in value.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ManifestError(f"{where}: key {_show(key)} must match [a-z_][a-z0-9_]* (at most 64 characters)")
        _scalar(f"{where}.{key}", v)
    return value
