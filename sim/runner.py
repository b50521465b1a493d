"""Run a cocotb test module on a finished :class:`sim.build.SimBuild`.

The test module talks to its caller through files: the caller writes a job file, passes its path in the
environment variable :data:`JOB_ENV`, and the test module writes a JSON report to the path in :data:`REPORT_ENV`.
The report, not cocotb's exit status, is the result: cocotb only says pass or fail, the report says what was
compared and what differed. :func:`run_test` returns the parsed report.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .build import TIMESCALE, SimBuild

__all__ = ["JOB_ENV", "REPORT_ENV", "SimulationError", "TestRun", "run_test"]

#: Environment variable that holds the path of the job file.
JOB_ENV = "SPIKESMITH_SIM_JOB"
#: Environment variable that holds the path the report is written to.
REPORT_ENV = "SPIKESMITH_SIM_REPORT"


class SimulationError(RuntimeError):
    """The simulation did not produce a report (crashed, or the test module raised before writing it)."""


@dataclass
class TestRun:
    """Outcome of one simulator run.

    Members
    -------
    report : dict
        What the test module wrote to its report file.
    run_dir : Path
        Directory the simulator ran in (log, results.xml, waveform).
    log : Path
        Simulator and cocotb output.
    waves : Path or None
        FST waveform, when one was asked for.
    seconds : float
        Wall time of the run.
    passed : bool
        Whether cocotb counted the test as passed.
    """

    report: dict
    run_dir: Path
    log: Path
    waves: Path | None
    seconds: float
    passed: bool


def _repo_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def run_test(build: SimBuild, test_module: str, *, run_dir: Path | str, job: Path | str | None = None,
             testcase: str | None = None, seed: int = 0, waves: bool = False, extra_env: dict | None = None
             ) -> TestRun:
    """Run the cocotb tests of ``test_module`` against a build and return their report.

    Parameters
    ----------
    build : SimBuild
        A finished build (:func:`sim.build.build`).
    test_module : str
        Importable name of the cocotb test module (e.g. ``"sim.testbench"``).
    run_dir : path
        Directory to run in; created if missing. The report is ``report.json`` there, the log ``sim.log``.
    job : path, optional
        Job file passed to the test module in :data:`JOB_ENV`.
    testcase : str, optional
        Run only this test of the module.
    seed : int
        cocotb's random seed.
    waves : bool
        Record a waveform (``waves.fst`` in ``run_dir``; ``waves.vcd`` from a Verilator build without FST).
    extra_env : dict, optional
        More environment variables for the test module.

    Raises
    ------
    SimulationError
        When the test module wrote no report; the message ends with the last lines of the log.
    """
    import cocotb_tools.runner as cr

    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    report = run_dir / "report.json"
    log = run_dir / "sim.log"
    with contextlib.suppress(FileNotFoundError):
        report.unlink()
    # The runner passes this process's sys.path to the simulator as PYTHONPATH; the test modules live in this
    # repository, which must therefore be on it.
    root = _repo_root()
    if root not in sys.path:
        sys.path.insert(0, root)
    # cocotb rewrites the assertions of every module it imports (parsing and compiling them again) unless told not to:
    # the test modules here report through their JSON file, not through assertions.
    env = {REPORT_ENV: str(report), "COCOTB_REWRITE_ASSERTION_FILES": ""}
    if job is not None:
        env[JOB_ENV] = str(Path(job).resolve())
    env.update(extra_env or {})
    runner = cr.get_runner(build.simulator)
    kwargs = dict(test_module=test_module, hdl_toplevel=build.toplevel, hdl_toplevel_lang="verilog",
                  build_dir=build.build_dir,
                  test_dir=run_dir, seed=seed, extra_env=env, log_file=log, waves=False,
                  results_xml=str(run_dir / "results.xml"))
    if testcase is not None:
        kwargs["testcase"] = testcase
    waves_path = None
    if waves:
        if build.simulator == "verilator":
            waves_path = run_dir / f"waves{build.waves_suffix}"
            kwargs["test_args"] = ["--trace", "--trace-file", str(waves_path)]
        elif build.trace_format:  # Icarus builds carry no dump module (see sim.build)
            waves_path = run_dir / "waves.fst"
            kwargs["waves"] = True
            kwargs["plusargs"] = [f"+dumpfile_path={waves_path}"]
    if build.simulator == "icarus":
        kwargs["timescale"] = TIMESCALE
    # Keys of the caller's environment win over extra_env in the runner; ours must not be shadowed.
    saved = {k: os.environ.pop(k) for k in list(env) if k in os.environ}
    started = time.monotonic()
    passed = True
    try:
        runner.test(**kwargs)
    except SystemExit as exc:  # raised by the runner under pytest when a cocotb test failed
        passed = exc.code in (0, None)
    except RuntimeError:
        passed = False
    finally:
        os.environ.update(saved)
    seconds = time.monotonic() - started
    if passed:
        with contextlib.suppress(Exception):
            from cocotb_tools.check_results import get_results
            _, failed = get_results(run_dir / "results.xml")
            passed = failed == 0
    if not report.exists():
        tail = ""
        with contextlib.suppress(OSError):
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise SimulationError(f"{test_module} on {build.simulator} wrote no report in {run_dir}; log tail:\n{tail}")
    data = json.loads(report.read_text())
    return TestRun(data, run_dir, log, waves_path if waves_path and waves_path.exists() else None, seconds, passed)
