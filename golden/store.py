"""A model directory on disk: reading its files safely, replacing it atomically.

Reading (:class:`ModelDir`)
    The directory is opened once; every file is then opened relative to it with ``O_NOFOLLOW | O_NONBLOCK``, so a
    file that is a symbolic link (inside or out), a directory, a FIFO or a device is refused without blocking, and a
    file larger than its bound is refused before it is read. The model path itself may be a symbolic link only in
    the form :func:`save` makes: a link whose target is one name in the same parent directory.

Writing (:func:`save_files`)
    Each version of a model is written into a fresh hidden directory beside the target, ``.NAME.v-<id>``, with every
    file and the directory flushed to disk. A new symbolic link ``.NAME.link-<id> -> .NAME.v-<id>`` is then renamed
    over the target ``NAME`` with ``os.replace``: POSIX ``rename`` is atomic, so at every instant ``NAME`` is either
    the old link or the new one, and both point to complete versions. A target that is still a plain directory
    (as the models in git are) is swapped with the link in one step by ``renameat2(RENAME_EXCHANGE)`` (Linux) or
    ``renamex_np(RENAME_SWAP)`` (macOS). Only where neither exists is the plain directory first renamed to a
    ``.NAME.v-<id>`` name of its own and the link renamed into place: in the instant between those two renames
    ``NAME`` is absent, while the old version is complete under its hidden name.

    Leftovers of an interrupted save (a half-written ``.NAME.v-*``, a ``.NAME.link-*``, an old version) are never
    read: a load only follows ``NAME``. They are removed by the next save to the same target, which holds an
    exclusive ``flock`` on the parent directory while it works, so two concurrent saves cannot remove each
    other's versions. Leftovers of the previous scheme (``.NAME.tmp-*``, ``.NAME.old-*``) are removed as well.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import stat
import sys
from contextlib import contextmanager
from pathlib import Path

from .schema import ManifestError

__all__ = ["StoreError", "ModelDir", "save_files", "leftovers"]

#: The largest ``manifest.json`` a model may have.
MAX_MANIFEST_BYTES = 1 << 20
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_LEFTOVER = ("v", "link", "tmp", "old")


class StoreError(ManifestError):
    """A model directory or file that cannot be read or written; the message names it and the reason."""


def check_file_name(where, name):
    """Return ``name`` if it is a plain file name a model may use; raise :class:`StoreError` otherwise."""
    if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
        raise StoreError(f"{where} {name!r} must be a plain file name in the model directory: 1 ... 128 characters "
                         f"of A-Z a-z 0-9 _ . -, not starting with '.'")
    return name


def _kind(mode):
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


class ModelDir:
    """An open model directory; read its files with :meth:`read`. Use as a context manager.

    Parameters
    ----------
    path : str or Path
        The model directory, or a link to a sibling version directory as :func:`save_files` makes.

    Raises
    ------
    StoreError
        If the path does not exist, is not a directory, or is a link that leaves its parent directory.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._fd = None
        self._lock = _lock_fd(self.path.parent, shared=True)
        target = self.path
        try:
            if self.path.is_symlink():
                link = os.readlink(self.path)
                if "/" in link or link in (".", "..") or (os.sep != "/" and os.sep in link):
                    raise StoreError(f"model directory {self.path} is a symbolic link to {ascii(link)}; a model link "
                                     f"may only name a directory beside it")
                target = self.path.parent / link
            self._fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError as e:
            self.close()
            if e.errno == errno.ENOENT:
                raise StoreError(f"model directory {self.path} does not exist") from None
            raise StoreError(f"model directory {self.path} is not a directory that can be read "
                             f"({e.strerror or e})") from None
        except StoreError:
            self.close()
            raise

    def close(self):
        for name in ("_fd", "_lock"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def read(self, name, limit, where=None):
        """The bytes of the regular file ``name`` in the directory, at most ``limit`` bytes long.

        Raises
        ------
        StoreError
            If the name is not a plain file name, or the file is missing, a link, not a regular file, or too large.
        """
        where = where or f"file {name!r}"
        check_file_name(f"{where}: file name", name)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(name, flags, dir_fd=self._fd)
        except FileNotFoundError:
            raise StoreError(f"{where}: file {name} is missing") from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise StoreError(f"{where}: file {name} is a symbolic link; a model's files must be regular files "
                                 f"in its directory") from None
            raise StoreError(f"{where}: file {name} cannot be opened ({e.strerror or e})") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(f"{where}: file {name} is {_kind(st.st_mode)}, not a regular file")
            if st.st_size > limit:
                raise StoreError(f"{where}: file {name} has {st.st_size:,} bytes; at most {limit:,} are allowed")
            chunks, size = [], 0
            while size <= limit:
                chunk = os.read(fd, min(1 << 20, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if size > limit:
                raise StoreError(f"{where}: file {name} grew past {limit:,} bytes while being read")
            return b"".join(chunks)
        except OSError as e:
            raise StoreError(f"{where}: file {name} cannot be read ({e.strerror or e})") from None
        finally:
            os.close(fd)


# -- atomic replacement ------------------------------------------------------------------------------------------

def _exchange_function():
    """A function ``f(a, b) -> bool`` that swaps two paths atomically, returning False where it cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return lambda a, b: False
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        call, at_fdcwd, flag = libc.renameat2, -100, 2  # AT_FDCWD, RENAME_EXCHANGE

        def exchange(a, b):
            return call(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flag)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        call, flag = libc.renamex_np, 2  # RENAME_SWAP

        def exchange(a, b):
            return call(os.fsencode(a), os.fsencode(b), flag)
    else:
        return lambda a, b: False

    def swap(a, b):
        if exchange(a, b) == 0:
            return True
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            return False  # the file system cannot swap: fall back
        raise OSError(code, os.strerror(code), str(b))
    return swap


_exchange = _exchange_function()


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_fd(directory, *, shared):
    """An open descriptor of ``directory`` holding a ``flock`` on it, or None where that is not possible.

    Saves hold the lock exclusively, loads shared: a load never sees a version removed under it.
    """
    try:
        import fcntl
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except (ImportError, OSError):  # no flock, or a parent we may not read: go on unlocked
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        return None
    return fd


@contextmanager
def _locked(directory):
    """Hold an exclusive lock on ``directory`` (see :func:`_lock_fd`)."""
    fd = _lock_fd(directory, shared=False)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def leftovers(path):
    """Hidden entries beside the model ``path`` that a save made and the target no longer uses."""
    path = Path(path)
    current = os.readlink(path) if path.is_symlink() else None
    pattern = re.compile(rf"\.{re.escape(path.name)}\.({'|'.join(_LEFTOVER)})-[A-Za-z0-9_]+")
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name) and p.name != current)


def _remove(path):
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def save_files(path, files, mode=0o777):
    """Replace the model directory ``path`` by one holding ``files`` (name to bytes), atomically.

    Parameters
    ----------
    path : str or Path
        The target; its parent is created if needed.
    files : dict of str to bytes
    mode : int
        Permissions of the new version directory (before the umask).

    Returns
    -------
    Path
        ``path``, now a link to the new version ``.NAME.v-<id>`` beside it.
    """
    path = Path(path)
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_symlink() and not path.is_dir():
        raise StoreError(f"{path} exists and is not a model directory")
    with _locked(parent):
        tag = secrets.token_hex(6)
        version = parent / f".{path.name}.v-{tag}"
        link = parent / f".{path.name}.link-{tag}"
        os.mkdir(version, mode)
        for name, data in files.items():
            fd = os.open(version / check_file_name("file name", name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                with os.fdopen(fd, "wb", closefd=False) as f:
                    f.write(data)
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(version)
        os.symlink(version.name, link)
        if path.is_symlink() or not path.exists():
            os.replace(link, path)
        elif not _exchange(link, path):
            os.rename(path, parent / f".{path.name}.v-{secrets.token_hex(6)}")
            os.replace(link, path)
        _fsync_dir(parent)
        for p in leftovers(path):
            _remove(p)
    return path
