"""Small helpers shared by the trainer's modules: atomic file writes, seeding, the default ``--model``.

Every file the trainer leaves behind (checkpoints, reports, saved maps) is written to a temporary file in the
same directory and renamed into place, so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import io
import json
import os
import random
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["default_mode", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_save_npy",
           "atomic_torch_save", "seed_everything", "model_or_default"]


def default_mode(directory=False) -> int:
    """The permissions a plain ``open``/``mkdir`` would give under the current umask (``mkstemp`` and ``mkdtemp``
    create private 0600/0700 entries, which a finished output must not keep)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename (usual permissions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, default_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_save_npy(path, array) -> None:
    """Save ``array`` as a ``.npy`` file atomically."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(path, obj) -> None:
    """``torch.save`` to ``path`` atomically."""
    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU) random generators."""
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def model_or_default(path) -> str:
    """``path``, or where it is None the shipped default model's directory (``flow.build.default_model_dir``):
    what a command's ``--model`` means when it is left out."""
    if path is not None:
        return str(path)
    from flow.build import default_model_dir
    return str(default_model_dir())
