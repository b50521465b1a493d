"""The design-space search (train.search): the space, the fronts, early stopping, and a two-trial search on Ray."""

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("ray.tune")
pytest.importorskip("optuna")

from train.search import pareto  # noqa: E402
from train.search.cli import EarlyStop  # noqa: E402
from train.search.space import (DEFAULT_SPACE, Space, SpaceError, load_space, stack_of,  # noqa: E402
                                trainer_argv)

# -- the space ---------------------------------------------------------------------------------------------------


def test_default_space_holds_the_shipped_default_at_its_longest_recipe():
    space = load_space()
    base = space.baseline()
    assert stack_of({**space.fixed, **base}) == "c4k3,p2x4,d28"
    assert base["epochs"] == max(DEFAULT_SPACE["epochs"]) and base["time_steps"] == 4
    argv = trainer_argv({**space.fixed, **base})
    assert argv[:2] == ["--layers", "c4k3,p2x4,d28"] and "--qat-epochs" in argv and "--shift" in argv


def test_space_file_overrides_and_fixes(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('layers = ["c2k3,p4x8,d16", "c4k3,p2x4,d28"]\nthreshold = {low = 0.5, high = 1.5, log = true}\n'
                    'epochs = 3\n')
    space = load_space(path)
    assert space.entries["layers"] == ("choice", ["c2k3,p4x8,d16", "c4k3,p2x4,d28"])
    assert "channels" not in space.entries and space.fixed["epochs"] == 3
    assert space.entries["threshold"] == ("range", 0.5, 1.5, True)
    assert space.baseline() is None  # a stack given whole: the default is not a point of it
    assert stack_of({"layers": "c2k3,p4x8,d16"}) == "c2k3,p4x8,d16"


@pytest.mark.parametrize("text, message", [
    ("depth = [1, 2]", r"^unknown space keys \['depth'\] \(known: leak_shift, "),
    ("epochs = {low = 5, high = 2}", r"^space key 'epochs': range needs low < high"),
    ("epochs = []", r"^space key 'epochs': a list of choices must not be empty$"),
    ("reset = [1]", r"^space key 'reset': values must be of type str, not 1$"),
    ('layers = ["c4k3,d28,p2x2"]', r"^space key 'layers': layer 3 'p2x2': a pool layer needs a map"),
    ('pool = ["2by4"]', r"^space key 'pool': a window is 'HxW' such as '2x4', not '2by4'$"),
    ('layers = ["c4k3,d28"]\nchannels = [2]', r"^space keys 'layers' and \['channels'\] both give the layer stack"),
])
def test_space_errors_name_the_key(tmp_path, text, message):
    path = tmp_path / "space.toml"
    path.write_text(text + "\n")
    with pytest.raises(SpaceError, match=message):
        load_space(path)


def test_space_file_not_toml(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text("epochs = [\n")
    with pytest.raises(SpaceError, match=r"^--space .*space.toml: not valid TOML"):
        load_space(path)
    with pytest.raises(SpaceError, match=r"^a search space is a table of keys"):
        Space([1])


# -- fronts ------------------------------------------------------------------------------------------------------

def _rec(trial, acc, lat, lc, status="complete"):
    return {"trial": trial, "status": status, "accuracy": acc, "latency_us": lat, "logic_cells": lc}


def _brute_front(records, cost):
    rows = [r for r in records if r["status"] == "complete"]
    return sorted(r["trial"] for r in rows
                  if not any(o["accuracy"] >= r["accuracy"] and o[cost] <= r[cost]
                             and (o["accuracy"] > r["accuracy"] or o[cost] < r[cost]) for o in rows))


def test_front_keeps_exactly_the_undominated_trials():
    records = [_rec(0, 0.90, 300, 4000), _rec(1, 0.92, 200, 4500), _rec(2, 0.85, 100, 3000),
               _rec(3, 0.85, 150, 2900), _rec(4, 0.95, 400, 4100), _rec(5, 0.92, 200, 4500),
               _rec(6, 0.99, 10, 10, status="does not fit"), _rec(7, None, None, None, status="failed")]
    assert [r["trial"] for r in pareto.front(records, "latency_us")] == [2, 1, 5, 4]
    assert [r["trial"] for r in pareto.front(records, "logic_cells")] == [3, 0, 4]
    assert pareto.dominates(records[1], records[0], ("latency_us",))
    assert not pareto.dominates(records[1], records[0], ("latency_us", "logic_cells"))
    assert not pareto.dominates(records[1], records[5], ("latency_us",))  # equal figures: both stay
    assert pareto.dominating(records, records[0]) == {"latency": [1, 5], "logic": [], "both": []}
    assert pareto.dominating(records, records[3]) == {"latency": [2], "logic": [], "both": []}
    assert pareto.dominating(records, _rec(9, 0.85, 150, 3000)) == {"latency": [2], "logic": [3], "both": [2, 3]}
    assert pareto.beats(records[1], records[0]) == ["latency"] and pareto.beats(records[2], records[0]) == []


def test_front_matches_brute_force_on_random_records():
    import random
    rng = random.Random(3)
    for _ in range(50):
        records = [_rec(i, rng.choice([0.8, 0.85, 0.9, 0.95]), rng.choice([100, 200, 300]), rng.randint(1, 5) * 1000,
                        rng.choice(["complete", "complete", "stopped early"])) for i in range(12)]
        for cost in ("latency_us", "logic_cells"):
            assert sorted(r["trial"] for r in pareto.front(records, cost)) == _brute_front(records, cost)


# -- early stopping ----------------------------------------------------------------------------------------------

def test_early_stop_waits_for_peers_and_stops_below_the_quantile():
    stop = EarlyStop(grace=2, quantile=0.25, peers=3)
    for trial, acc in (("a", 0.5), ("b", 0.6), ("c", 0.7)):
        assert not stop(trial, {"training_iteration": 2, "accuracy": acc})  # fewer than 3 peers before each
    assert not stop("d", {"training_iteration": 1, "accuracy": 0.0})  # not a rung
    assert not stop("d", {"training_iteration": 2, "accuracy": 0.56})  # quantile of 0.5, 0.6, 0.7 is 0.55
    assert stop("e", {"training_iteration": 2, "accuracy": 0.52})  # quantile of 0.5, 0.56, 0.6, 0.7 is 0.545
    assert stop.stopped["e"] == (2, 0.52, pytest.approx(0.545))
    assert not stop("e", {"training_iteration": 3, "accuracy": 0.1, "final": True})
    assert not stop("a", {"training_iteration": 3, "accuracy": 0.1})  # between rungs 2 and 4
    with pytest.raises(ValueError, match="early stopping needs grace >= 1"):
        EarlyStop(grace=0)


def test_recorder_writes_stopped_and_failed_trials_with_the_fixed_keys(tmp_path):
    from types import SimpleNamespace

    from train.search.cli import Recorder
    stop = EarlyStop(grace=2, quantile=0.5, peers=1)
    stop("t0", {"training_iteration": 2, "accuracy": 0.6})
    assert stop("t1", {"training_iteration": 2, "accuracy": 0.3})
    fixed = {"kernel": 3, "qat_epochs": 4}
    config = {"channels": 2, "pool": "4x8", "hidden": "16", "time_steps": 3}
    recorder = Recorder(tmp_path, 3, [], stop, None, True, fixed)
    recorder.on_trial_complete(0, [], SimpleNamespace(trial_id="t1", config=config, error_file=None,
                                                      last_result={"training_iteration": 2, "accuracy": 0.3}))
    error_file = tmp_path / "error.txt"
    error_file.write_text("Traceback ...\nMemoryError: out of memory\n")
    recorder.on_trial_error(0, [], SimpleNamespace(trial_id="t2", config=config, error_file=str(error_file),
                                                   last_result={}))
    stopped, failed = pareto.read_records(tmp_path / "trials.jsonl")
    assert stopped["status"] == "stopped early" and stopped["layers"] == "c2k3,p4x8,d16"
    assert stopped["config"] == {**fixed, **config} and stopped["epochs_run"] == 2
    assert stopped["stop_reason"] == ("validation accuracy 0.300 after epoch 2 is below the 0.50 quantile of the "
                                      "other trials there (0.600)")
    assert (failed["trial"], failed["status"], failed["error"]) == (1, "failed", "MemoryError: out of memory")


# -- a search ----------------------------------------------------------------------------------------------------

TINY = 'epochs = [1, 2]\nqat_epochs = 1\nchannels = [2, 4]\npool = ["2x4", "4x8"]\n'
RECORD_KEYS = {"trial", "ray_trial", "status", "layers", "config", "accuracy", "fits", "error", "baseline"}
MEASURED_KEYS = {"float_accuracy", "fit_message", "logic_cells", "ebr", "spram", "cycles_median", "latency_us",
                 "clock_mhz", "synaptic_ops", "dense_ops", "firing_rates", "weights", "epochs_run", "train_seconds",
                 "seconds", "model"}


def _search(fsdd_dir, space, out, *extra, env=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd(), **(env or {})}
    return subprocess.run([sys.executable, "-m", "train.search", "--data", str(fsdd_dir), "--space", str(space),
                           "--out", str(out), "--limit-train", "120", "--limit-val", "30", "--quiet", "--json",
                           *extra], capture_output=True, text=True, env=env, timeout=600)


def _check_run(out, trials):
    import golden.manifest as gm
    from hw.plan import plan
    records = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert [r["trial"] for r in records] == list(range(trials))
    assert records[0]["baseline"] and records[0]["layers"] == "c4k3,p2x4,d28"
    for r in records:
        assert RECORD_KEYS <= set(r), r
        assert r["status"] in ("complete", "does not fit", "stopped early", "failed")
        if r["status"] == "complete":
            assert MEASURED_KEYS <= set(r) and r["fits"] is True and 0 <= r["accuracy"] <= 1
            assert r["latency_us"] == pytest.approx(r["cycles_median"] / r["clock_mhz"], abs=1e-3)
            assert set(r["firing_rates"]) >= {"conv1", "pool1"}
            assert (out / r["model"] / "manifest.json").is_file()
        if r["status"] == "does not fit":
            assert r["fit_message"].startswith("does not fit: ")
    summary = json.loads((out / "pareto.json").read_text())
    for name, cost, _ in pareto.FRONTS:
        assert sorted(summary[name]) == _brute_front(records, cost)
        assert (out / f"pareto_{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for trial, path in summary["models"].items():
        model = gm.load(out / path)  # ready for hw.build: loads and plans on the board's device
        plan(model)
    assert "| trial | fronts | layers |" in (out / "pareto.md").read_text()
    return records


def test_two_trial_search_then_resume(fsdd_dir, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text(TINY)
    out = tmp_path / "run"
    done = _search(fsdd_dir, space, out, "--trials", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["trials"] == 2 and summary["baseline"]["trial"] == 0
    first = _check_run(out, 2)
    refused = _search(fsdd_dir, space, out, "--trials", "3")
    assert refused.returncode == 2 and "holds a search already: add --resume" in refused.stderr
    changed = _search(fsdd_dir, space, out, "--trials", "3", "--resume", "--seed", "1")
    assert changed.returncode == 2 and "--resume: seed differ from the search" in changed.stderr
    again = _search(fsdd_dir, space, out, "--trials", "3", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    records = _check_run(out, 3)
    assert records[:2] == first  # the recorded trials are kept, one more is run


def test_synthesize_builds_the_most_accurate_of_the_fronts(tmp_path):
    """--synthesize K hands the front's most accurate models to hw.build (here without the tools: the plan, fit,
    latency and generated files steps)."""
    from boards import get_board
    from train.search.cli import synthesize
    run = tmp_path / "run"
    shutil.copytree("models/fsdd_scnn", run / "pareto" / "trial_001")
    records = [{**_rec(0, 0.90, 100, 3000), "layers": "c2k3,p4x8,d16"},
               {**_rec(1, 0.95, 300, 4000), "layers": "c4k3,p2x4,d28"},
               {**_rec(2, 0.80, 400, 5000), "layers": "c4k3,p2x4,d28"}]
    rows = synthesize(run, records, get_board("icebreaker"), 1, 24.0, progress=False, do_build=False)
    assert [r["trial"] for r in rows] == [1] and rows[0]["status"] == "built", rows
    assert rows[0]["latency_us_median"] > 0 and (run / "synth" / "trial_001").is_dir()
    assert [json.loads(line) for line in (run / "synthesis.jsonl").read_text().splitlines()] == rows


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_same_search_on_a_ray_start_head_cluster(fsdd_dir, tmp_path):
    """`ray start --head` on this machine, then the CI search unchanged but for --address (a minute or two)."""
    ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd(), "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token"}
    head = subprocess.Popen([ray, "start", "--head", "--block", "--port", str(port), "--num-cpus", "1",
                             "--include-dashboard", "false", "--disable-usage-stats"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        for line in head.stdout:  # wait until the head is up
            if "Ray runtime started" in line:
                break
        assert head.poll() is None, "ray start --head failed"
        space = tmp_path / "space.toml"
        space.write_text(TINY)
        out = tmp_path / "run"
        done = _search(fsdd_dir, space, out, "--trials", "2", "--address", f"127.0.0.1:{port}",
                       env={"RAY_AUTH_MODE": "token"})
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout.splitlines()[-1])["trials"] == 2
        _check_run(out, 2)
    finally:
        head.terminate()  # --block: stops the head's processes on SIGTERM
        head.wait(timeout=60)


def test_bad_data_or_speaker_is_refused_before_anything_is_written(fsdd_dir, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text(TINY)
    out = tmp_path / "run"
    done = _search(tmp_path / "nowhere", space, out, "--trials", "1")
    assert done.returncode == 2 and "data directory does not exist" in done.stderr and not out.exists()
    done = _search(fsdd_dir, space, out, "--trials", "1", "--val-speaker", "bob")
    assert done.returncode == 2 and not out.exists()
    assert "error: --val-speaker 'bob' is not an FSDD speaker (known: george, jackson," in done.stderr
