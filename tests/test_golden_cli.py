"""``python -m golden``: the summary, the JSON line, saved spike trains and the refusals."""

import json
import subprocess
import sys

import numpy as np

from golden.network import run
from golden.randmodel import random_inputs


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "golden", *args], capture_output=True, text=True, cwd=cwd)


def test_json_summary_matches_the_model(root, tiny_shipped, tmp_path):
    x = random_inputs(tiny_shipped, 7, np.random.default_rng(1))
    np.save(tmp_path / "x.npy", x)
    labels = run(tiny_shipped, x).classes
    np.save(tmp_path / "y.npy", labels)
    p = cli("--model", str(root / "models/tiny"), "--input", str(tmp_path / "x.npy"), "--labels",
            str(tmp_path / "y.npy"), "--json", "--save-spikes", str(tmp_path / "s.npz"))
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["samples"] == 7 and s["accuracy"] == 1.0
    assert s["classes"] == labels.tolist()
    saved = np.load(tmp_path / "s.npz")
    r = run(tiny_shipped, x)
    assert np.array_equal(saved["spikes_conv1"], r.spikes["conv1"])
    assert np.array_equal(saved["readout"], r.readout)


def test_random_inputs(root):
    p = cli("--model", str(root / "models/tiny"), "--random", "5")
    assert p.returncode == 0 and "5 samples" in p.stdout


def test_bad_model_is_refused(tmp_path):
    p = cli("--model", str(tmp_path), "--random", "2")
    assert p.returncode == 2 and "manifest.json is missing" in p.stderr


def test_bad_input_is_refused(root, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 1, 8, 11), dtype=np.int8))
    p = cli("--model", str(root / "models/tiny"), "--input", str(tmp_path / "x.npy"))
    assert p.returncode == 2 and "expects [N, 1, 8, 12]" in p.stderr
    (tmp_path / "junk.npy").write_text("junk")
    p = cli("--model", str(root / "models/tiny"), "--input", str(tmp_path / "junk.npy"))
    assert p.returncode == 2 and "cannot read a .npy array" in p.stderr
