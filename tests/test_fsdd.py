"""Tests of the FSDD loader (train/fsdd.py): splits, listing, and the download against a loopback HTTP server."""

import functools
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from train import fsdd
from train.fsdd import FsddError
from conftest import FSDD

DATA = FSDD
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"FSDD recordings not found at {DATA}")

SPEAKERS = ("alice", "bob")


def _wav_bytes(seed):
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    scipy.io.wavfile.write(buf, 8000, (rng.standard_normal(800) * 3000).astype(np.int16))
    return buf.getvalue()


def _names(indices=range(7)):
    return [f"{d}_{s}_{i}.wav" for d in range(2) for s in SPEAKERS for i in indices]


def _archive(names, *, extra=None, compression=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        zf.writestr("free-spoken-digit-dataset-abc/README.md", "FSDD test archive\n")
        for n, name in enumerate(names):
            zf.writestr(f"free-spoken-digit-dataset-abc/recordings/{name}", _wav_bytes(n))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/www``; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# -- listing and splits --------------------------------------------------------------------------------------

def _fake_dir(tmp_path, names):
    d = tmp_path / "recordings"
    d.mkdir()
    for name in names:
        (d / name).write_bytes(b"")
    (d / "README.md").write_text("not a recording")
    return d


def test_list_and_official_split(tmp_path):
    d = _fake_dir(tmp_path, _names())
    recs = fsdd.list_recordings(d)
    assert len(recs) == 28
    train, test = fsdd.split(recs)
    assert len(test) == 20 and len(train) == 8
    assert all(r.index < 5 for r in test) and all(r.index >= 5 for r in train)
    assert fsdd.list_recordings(tmp_path)[0].path.parent == d


def test_speaker_split_and_errors(tmp_path):
    recs = fsdd.list_recordings(_fake_dir(tmp_path, _names()))
    train, test = fsdd.split(recs, "speaker:bob")
    assert {r.speaker for r in test} == {"bob"} and {r.speaker for r in train} == {"alice"}
    with pytest.raises(FsddError, match="unknown speaker 'carol' \\(known: alice, bob\\)"):
        fsdd.split(recs, "speaker:carol")
    with pytest.raises(FsddError, match="unknown split 'random'"):
        fsdd.split(recs, "random")
    with pytest.raises(FsddError, match="does not exist"):
        fsdd.list_recordings(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FsddError, match="no FSDD recordings"):
        fsdd.list_recordings(empty)


@needs_data
def test_real_splits():
    recs = fsdd.list_recordings(DATA)
    assert len(recs) == 3000
    train, test = fsdd.split(recs, "official")
    assert (len(train), len(test)) == (2700, 300)
    assert not {r.path for r in train} & {r.path for r in test}
    assert sorted(np.bincount([r.digit for r in test]).tolist()) == [30] * 10
    assert len(fsdd.speakers(recs)) == 6
    for who in fsdd.speakers(recs):
        tr, te = fsdd.split(recs, f"speaker:{who}")
        assert (len(tr), len(te)) == (2500, 500)
        assert who not in {r.speaker for r in tr}


def test_validation_speaker(tmp_path):
    recs = fsdd.list_recordings(_fake_dir(tmp_path, _names()))
    train, _ = fsdd.split(recs)
    assert fsdd.validation_speaker(train, "auto", seed=0) == "alice"
    assert fsdd.validation_speaker(train, "auto", seed=3) == "bob"
    assert fsdd.validation_speaker(train, "bob") == "bob"
    assert fsdd.validation_speaker(train, "none") is None and fsdd.validation_speaker(train, None) is None
    with pytest.raises(FsddError, match=r"^validation speaker 'carol' is not on the training side \(training "
                                        r"speakers: alice, bob\)$"):
        fsdd.validation_speaker(train, "carol")
    alone, _ = fsdd.split(recs, "speaker:bob")
    with pytest.raises(FsddError, match=r"^a validation speaker needs two training speakers; the training side has "
                                        r"alice \(use --val-speaker none\)$"):
        fsdd.validation_speaker(alone)


@needs_data
def test_validation_side_is_one_training_speaker_and_no_test_file():
    ds = fsdd.load_dataset(DATA, "speaker:theo", limit_train=600, val_speaker="lucas", progress=False)
    assert ds.val_speakers == ["lucas"]
    assert {r.speaker for r in ds.train_recordings} == {"george", "jackson", "nicolas", "yweweler"}
    assert len(ds.x_val) == len(ds.y_val) == 120 and len(ds.x_train) == 480 and len(ds.x_test) == 500
    assert all(n.split("_")[1] == "theo" for n in ds.test_names)


@needs_data
def test_validation_index_holds_out_the_same_takes_of_every_speaker_and_digit():
    ds = fsdd.load_dataset(DATA, "official", limit_train=900, val_index=(5, 9), progress=False)
    val = [r for r in fsdd.training_recordings(fsdd.list_recordings(DATA), "official", 900) if 5 <= r.index <= 9]
    assert ds.val_speakers == [] and len(ds.x_val) == len(ds.y_val) == len(val) > 0
    assert all(r.index >= 10 for r in ds.train_recordings)
    assert len(ds.x_train) + len(ds.x_val) == 900 and len(ds.x_test) == 300
    assert sorted(ds.y_val.tolist()) == sorted(r.digit for r in val)
    with pytest.raises(FsddError, match=r"^choose a validation speaker or a validation index range, not both$"):
        fsdd.load_dataset(DATA, val_speaker="theo", val_index=(5, 9), progress=False)


def test_validation_index_refuses_empty_and_whole_ranges():
    recs = [fsdd.Recording(Path(f"{d}_alice_{i}.wav"), d, "alice", i) for d in range(2) for i in range(5, 8)]
    assert [r.index for r in fsdd.validation_index(recs, 6, 6)] == [6, 6]
    with pytest.raises(FsddError, match=r"^validation index range 9-3 is empty \(need 0 <= LO <= HI\)$"):
        fsdd.validation_index(recs, 9, 3)
    with pytest.raises(FsddError, match=r"^validation index range 20-30 holds no training recording \(training "
                                        r"indices 5-7\)$"):
        fsdd.validation_index(recs, 20, 30)
    with pytest.raises(FsddError, match=r"^validation index range 0-9 holds all 6 training recordings; leave some "
                                        r"to train on$"):
        fsdd.validation_index(recs, 0, 9)


# -- download ------------------------------------------------------------------------------------------------

def test_download_installs_checked_recordings(tmp_path, server):
    www, base = server
    names = _names()
    (www / "fsdd.zip").write_bytes(_archive(names))
    dest = tmp_path / "data"
    path = fsdd.download(dest, f"{base}/fsdd.zip", expected_files=len(names), progress=False)
    assert path == dest / "recordings"
    assert sorted(p.name for p in path.iterdir()) == sorted(names)
    assert sorted(p.name for p in dest.iterdir()) == ["recordings"]
    rate, x = scipy.io.wavfile.read(path / names[3])
    assert rate == 8000 and x.size == 800
    assert len(fsdd.list_recordings(dest)) == len(names)
    with pytest.raises(FsddError, match="already exists \\(use --force"):
        fsdd.download(dest, f"{base}/fsdd.zip", expected_files=len(names), progress=False)
    data = (www / "fsdd.zip").read_bytes()
    fsdd.download(dest, f"{base}/fsdd.zip", expected_files=len(names), force=True, progress=False,
                  sha256=hashlib.sha256(data).hexdigest())
    assert sorted(p.name for p in dest.iterdir()) == ["recordings"]


def _assert_nothing_written(dest, keep=()):
    assert sorted(p.name for p in dest.iterdir()) == sorted(keep) if dest.exists() else True


@pytest.mark.parametrize("kind", ["truncated", "not_zip", "crc", "count", "not_wav", "unsafe", "sha"])
def test_download_refuses_bad_archive(tmp_path, server, kind):
    www, base = server
    names = _names()
    data = _archive(names)
    expected, sha = len(names), None
    if kind == "truncated":
        data = data[:len(data) // 2]
    elif kind == "not_zip":
        data = b"<html>rate limited</html>"
    elif kind == "crc":
        data = _archive(names, compression=zipfile.ZIP_STORED)
        at = data.index(b"data", data.index(b"recordings/")) + 40
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    elif kind == "count":
        expected = 3000
    elif kind == "not_wav":
        data = _archive(names, extra={"x/recordings/9_eve_1.wav": b"garbage, not RIFF"})
        expected += 1
    elif kind == "unsafe":
        data = _archive(names, extra={"x/../../recordings/9_eve_1.wav": _wav_bytes(0)})
    elif kind == "sha":
        sha = "0" * 64
    (www / "fsdd.zip").write_bytes(data)
    dest = tmp_path / "data"
    with pytest.raises(FsddError):
        fsdd.download(dest, f"{base}/fsdd.zip", expected_files=expected, sha256=sha, progress=False)
    assert list(dest.iterdir()) == []


def test_failed_download_keeps_previous_recordings(tmp_path, server):
    www, base = server
    dest = tmp_path / "data"
    (dest / "recordings").mkdir(parents=True)
    (dest / "recordings" / "0_old_0.wav").write_bytes(b"old")
    (www / "fsdd.zip").write_bytes(b"broken")
    with pytest.raises(FsddError, match="not a zip archive"):
        fsdd.download(dest, f"{base}/fsdd.zip", expected_files=None, force=True, progress=False)
    assert [p.name for p in (dest / "recordings").iterdir()] == ["0_old_0.wav"]
    assert sorted(p.name for p in dest.iterdir()) == ["recordings"]


def test_download_cli_http_error(tmp_path, server, capsys):
    _, base = server
    assert fsdd.main(["download", str(tmp_path / "d"), "--url", f"{base}/missing.zip"]) == 1
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "d" / "recordings").exists()
