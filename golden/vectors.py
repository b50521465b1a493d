"""Test vectors a model directory may carry: INT8 input maps with their labels, so that the hardware flow runs on
real inputs with no data set on disk.

The manifest names the file (``test_vectors``: ``file``, ``sha256``, ``count``, ``source``; docs/manifest.md); the
file is a NumPy ``.npz`` archive without pickled objects holding ``x`` (int8, ``(N, C, H, W)``, the model's
``input_shape``), ``y`` (int64 class indices, ``(N,)``) and ``names`` (unicode, ``(N,)``, e.g. the recordings' file
names). :func:`encode` and :func:`decode` turn :class:`TestVectors` into bytes and back, refusing anything else.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from dataclasses import dataclass

import numpy as np

from .schema import ManifestError

__all__ = ["TestVectors", "VECTORS_FILE", "MAX_VECTORS", "MAX_VECTOR_BYTES", "encode", "decode", "check"]

#: The file name a saved model uses.
VECTORS_FILE = "vectors.npz"
#: The most samples a model may carry.
MAX_VECTORS = 10_000
#: The largest vectors file (bytes).
MAX_VECTOR_BYTES = 64 << 20
_NAME = re.compile(r"[\x20-\x7e]{1,200}")


@dataclass(eq=False)
class TestVectors:
    """Input maps and labels shipped with a model.

    Members
    -------
    x : ndarray (N, C, H, W) int8
    y : ndarray (N,) int64
        Class indices.
    names : list of str
        One printable name per sample (the source recording's file name, say).
    source : str
        Where they come from and under which licence (shown by the commands that use them).
    """
    __test__ = False  # not a pytest test class

    x: np.ndarray
    y: np.ndarray
    names: list
    source: str

    def __len__(self):
        return int(self.x.shape[0])


def check(vectors, input_shape, classes, where="test_vectors"):
    """Return ``vectors`` with canonical dtypes if they fit a model of ``input_shape`` and ``classes`` classes.

    Raises
    ------
    ManifestError
        Naming the field and the bound.
    """
    x = np.asarray(vectors.x)
    y = np.asarray(vectors.y)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(input_shape):
        raise ManifestError(f"{where}: x has shape {list(x.shape)}; [N, {', '.join(map(str, input_shape))}] expected "
                            f"(the model's input_shape)")
    n = x.shape[0]
    if not 1 <= n <= MAX_VECTORS:
        raise ManifestError(f"{where}: {n:,} samples; 1 ... {MAX_VECTORS:,} allowed")
    if x.dtype != np.int8:
        if not np.issubdtype(x.dtype, np.integer) or x.size and (x.min() < -128 or x.max() > 127):
            raise ManifestError(f"{where}: x must hold INT8 values (-128 ... 127), not {x.dtype}")
        x = x.astype(np.int8)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ManifestError(f"{where}: y must be {n} integer class indices, not {y.dtype} of shape {list(y.shape)}")
    if n and (y.min() < 0 or y.max() >= classes):
        raise ManifestError(f"{where}: y holds class {int(y.min() if y.min() < 0 else y.max())}; the model has "
                            f"classes 0 ... {classes - 1}")
    names = [str(s) for s in vectors.names]
    if len(names) != n or not all(_NAME.fullmatch(s) for s in names):
        raise ManifestError(f"{where}: names must be {n} printable ASCII names of 1 ... 200 characters")
    if not isinstance(vectors.source, str) or not _NAME.fullmatch(vectors.source or " ") or not vectors.source:
        raise ManifestError(f"{where}.source must be a printable ASCII text of 1 ... 200 characters")
    return TestVectors(x=x, y=y.astype(np.int64), names=names, source=vectors.source)


def encode(vectors):
    """The ``.npz`` bytes of ``vectors`` (compressed, no pickled objects)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.asarray(vectors.x, dtype=np.int8), y=np.asarray(vectors.y, dtype=np.int64),
                        names=np.asarray(vectors.names, dtype=str))
    return buf.getvalue()


def decode(data, *, input_shape, classes, source, where="test_vectors"):
    """:class:`TestVectors` from ``.npz`` bytes, checked against the model (:func:`check`).

    Raises
    ------
    ManifestError
        If the archive is not a plain ``.npz`` of ``x``, ``y`` and ``names``, is larger than its members allow, or
        does not fit the model.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: info for info in archive.infolist()}
            if set(members) != {"x.npy", "y.npy", "names.npy"}:
                raise ManifestError(f"{where}: the archive must hold x, y and names, not {sorted(members)}")
            bound = math.prod(input_shape) * MAX_VECTORS + 16 * MAX_VECTORS + 800 * MAX_VECTORS + 3 * 4096
            if sum(info.file_size for info in members.values()) > bound:
                raise ManifestError(f"{where}: the archive unpacks to more than {bound:,} bytes")
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            x, y, names = archive["x"], archive["y"], archive["names"]
    except ManifestError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, KeyError, EOFError) as error:
        raise ManifestError(f"{where}: not a readable .npz archive ({error})") from None
    if names.dtype.kind != "U":
        raise ManifestError(f"{where}: names must be text, not {names.dtype}")
    return check(TestVectors(x=x, y=y, names=names.tolist(), source=source), input_shape, classes, where)
