"""The search driver: Ray Tune with Optuna's multi-objective sampler, early stopping, records, resume and the
command line of ``python -m train.search``.

Ray runs the trials (:func:`train.search.trial.ray_trainable`) on this machine (a local Ray started and stopped by
the command) or on a cluster (``--address``). The searcher is Optuna's TPE sampler with three objectives (bit-true
validation accuracy up, median latency down, logic-cell estimate down), seeded by ``--seed``; its study lives in
``RUN_DIR/optuna.journal``, so that ``--resume`` continues it. The first trial of a new search is the shipped default
network at the space's largest epoch counts (the baseline every other trial is compared with).

Early stopping (:class:`EarlyStop`) is asynchronous successive halving's rule made gentle enough for a
multi-objective search: at rung epochs ``G, 2G, 4G, ...`` a trial is stopped when its validation accuracy is below
the ``--stop-quantile`` of the accuracies that earlier trials had at that rung (once ``--stop-peers`` of them are
recorded). A search for several objectives keeps small, fast and less accurate networks, so only the clearly poor
trials are stopped.

The driver writes one JSON line per finished trial to ``RUN_DIR/trials.jsonl`` (flushed and synced) as the trial ends,
with its model under ``RUN_DIR/trials/NNN/model``, prints a progress line, and at the end writes the fronts
(:mod:`train.search.pareto`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from ray.tune import Callback, Stopper

from golden.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED

from . import pareto
from .space import SpaceError, load_space, stack_of
from .trial import MODEL_FILES_KEY, ray_trainable, search_data

__all__ = ["build_parser", "EarlyStop", "Recorder", "run_search", "synthesize", "main"]

OBJECTIVES = ("accuracy", "latency_us", "logic_cells")
MODES = ("max", "min", "min")
STUDY = "spikesmith-search"


class EarlyStop(Stopper):
    """The early-stopping rule (module docstring), as a Ray Tune stopper.

    Parameters
    ----------
    grace : int
        First rung, in epochs (float and quantization-aware epochs counted together).
    quantile : float
        A trial below this quantile of its peers' accuracies at a rung is stopped (0 stops nothing).
    peers : int
        Peers needed at a rung before anything is stopped there.
    """

    def __init__(self, grace=4, quantile=0.25, peers=4):
        if grace < 1 or not 0 <= quantile < 1 or peers < 1:
            raise ValueError(f"early stopping needs grace >= 1, 0 <= quantile < 1 and peers >= 1, not "
                             f"{grace}, {quantile}, {peers}")
        self.grace, self.quantile, self.peers = grace, quantile, peers
        self.rungs = {}
        self.stopped = {}

    def __call__(self, trial_id, result):
        if result.get("final"):
            return False
        epoch = int(result.get("training_iteration", 0))
        rung = self.grace
        while rung < epoch:
            rung *= 2
        if rung != epoch:
            return False
        recorded = self.rungs.setdefault(rung, {})
        peers = [v for k, v in recorded.items() if k != trial_id]
        recorded[trial_id] = float(result["accuracy"])
        if self.quantile > 0 and len(peers) >= self.peers:
            cutoff = float(np.quantile(peers, self.quantile))
            if result["accuracy"] < cutoff:
                self.stopped[trial_id] = (epoch, float(result["accuracy"]), cutoff)
                return True
        return False

    def stop_all(self):
        return False


class Recorder(Callback):
    """Writes every finished trial to the run directory and prints the progress line (a Ray Tune callback).

    Parameters
    ----------
    run_dir : path
    total : int
        Trials of the whole search.
    done : list of dict
        Records of the trials already run (a resumed search).
    stopper : EarlyStop
    baseline : dict or None
        The baseline point (its record is marked ``"baseline": true``).
    quiet : bool
    fixed : dict, optional
        The space's fixed values (added to the configuration of a trial that ended without its own record).
    """

    def __init__(self, run_dir, total, done, stopper, baseline, quiet, fixed=None):
        self.fixed = dict(fixed or {})
        self.run_dir = Path(run_dir)
        self.total, self.records = total, list(done)
        self.stopper, self.baseline, self.quiet = stopper, baseline, quiet
        self.started = time.perf_counter()
        self.new = 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        if result.get("final"):
            record = json.loads(result["record"])
            files = result.get(MODEL_FILES_KEY) or {}
        else:
            config = {**self.fixed, **trial.config}
            record = {"status": "stopped early", "layers": stack_of(config), "config": config, "accuracy": None,
                      "fits": None, "epochs_run": int(result.get("training_iteration", 0)), "error": None}
            if trial.trial_id in self.stopper.stopped:
                epoch, acc, cutoff = self.stopper.stopped[trial.trial_id]
                record["stop_reason"] = (f"validation accuracy {acc:.3f} after epoch {epoch} is below the "
                                         f"{self.stopper.quantile:.2f} quantile of the other trials there "
                                         f"({cutoff:.3f})")
                record["validation_accuracy_at_stop"] = acc
            files = {}
        self._write(trial, record, files)

    def on_trial_error(self, iteration, trials, trial, **info):
        error = "the trial's process failed"
        if trial.error_file and os.path.exists(trial.error_file):
            lines = [line for line in Path(trial.error_file).read_text().splitlines() if line.strip()]
            error = lines[-1] if lines else error
        config = {**self.fixed, **trial.config}
        record = {"status": "failed", "layers": stack_of(config), "config": config, "accuracy": None, "fits": None,
                  "error": error}
        self._write(trial, record, {})

    def _write(self, trial, record, files):
        number = len(self.records)
        record = {"trial": number, "ray_trial": trial.trial_id, **record}
        record["baseline"] = self.baseline is not None and not any(r.get("baseline") for r in self.records) and \
            all(record["config"].get(k) == v for k, v in self.baseline.items())
        record.pop("model_dir", None)
        if files:
            model = self.run_dir / "trials" / f"{number:03d}" / "model"
            model.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (model / name).write_text(text)
            record["model"] = str(model.relative_to(self.run_dir))
        with open(self.run_dir / "trials.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.records.append(record)
        self.new += 1
        if not self.quiet:
            print(progress_line(record, self.records, self.total, (time.perf_counter() - self.started) / self.new),
                  file=sys.stderr, flush=True)


def progress_line(record, records, total, per_trial):
    """``trial 2 (3/24) complete c4k3,p2x4,d28 T=4: 91.1%, 310.2 us, 3,976 LC | best 93.3% (trial 1, 250.0 us) |
    62 s/trial, ~22 min left``."""
    done = len(records)
    text = (f"trial {record['trial']} ({done}/{total}) {record['status']} {record['layers']} "
            f"T={record['config'].get('time_steps')}")
    if record["status"] == "complete":
        text += (f": {100 * record['accuracy']:.1f}%, {record['latency_us']:,.1f} us, "
                 f"{record['logic_cells']:,} LC")
    elif record.get("fit_message"):
        text += f" ({record['fit_message']})"
    elif record.get("stop_reason"):
        text += f" ({record['stop_reason']})"
    elif record.get("error"):
        text += f" ({record['error']})"
    best = max(pareto.measured(records), key=lambda r: r["accuracy"], default=None)
    if best is not None:
        text += f" | best {100 * best['accuracy']:.1f}% (trial {best['trial']}, {best['latency_us']:,.1f} us)"
    left = max(0, total - done) * per_trial
    return text + f" | {per_trial:.0f} s/trial, ~{left / 60:.0f} min left"


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m train.search",
        description="Design-space search: train many spiking networks (Ray Tune, Optuna's multi-objective TPE, "
                    "early stopping) and keep the Pareto fronts of bit-true accuracy on a held-out speaker against "
                    "the median latency and the logic cells on a board. Local Ray by default; a cluster with "
                    "--address.")
    p.add_argument("--data", required=True, help="directory of FSDD WAV files")
    p.add_argument("--space", help="search space TOML (default: the built-in space; see docs/search.md)")
    p.add_argument("--board", default="icebreaker", help="board whose device the plan uses (default: %(default)s)")
    p.add_argument("--trials", type=int, default=24, help="trials in all, earlier ones included (default: %(default)s)")
    p.add_argument("--out", required=True, help="run directory (trials.jsonl, pareto.*, models)")
    p.add_argument("--address", help="Ray cluster: HOST:PORT of a `ray start --head` (this process drives the "
                                     "search) or ray://HOST:PORT (Ray Client; the search runs on the head node, "
                                     "which must reach --out); default: a local Ray for this command")
    p.add_argument("--cpus", type=int, default=1, help="CPUs of the local Ray (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=1, help="trials at once (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler and of every training (default: 0)")
    p.add_argument("--val-speaker", default="jackson",
                   help="speaker held out of the official training side for validation (default: %(default)s)")
    p.add_argument("--limit-train", type=int, help="use only this many training files (quick runs)")
    p.add_argument("--limit-val", type=int, help="use only this many validation files (quick runs)")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="clock for the microseconds (default: the build's, 24 MHz)")
    p.add_argument("--grace-epochs", type=int, default=4, help="first early-stopping rung (default: %(default)s)")
    p.add_argument("--stop-quantile", type=float, default=0.25,
                   help="stop a trial below this quantile of the others at a rung; 0: never (default: %(default)s)")
    p.add_argument("--stop-peers", type=int, default=4,
                   help="trials recorded at a rung before it stops any (default: %(default)s)")
    p.add_argument("--no-baseline", action="store_true", help="do not measure the shipped default network first")
    p.add_argument("--synthesize", type=int, default=0, metavar="K",
                   help="place and route the K most accurate models of the fronts (hw.build, minutes each)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the summary")
    return p


def _settings(args, space):
    from flow.build import DEFAULT_CLOCK_MHZ
    return {"space": space.to_dict(), "board": args.board, "seed": args.seed, "val_speaker": args.val_speaker,
            "limit_train": args.limit_train, "limit_val": args.limit_val,
            "clock_mhz": args.clock_mhz or DEFAULT_CLOCK_MHZ, "baseline": not args.no_baseline}


def _start_ray(args):
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic reporter, silent at verbose=0
    import ray
    env = {"OMP_NUM_THREADS": "1"}
    common = {"logging_level": "ERROR", "log_to_driver": False, "runtime_env": {"env_vars": env}}
    if args.address:
        try:
            ray.init(address=args.address, **common)
        except ConnectionError as error:
            raise SpaceError(f"--address {args.address}: cannot reach the Ray cluster ({error}); a cluster started by "
                             f"`ray start --head` (Ray 2.60) asks for its token: export RAY_AUTH_MODE=token on "
                             f"this side (the token is read from ~/.ray/auth_token or $RAY_AUTH_TOKEN)") from None
    else:
        # "local": a Ray of its own even when a cluster runs on this machine (ray.init() would join that one)
        ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, **common)


def run_search(args):
    """Run (or continue) the search of ``args`` (:func:`build_parser`); returns the summary dict."""
    from boards import get_board
    from train.util import atomic_write_json
    space = load_space(args.space)
    try:
        board = get_board(args.board)
    except KeyError as error:
        raise SpaceError(f"--board: {error.args[0]}") from None
    run_dir = Path(args.out)
    settings = _settings(args, space)
    records = pareto.read_records(run_dir / "trials.jsonl")
    fresh = not (run_dir / "search.json").exists()
    if not fresh:
        if not args.resume:
            raise SpaceError(f"--out {run_dir} holds a search already: add --resume to continue it, or choose "
                             f"another --out")
        before = json.loads((run_dir / "search.json").read_text())
        changed = sorted(k for k in settings if before.get(k) != settings[k])
        if changed:
            raise SpaceError(f"--resume: {', '.join(changed)} differ from the search in {run_dir}; use the same "
                             f"options or another --out")
        if (run_dir / "trials.jsonl").exists():  # drop a torn last line before appending
            (run_dir / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    remaining = max(0, args.trials - len(records))
    baseline = space.baseline() if settings["baseline"] else None
    show = not args.quiet
    data = None
    if remaining:  # the data before anything is written: a wrong --data or --val-speaker leaves no run directory
        from train.features import warnings_to_stderr
        with warnings_to_stderr():
            data = search_data(args.data, args.val_speaker, limit_train=args.limit_train,
                               limit_val=args.limit_val, progress=show)
    if fresh:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "search.json", settings)
    if remaining:
        if show:
            print(f"search: {data.describe()}; {remaining} of {args.trials} trials to run on "
                  f"{'the cluster at ' + args.address if args.address else 'a local Ray'}", file=sys.stderr)
        records = _tune(args, space, board, settings, data, records, remaining, baseline)
    return _finish(args, run_dir, records, board, settings)


def _tune(args, space, board, settings, data, records, remaining, baseline):
    import optuna
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch
    run_dir = Path(args.out).resolve()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run_dir / "optuna.journal")))
    names = [study.study_name for study in storage.get_all_studies()]
    before = len(optuna.load_study(study_name=STUDY, storage=storage).trials) if STUDY in names else 0
    fresh = not records and not before
    # a resumed search draws on: the same seed would repeat the first session's random start-up points
    sampler = optuna.samplers.TPESampler(seed=args.seed + before)
    searcher = OptunaSearch(metric=list(OBJECTIVES), mode=list(MODES), sampler=sampler, storage=storage,
                            study_name=STUDY,
                            points_to_evaluate=[baseline] if fresh and baseline is not None else None)
    stopper = EarlyStop(args.grace_epochs, args.stop_quantile, args.stop_peers)
    recorder = Recorder(run_dir, args.trials, records, stopper, baseline, args.quiet, space.fixed)
    _start_ray(args)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(ray_trainable, data=data, fixed=space.fixed, board_name=board.name,
                                 clock_mhz=settings["clock_mhz"], seed=args.seed), {"cpu": 1})
        session = len(list((run_dir / "ray").glob("session_*"))) if (run_dir / "ray").exists() else 0
        tuner = tune.Tuner(
            trainable, param_space=space.tune_space(),
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=remaining,
                                        max_concurrent_trials=args.concurrency, reuse_actors=True),
            run_config=tune.RunConfig(name=f"session_{session}", storage_path=str(run_dir / "ray"), verbose=0,
                                      stop=stopper, callbacks=[recorder],
                                      failure_config=tune.FailureConfig(max_failures=0)))
        tuner.fit()
    finally:
        ray.shutdown()
    # with Ray Client the recorder ran on the cluster's head: the file is what it wrote
    return pareto.read_records(run_dir / "trials.jsonl")


def _finish(args, run_dir, records, board, settings):
    baseline = next((r for r in pareto.measured(records) if r.get("baseline")), None)
    on = pareto.write_outputs(records, run_dir, title=f"{len(records)} trials on {board.title}", baseline=baseline)
    counts = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    summary = {"run_dir": str(run_dir), "trials": len(records), "status": counts,
               "fronts": {name: [r["trial"] for r in rows] for name, rows in on.items()},
               "baseline": None if baseline is None else {k: baseline[k] for k in ("trial", "accuracy", "latency_us",
                                                                                    "logic_cells")},
               "dominating_baseline": json.loads((run_dir / "pareto.json").read_text()).get("dominating_baseline")}
    if args.synthesize:
        summary["synthesis"] = synthesize(run_dir, records, board, args.synthesize, settings["clock_mhz"],
                                          progress=not args.quiet)
    return summary


def synthesize(run_dir, records, board, k, clock_mhz, *, progress=True, do_build=True):
    """Place and route the ``k`` most accurate models of the fronts (:func:`flow.build.build`) into
    ``run_dir/synth/trial_NNN``; writes ``synthesis.jsonl`` and returns its rows (a failed build is a row with
    its error)."""
    from flow.build import build
    from train.util import atomic_write_text
    run_dir = Path(run_dir)
    on = {r["trial"]: r for rows in pareto.fronts(records).values() for r in rows}
    best = sorted(on.values(), key=lambda r: (-r["accuracy"], r["latency_us"], r["logic_cells"]))[:k]
    rows = []
    for r in best:
        name = f"trial_{r['trial']:03d}"
        row = {"trial": r["trial"], "layers": r["layers"], "accuracy": r["accuracy"],
               "estimate_logic_cells": r["logic_cells"], "model_latency_us": r["latency_us"]}
        started = time.perf_counter()
        try:
            res = build(board=board, model_dir=run_dir / "pareto" / name, out=run_dir / "synth" / name,
                        clock_mhz=clock_mhz, progress=progress, do_build=do_build)
            rep = res.report
            keys = ("logic_cells", "logic_cells_available", "ebr", "fmax_mhz", "clock_mhz", "latency_cycles_median",
                    "latency_us_median")
            row.update({key: rep.get(key) for key in keys})
            row["status"] = "built"
        except Exception as error:  # a build that fails is a result too
            row.update(status="failed", error=f"{type(error).__name__}: {error}")
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        if progress:
            print(f"synthesis {len(rows)}/{len(best)} trial {r['trial']}: {row['status']} "
                  f"{row.get('logic_cells', row.get('error'))}", file=sys.stderr)
    atomic_write_text(run_dir / "synthesis.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    return rows


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.trials < 1 or args.concurrency < 1 or args.cpus < 1 or args.synthesize < 0:
        print("error: --trials, --concurrency and --cpus must be at least 1, --synthesize at least 0", file=sys.stderr)
        return EXIT_BAD_INPUT
    from train.fsdd import FsddError
    try:
        summary = run_search(args)
    except (SpaceError, FsddError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    base = summary["baseline"]
    lines = [f"{summary['trials']} trials in {summary['run_dir']}: "
             + ", ".join(f"{n} {s}" for s, n in sorted(summary["status"].items())),
             f"latency front: trials {summary['fronts']['latency']}; logic front: trials {summary['fronts']['logic']}"
             f" (pareto.md, pareto_latency.png, pareto_logic.png, models in pareto/)"]
    if base is not None:
        dom = summary["dominating_baseline"]
        said = [f"{what} by trials {dom[key]}" for key, what in (("latency", "as accurate and faster"),
                                                                  ("logic", "as accurate and smaller"),
                                                                  ("both", "on all three"))
                if dom[key]]
        lines.append(f"baseline (the shipped default network, trial {base['trial']}): {100 * base['accuracy']:.1f}%, "
                     f"{base['latency_us']:,.1f} us, {base['logic_cells']:,} LC; "
                     + ("dominated " + "; ".join(said) if said else "dominated by no trial"))
    if summary["trials"] < args.trials:  # Ray Tune ends the search on Ctrl-C with the trials done so far
        lines.append(f"the search stopped after {summary['trials']} of {args.trials} trials: add --resume to the same "
                     f"command to continue it")
    print("\n".join(lines))
    if args.json:
        print(json.dumps(summary))
    return 0 if summary["trials"] >= args.trials else EXIT_INTERRUPTED
