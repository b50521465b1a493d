"""The hardware flow as functions: plan, generate, simulate, build and read the report.

Each function is a thin call into the code behind a command (``hw.plan``, ``python -m hw.generate``,
``python -m sim``, ``python -m hw.build``), so the API and the command line cannot drift apart.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

__all__ = ["plan", "generate", "simulate", "build", "read_report"]


def _model(model):
    from golden.manifest import Model

    from .predict import load_model
    return model if isinstance(model, Model) else load_model(model)


def plan(model, *, board=None, params=None):
    """The hardware plan of ``model`` (a model or a model directory) on ``board``'s device (default: the
    iCE40UP5K): every derived parameter of the design, its memories and their block RAMs (``hw.plan.Plan``).

    Raises
    ------
    ValueError
        When the generator cannot build the model or an option is out of range; the message names the layer and the
        bound.
    """
    from hw.plan import plan as make_plan

    device = None
    if board is not None:
        from boards import get_board
        device = get_board(board).device
    return make_plan(_model(model), device=device, params=params)


def generate(model, out, *, params=None, debug=True):
    """Write the Verilog of ``model``'s accelerator and its summary into the directory ``out``
    (``python -m hw.generate``); returns the summary dict, whose ``verilog`` is the file's path."""
    from hw.generate import generate as run
    return run(_model(model), out, params=params, debug=debug)


def simulate(model, *, samples=20, data=None, seed=0, params=None, run_dir=None):
    """Simulate the generated RTL (Verilator) on ``samples`` inputs and compare every spike event, readout, class and
    cycle count with the golden and cycle models (``python -m sim``).

    The inputs are the five extreme maps, then real inputs (``data``'s FSDD test recordings, else the model's test
    vectors, else the recordings ``train.datadir`` finds), else random maps.

    Returns
    -------
    dict
        The verification summary: ``samples``, ``inputs`` (what they were), ``mismatches``, ``events_compared``,
        ``cycles_median`` ..., and ``passed``.
    """
    from sim.stimulus import mixed
    from sim.verify import verify

    model = _model(model)
    stimulus = mixed(model, samples=samples, seed=seed, data_dir=data)
    run_dir = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="spikesmith-sim-"))
    result = verify(model, stimulus.x, names=stimulus.names, run_dir=run_dir, params=params, seed=seed)
    return result.summary() | {"inputs": stimulus.source, "passed": result.passed, "run_dir": str(run_dir)}


def build(model=None, *, board="icebreaker", out=None, clock_mhz=None, pnr=True, params=None, data=None, seeds=3,
          verify=0, progress=True):
    """Build ``model`` (a model directory; default: the board's shipped model) for ``board`` (``python -m hw.build``) at
    ``clock_mhz`` (default: the board's, 24 MHz on the iCEBreaker): plan, fit check, golden and cycle models, Verilog, optionally an RTL simulation of ``verify`` samples, then
    (with ``pnr``) synthesis, place and route, pack.

    Returns
    -------
    flow.build.BuildResult
        ``out`` (the build directory) and ``report`` (the dict of ``report.json``: logic cells, block RAM, Fmax,
        latency ...).

    Raises
    ------
    ValueError
        When the model does not fit the board or an option is out of range.
    flow.build.BuildError
        When a tool fails or nextpnr misses the clock with every seed.
    """
    from flow.build import build as run
    return run(board=board, model_dir=model, out=out, clock_mhz=clock_mhz, do_build=pnr, params=params,
               data_dir=data, seeds=seeds, verify_samples=verify, progress=progress)


def read_report(build_dir):
    """The report of a finished build (``BUILD_DIR/report.json``) as a dict."""
    return json.loads((Path(build_dir) / "report.json").read_text())
