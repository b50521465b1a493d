"""The virtual board (``python -m boards.virtual``) behind a pseudo-terminal, and the replay of test vectors
(``python -m boards.host --verify``) against it: the same commands a user runs on a real iCEBreaker."""

import io

import numpy as np
import pytest

from boards.replay import ReplayReport, load_vectors, replay
from boards.protocol import Result
from virtual_board import ROOT, host, virtual_board


@pytest.fixture(scope="module")
def virtual_port(tmp_path_factory):
    """A virtual iCEBreaker running the shipped tiny model; yields its port name."""
    with virtual_board(tmp_path_factory.mktemp("virtual"), "--model", str(ROOT / "models" / "tiny")) as port:
        yield port


_host = host


def test_replay_on_the_virtual_board(virtual_port, tiny_shipped, tmp_path):
    from sim.stimulus import mixed
    maps = tmp_path / "maps.npy"
    np.save(maps, mixed(tiny_shipped, samples=8, seed=6).x)
    out = _host("--port", virtual_port, "--model", str(ROOT / "models" / "tiny"), "--verify", str(maps))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("samples 8; mismatches 0 (class, readout values, "
                                                          "cycle count); ")


def test_replay_against_another_model_is_refused(virtual_port, tmp_path):
    """The identify reply names the model's hash: vectors of another model are not sent."""
    from golden.manifest import save
    from golden.randmodel import random_model
    save(random_model(3), tmp_path / "other")
    maps = tmp_path / "maps.npy"
    np.save(maps, np.zeros((1,) + tuple(random_model(3).input_shape), dtype=np.int8))
    out = _host("--port", virtual_port, "--model", str(tmp_path / "other"), "--verify", str(maps))
    assert out.returncode == 1 and "error: board" in out.stderr
    # the board runs a shipped model (as a board built with its default model does): the error names it
    assert f"the board runs the shipped model tiny: pass --model {ROOT / 'models' / 'tiny'}" in out.stderr, out.stderr


class _Board:
    """A client that answers from the golden model, one reply changed."""

    def __init__(self, model, wrong_at):
        from sim.checker import expect
        from sim.verify import hardware_plan
        self.model, self.wrong_at, self.count = model, wrong_at, 0
        self.plan = hardware_plan(model)
        self.expect = expect

    def infer(self, x):
        e = self.expect(self.model, x[None], plan=self.plan)
        readout = [int(v) for v in e.readout[0]]
        if self.count == self.wrong_at:
            readout[1] += 1
        self.count += 1
        return Result(int(e.classes[0]), int(e.cycles[0]), tuple(readout))


def test_replay_names_the_sample_and_the_value(tiny_shipped):
    from sim.stimulus import random_inputs
    x = random_inputs(tiny_shipped, 5, 2).x
    out = io.StringIO()
    report = replay(_Board(tiny_shipped, 3), tiny_shipped, x, [f"m{k}" for k in range(5)], out=out)
    assert isinstance(report, ReplayReport) and report.samples == 5
    assert len(report.mismatches) == 1 and report.mismatches[0].startswith("sample 3 (m3): readout 1: expected ")
    assert "mismatch: sample 3 (m3): readout 1" in out.getvalue()


def test_load_vectors_checks_shapes(tiny_shipped, tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 1, 2, 2), dtype=np.int8))
    with pytest.raises(ValueError, match=r"bad\.npy: input maps of shape \(1, 2, 2\), model tiny takes "):
        load_vectors(tiny_shipped, files=[bad])
    with pytest.raises(ValueError, match=r"^model tiny carries no test vectors: give --data DIR"):
        load_vectors(tiny_shipped)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"pickled\.npy: not a \.npy file of input maps"):
        load_vectors(tiny_shipped, files=[pickled])
    one = tmp_path / "one.npy"
    np.save(one, np.ones(tuple(tiny_shipped.input_shape), dtype=np.int8))
    vectors = load_vectors(tiny_shipped, files=[one])
    assert vectors.x.shape == (1,) + tuple(tiny_shipped.input_shape) and vectors.names == ["one.npy[0]"]


def test_load_vectors_falls_back_on_the_models_own(root):
    from golden.manifest import load
    model = load(root / "models" / "fsdd_scnn")
    vectors = load_vectors(model)
    assert len(vectors.names) == 300 and np.array_equal(vectors.x, model.test_vectors.x)
    assert vectors.source.startswith("test vectors of model fsdd_scnn (FSDD official split")
