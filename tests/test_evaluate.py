"""``train.evaluate`` warns when the test side of the chosen split holds recordings the model was trained on."""

from pathlib import Path

import pytest

from golden.manifest import load
from train import evaluate, fsdd
from conftest import FSDD

DATA = FSDD


def _recordings(tmp_path):
    d = tmp_path / "recordings"
    d.mkdir()
    for digit in range(2):
        for speaker in ("alice", "bob"):
            for index in range(8):
                (d / f"{digit}_{speaker}_{index}.wav").write_bytes(b"")
    return fsdd.list_recordings(d)


def test_seen_in_training_follows_the_recorded_split(tmp_path):
    recs = _recordings(tmp_path)
    bob = fsdd.split(recs, "speaker:bob")[1]
    official = fsdd.split(recs, "official")[1]
    # trained on the official split: bob's recordings 5-7 were training data
    seen = fsdd.seen_in_training(fsdd.training_record("official"), recs, bob)
    assert sorted(r.path.name for r in seen) == sorted(f"{d}_bob_{i}.wav" for d in range(2) for i in (5, 6, 7))
    assert fsdd.seen_in_training(fsdd.training_record("official"), recs, official) == []
    # trained without bob: nothing of bob's was seen
    assert fsdd.seen_in_training(fsdd.training_record("speaker:bob"), recs, bob) == []
    # a reduced run saw only an evenly spread subset
    assert len(fsdd.seen_in_training(fsdd.training_record("official", limit_train=2), recs, bob)) <= 2
    # no record, another data set, or a split this directory cannot form: unknown
    for record in (None, {"dataset": "mnist", "split": "official"}, {"dataset": "fsdd", "split": "speaker:carol"}):
        assert fsdd.seen_in_training(record, recs, bob) is None


def test_the_caveat_lines():
    base = {"model": "m", "split": "speaker:bob", "samples": 500, "training": {"dataset": "fsdd",
                                                                              "split": "official"}}
    assert evaluate.training_caveat({**base, "seen_in_training": 0}) is None
    assert evaluate.training_caveat({**base, "seen_in_training": 450}) == (
        "warning: 450 of the 500 test recordings of split speaker:bob were in the model's training data (split "
        "official): this accuracy is not a measure of recordings it never heard")
    assert evaluate.training_caveat({**base, "seen_in_training": None}).startswith(
        "note: m does not record its training split")


def test_the_shipped_model_records_its_training_split():
    assert load("models/fsdd_scnn").training == {"dataset": "fsdd", "split": "official"}


@pytest.mark.skipif(not DATA.is_dir(), reason=f"FSDD recordings not found at {DATA}")
def test_speaker_split_of_the_shipped_model_warns(capsys):
    assert evaluate.main(["--data", str(DATA), "--split", "speaker:jackson", "--quiet", "--json"]) == 0
    captured = capsys.readouterr()
    assert ("warning: 450 of the 500 test recordings of split speaker:jackson were in the model's training data "
            "(split official)") in captured.err
    assert '"seen_in_training": 450' in captured.out


def test_model_or_default_finds_the_shipped_model_from_anywhere(tmp_path, monkeypatch):
    """A command's --model left out means the shipped default model in the repository, whatever the working
    directory; a given path is kept."""
    from flow.build import default_model_dir
    from train.util import model_or_default
    monkeypatch.chdir(tmp_path)
    assert model_or_default(None) == str(default_model_dir())
    assert (default_model_dir() / "manifest.json").is_file()
    assert model_or_default("models/x") == "models/x"
