"""One trial of the design-space search: train a point of the space, measure it bit-true and on the board.

:func:`search_data` makes the search's split: the official split's training side only (the test side, index 0-4,
is never read), with one speaker's recordings held out as the validation set, so that every accuracy the search
sees is on a voice the trial never heard. :func:`run_point` trains a point with the project's trainer
(:func:`train.trainer.train`, quantization-aware), and measures from the exported model:

- the bit-true accuracy on the validation maps (the golden model, after the trainer's exact agreement check);
- from the plan on the board's device (:func:`hw.plan.plan`, :func:`hw.resources.check_fit`): whether it fits and
  why not, the logic-cell estimate, block RAMs and SPRAMs;
- from the cycle model (:func:`hw.cycles.cycles`) on the validation maps' spikes: the median cycles and
  microseconds at the build's clock, the synaptic operations per inference and every layer's firing rate.

A point the generator cannot build or the board cannot hold is refused before any training, as ``does not fit``
with the plan's message. :func:`ray_trainable` wraps :func:`run_point` for Ray Tune: it reports the validation
accuracy after every epoch (for early stopping) and the whole record at the end, with the model's files, so that
the driver writes them wherever the trial ran.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

__all__ = ["SearchData", "search_data", "run_point", "ray_trainable", "MODEL_FILES_KEY", "WORST", "NARROWEST_MEMBRANE"]

#: Key of the final result that carries the exported model's files (name to text).
MODEL_FILES_KEY = "model_files"

#: The narrowest membrane of the fit check before training, where each layer's membranes are just wide enough for
#: its integer threshold: the calibration of a trained network chooses wider ones (twice its largest membrane), so
#: a refusal there is one that training would not change.
NARROWEST_MEMBRANE = 8

#: What the searcher is told of a trial with no measured figures (refused, failed): the worst of every objective.
WORST = {"accuracy": 0.0, "latency_us": 1e9, "logic_cells": 1e9}


class SearchData:
    """The search's maps: the training side and the held-out speaker's validation side.

    Members
    -------
    dataset : train.fsdd.Dataset
        ``x_test``/``y_test`` are the validation maps (never the official test split).
    val_speaker : str
    train_names : list of str
    """

    def __init__(self, dataset, val_speaker, train_names):
        self.dataset = dataset
        self.val_speaker = val_speaker
        self.train_names = train_names

    def describe(self):
        ds = self.dataset
        return (f"{len(ds.x_train):,} training maps (official split's training side, speaker {self.val_speaker} "
                f"left out), {len(ds.x_test):,} validation maps of speaker {self.val_speaker}")


def search_data(data_dir, val_speaker, *, limit_train=None, limit_val=None, progress=True):
    """The search's split of FSDD in ``data_dir``.

    Parameters
    ----------
    val_speaker : str
        The speaker whose official-training recordings form the validation set.
    limit_train, limit_val : int, optional
        Keep an evenly spread subset of this many files on each side (quick runs, tests).

    Raises
    ------
    train.fsdd.FsddError
        For an unknown speaker or an unusable data directory.
    """
    from train.features import FeatureParams
    from train.fsdd import FsddError, dataset_of, list_recordings, speakers, split
    recs = list_recordings(data_dir)
    if val_speaker not in speakers(recs):
        raise FsddError(f"--val-speaker {val_speaker!r} is not an FSDD speaker (known: {', '.join(speakers(recs))})")
    train_side = split(recs, "official")[0]
    train = [r for r in train_side if r.speaker != val_speaker]
    val = [r for r in train_side if r.speaker == val_speaker]

    def spread(items, limit):
        if limit is None or limit >= len(items):
            return items
        return [items[i] for i in np.linspace(0, len(items) - 1, max(1, limit)).round().astype(int)]
    train, val = spread(train, limit_train), spread(val, limit_val)
    ds = dataset_of(train, val, FeatureParams(), progress=progress)
    return SearchData(ds, val_speaker, [r.path.name for r in train])


def _measure(model, x_val, board, clock_mhz):
    """The plan figures of a model on ``board`` with the validation maps; raises ValueError when it cannot be
    built there (the generator's topology) or does not fit (:class:`hw.resources.FitError`)."""
    from golden.network import run
    from hw.cycles import cycles
    from hw.plan import plan
    from hw.resources import check_fit
    p = plan(model, device=board.device)
    need, warnings = check_fit(p, board=board.name)
    result = run(model, x_val)
    total = cycles(p, result.spikes).total
    median = float(np.median(total))
    rates = {}
    for lp in p.layers[:-1]:
        rates[lp.name] = round(float(result.spikes[lp.name].mean()), 5)
    return {"fits": True, "fit_message": None, "fit_warnings": warnings, "logic_cells": need.logic_cells,
            "ebr": need.ebr, "spram": need.spram, "cycles_median": median,
            "latency_us": round(median / clock_mhz, 3), "clock_mhz": clock_mhz,
            "synaptic_ops": round(float(np.mean(result.event_ops)), 1), "dense_ops": int(result.dense_ops),
            "firing_rates": rates}


def _structure(args, input_shape, board, name):
    """The untrained network of ``args`` planned on ``board``: ``(need, dense-schedule cycles)``; raises
    ValueError with the plan's, the weight budget's or the fit check's message when it cannot be built or held
    there whatever its training gives.

    The membrane widths are only known after training (the calibration), and they change the state memories and
    the logic: the network is refused here when it does not fit even with membranes just wide enough for their
    thresholds (:data:`NARROWEST_MEMBRANE`), and the estimate returned is the one with the trainer's initial 24-bit
    membranes, above what the trained network needs."""
    from hw.cycles import dense_cycles
    from hw.plan import plan
    from hw.resources import check_fit, estimate
    from train.export import check_budget
    from train.model import SCNN
    from train.options import network_config
    config = network_config(args, input_shape)
    wide = SCNN(config).export(name=name)
    check_budget(wide, device=board.device)
    p = plan(wide, device=board.device)
    # the narrowest widths that hold each layer's threshold (the readout: NARROWEST_MEMBRANE)
    config.mem_bits = [max(NARROWEST_MEMBRANE, int(getattr(layer.neuron, "threshold", 0)).bit_length() + 2)
                       for layer in wide.layers if hasattr(layer, "neuron")]
    try:
        check_fit(plan(SCNN(config).export(name=name), device=board.device), board=board.name)
    except ValueError as error:
        raise ValueError(f"{error} (before training, with every membrane just wide enough for its threshold, "
                         f"at least {NARROWEST_MEMBRANE} bits)") from None
    return estimate(p), int(dense_cycles(p).total[0])


def run_point(point, data, *, board, clock_mhz, seed=0, workdir, on_epoch=None, name="trial"):
    """Train one point of the space and measure it (module docstring).

    Parameters
    ----------
    point : dict
        Every key of the space (:mod:`train.search.space`), fixed ones included.
    data : SearchData
    board : boards.board.Board
    clock_mhz : float
        Clock for the microseconds.
    workdir : path
        Where the trainer writes its checkpoints and the model (``workdir/model``).
    on_epoch : callable, optional
        Called with ``(history entry, upper bound figures)`` after every epoch: the figures are the untrained
        structure's logic estimate and its dense-schedule latency (an upper bound of the real one).

    Returns
    -------
    dict
        The trial record without its ``trial`` number: ``status`` (``complete``, ``does not fit`` or ``failed``),
        ``layers``, ``accuracy`` (bit-true, validation), ``float_accuracy``, the plan figures of :func:`_measure`,
        ``weights``, ``epochs_run``, ``train_seconds``, ``seconds``, ``error``, and ``model_dir`` when exported.
    """
    from train.export import BudgetError
    from train.trainer import build_parser, train
    from .space import stack_of, trainer_argv
    started = time.perf_counter()
    workdir = Path(workdir)
    record = {"status": "failed", "layers": stack_of(point), "config": dict(point), "accuracy": None,
              "float_accuracy": None, "fits": None, "fit_message": None, "logic_cells": None, "ebr": None,
              "spram": None, "cycles_median": None, "latency_us": None, "clock_mhz": clock_mhz,
              "synaptic_ops": None, "firing_rates": None, "weights": None, "epochs_run": 0, "train_seconds": None,
              "seconds": None, "error": None, "model_dir": None}
    try:
        argv = ["--data", "(search split)", "--out", str(workdir / "model"), "--run-dir", str(workdir / "run"),
                "--name", name, "--seed", str(seed), "--quiet",
                # the recipe the search was measured with (the shipped default's); the space may override each
                "--augment-copies", "0", "--mask-p", "0", "--val-speaker", "none", *trainer_argv(point)]
        args = build_parser().parse_args(argv)
        try:
            need, dense = _structure(args, tuple(data.dataset.x_train.shape[1:]), board, name)
        except (BudgetError, ValueError) as error:
            record.update(status="does not fit", fits=False, fit_message=f"does not fit: {error}")
            return record
        bound = {"logic_cells": need.logic_cells, "latency_us": round(dense / clock_mhz, 3)}

        def epoch(entry):
            record["epochs_run"] = entry["epoch"]
            if on_epoch is not None:
                on_epoch(entry, bound)
        metrics = train(args, dataset=data.dataset, on_epoch=epoch)
        import golden.manifest as gm
        model = gm.load(workdir / "model")
        record.update(accuracy=metrics["bit_true_accuracy"], float_accuracy=metrics["float_accuracy"],
                      weights=metrics["weights"], train_seconds=metrics["train_seconds"],
                      model_dir=str(workdir / "model"))
        try:
            record.update(_measure(model, data.dataset.x_test, board, clock_mhz))
            record["status"] = "complete"
        except ValueError as error:  # calibrated widths can change the plan: refused after training
            record.update(status="does not fit", fits=False, fit_message=f"does not fit: {error}")
    except Exception as error:  # a failed trial is recorded; the search goes on
        record["error"] = f"{type(error).__name__}: {error}"
        record["traceback"] = traceback.format_exc(limit=6)
    finally:
        record["seconds"] = round(time.perf_counter() - started, 2)
    return record


def _files(model_dir):
    """The exported model's files, name to text (ROMs in hex and the manifest)."""
    out = {}
    for path in sorted(Path(model_dir).iterdir()):
        if path.is_file():
            out[path.name] = path.read_text()
    return out


def ray_trainable(config, *, data, fixed, board_name, clock_mhz, seed):
    """The function Ray Tune runs for a trial: :func:`run_point` with a report after every epoch and at the end.

    Every report holds ``accuracy``, ``latency_us`` and ``logic_cells`` (the searcher's objectives): during
    training the validation accuracy of the epoch with the structure's upper-bound figures, at the end the
    measured ones and ``final = True``, the record (as JSON text) and the model's files.
    """
    import json

    import torch
    from ray import tune

    from boards import get_board
    torch.set_num_threads(1)
    point = {**fixed, **config}
    board = get_board(board_name)

    def report(entry, bound):
        tune.report({"accuracy": float(entry["test_acc"]), **bound, "phase": entry["phase"], "final": False})
    with tempfile.TemporaryDirectory(prefix="spikesmith-trial-") as tmp:
        record = run_point(point, data, board=board, clock_mhz=clock_mhz, seed=seed, workdir=tmp,
                           on_epoch=report, name=f"search_{tune.get_context().get_trial_id()}")
        files = _files(record["model_dir"]) if record.get("model_dir") else {}
    figures = {k: record[k] if record.get(k) is not None and record["status"] == "complete" else WORST[k]
               for k in WORST}
    tune.report({**figures, "final": True, "record": json.dumps(record), MODEL_FILES_KEY: files})
