"""The one parser of ``--params``: hardware overrides per layer, as every command takes them.

    python -m hw.generate --model DIR --out DIR --params '{"conv1": {"lanes": 2}, "fc1": {"lanes": 7}}'
    python -m hw.build --board icebreaker --params params.json

``--params`` takes a JSON object that maps layer names to objects of plan options, given inline or as the path of a
file that holds it. :func:`parse_params` checks the form (an object of objects) and nothing else: which layers and
options exist, and their ranges, is the plan's business (it names the layer and the bound when it refuses a value).
"""

import json
from pathlib import Path

__all__ = ["ParamsError", "parse_params", "add_params_argument", "PARAMS_EXAMPLE"]

#: What a valid ``--params`` looks like, for messages and ``--help``.
PARAMS_EXAMPLE = '{"conv1": {"lanes": 2}, "fc1": {"lanes": 7}}'


class ParamsError(ValueError):
    """A ``--params`` value that is not a JSON object of per-layer objects (the message says where and why)."""


def _read(text):
    stripped = text.strip()
    if stripped.startswith("{") or stripped.startswith("[") or not stripped:
        return stripped, "--params"
    path = Path(stripped)
    if path.is_file():
        try:
            return path.read_text(), f"--params file {path}"
        except OSError as error:
            raise ParamsError(f"--params file {path} cannot be read: {error.strerror}") from None
    return stripped, "--params"


def parse_params(text):
    """Parse a ``--params`` value.

    Parameters
    ----------
    text : str or None
        A JSON object such as :data:`PARAMS_EXAMPLE`, or the path of a file that holds one. ``None`` or an empty
        string gives ``None`` (no overrides).

    Returns
    -------
    dict or None
        Layer name to a dict of options.

    Raises
    ------
    ParamsError
        If the text is not JSON, or not an object whose values are objects.
    """
    if text is None:
        return None
    body, source = _read(str(text))
    if not body:
        return None
    try:
        value = json.loads(body)
    except json.JSONDecodeError as error:
        raise ParamsError(f"{source} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno}); "
                          f"write an object such as '{PARAMS_EXAMPLE}'") from None
    if not isinstance(value, dict):
        raise ParamsError(f"{source} must be a JSON object of layers such as '{PARAMS_EXAMPLE}', "
                          f"not {type(value).__name__} {body[:40]!r}")
    for name, options in value.items():
        if not isinstance(options, dict):
            raise ParamsError(f"{source}: layer {name!r} must map to an object of options such as "
                              f'{{"lanes": 4}}, not {json.dumps(options)}')
    return value


def add_params_argument(parser, *, help_suffix=""):
    """Add the common ``--params`` option to an ``argparse`` parser (parse its value with :func:`parse_params`)."""
    parser.add_argument("--params", metavar="JSON", default=None,
                        help=f"hardware overrides per layer, as a JSON object or the path of a JSON file, e.g. "
                             f"'{PARAMS_EXAMPLE}'{help_suffix}")
