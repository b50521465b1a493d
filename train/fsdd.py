"""The Free Spoken Digit Dataset (FSDD): file listing, splits, feature maps and download.

FSDD holds 3,000 mono 8 kHz WAV recordings named ``{digit}_{speaker}_{index}.wav`` (6 speakers, 50 of each digit
per speaker). Two kinds of split are provided:

* ``official``: index 0-4 of every digit and speaker is the test set (300 files), 5-49 the training set (2,700);
  the same speakers appear on both sides.
* ``speaker:NAME``: leave-one-speaker-out; every recording of ``NAME`` is the test set, the others train.

``python -m train.fsdd download DIR`` fetches the dataset's GitHub archive and installs ``DIR/recordings``
atomically after checking it; the data directory given to the other commands is that ``recordings`` folder (a
directory that holds a ``recordings`` folder is accepted as well).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import tempfile
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.cli import EXIT_BAD_INPUT, EXIT_FAILURE, run_main

from .features import (CroppedWarning, FeatureParams, FeatureWarning, finalize, fit_normalization, quantize,
                       raw_features)

__all__ = ["FSDD_URL", "FsddError", "Recording", "list_recordings", "split", "training_recordings",
           "training_record", "seen_in_training", "validation_speaker", "validation_index", "Dataset", "load_dataset", "dataset_of",
           "download", "main"]

FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_COMMIT}.zip"
FSDD_FILES = 3000
_NAME = re.compile(r"^([0-9])_([A-Za-z]+)_([0-9]+)\.wav$")


class FsddError(ValueError):
    """The data directory or a downloaded archive is not a usable FSDD."""


@dataclass(frozen=True)
class Recording:
    """One FSDD file: its path, label (digit), speaker and index."""
    path: Path
    digit: int
    speaker: str
    index: int


def data_root(data_dir) -> Path:
    """The folder that holds the WAV files: ``data_dir`` itself or its ``recordings`` sub-folder."""
    d = Path(data_dir)
    if not d.is_dir():
        raise FsddError(f"{d}: data directory does not exist (fetch FSDD with `python -m train.fsdd download DIR`)")
    if not any(d.glob("*.wav")) and (d / "recordings").is_dir():
        d = d / "recordings"
    return d


def list_recordings(data_dir) -> list[Recording]:
    """All FSDD recordings in ``data_dir``, sorted by (digit, speaker, index).

    Raises
    ------
    FsddError
        When the directory is missing or holds no file named ``{digit}_{speaker}_{index}.wav``.
    """
    d = data_root(data_dir)
    recs = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m:
            recs.append(Recording(p, int(m.group(1)), m.group(2), int(m.group(3))))
    if not recs:
        raise FsddError(f"{d}: no FSDD recordings ('{{digit}}_{{speaker}}_{{index}}.wav') found")
    recs.sort(key=lambda r: (r.digit, r.speaker, r.index))
    return recs


def speakers(recs) -> list[str]:
    """Sorted speaker names of ``recs``."""
    return sorted({r.speaker for r in recs})


def split(recs, name: str = "official"):
    """Split recordings into ``(train, test)`` lists.

    Parameters
    ----------
    name : str
        ``"official"`` (index 0-4 test) or ``"speaker:NAME"`` (leave speaker NAME out).

    Raises
    ------
    FsddError
        On an unknown split name or speaker, or an empty side.
    """
    if name == "official":
        test = [r for r in recs if r.index < 5]
        train = [r for r in recs if r.index >= 5]
    elif name.startswith("speaker:"):
        who = name.split(":", 1)[1]
        if who not in speakers(recs):
            raise FsddError(f"split {name!r}: unknown speaker {who!r} (known: {', '.join(speakers(recs))})")
        test = [r for r in recs if r.speaker == who]
        train = [r for r in recs if r.speaker != who]
    else:
        raise FsddError(f"unknown split {name!r} (known: official, speaker:NAME)")
    if not train or not test:
        raise FsddError(f"split {name!r} leaves {len(train)} training and {len(test)} test files")
    return train, test


def training_recordings(recs, split_name: str = "official", limit_train: int | None = None) -> list[Recording]:
    """The recordings a model trained on split ``split_name`` sees: its training side, or an evenly spread subset
    of ``limit_train`` of them (the reduced runs of the tests)."""
    train = split(recs, split_name)[0]
    if limit_train is not None and limit_train < len(train):
        pick = np.linspace(0, len(train) - 1, limit_train).round().astype(int)
        train = [train[i] for i in pick]
    return train


def training_record(split_name: str, limit_train: int | None = None) -> dict:
    """The manifest's ``training`` object for a model trained on FSDD split ``split_name``."""
    record = {"dataset": "fsdd", "split": split_name}
    if limit_train is not None:
        record["limit_train"] = int(limit_train)
    return record


def seen_in_training(training, recs, test) -> list[Recording] | None:
    """The recordings of ``test`` that a model with the manifest ``training`` record was trained on.

    Returns None when the record does not say (absent, or another data set).
    """
    if not isinstance(training, dict) or training.get("dataset") != "fsdd" or "split" not in training:
        return None
    limit = training.get("limit_train")
    try:
        train = training_recordings(recs, str(training["split"]), limit if isinstance(limit, int) else None)
    except FsddError:  # a split this data directory cannot form (another speaker set): nothing in common known
        return None
    seen = {r.path.name for r in train}
    return [r for r in test if r.path.name in seen]


@dataclass
class Dataset:
    """INT8 input maps and labels of one split, with the fitted feature parameters.

    Members
    -------
    x_train, x_test : np.ndarray
        int8, shape ``(N, 1, n_mfcc, frames)``.
    y_train, y_test : np.ndarray
        int64 digit labels.
    params : FeatureParams
        Front-end parameters with the training set's normalization.
    test_names : list of str
        File names of the test samples, in order.
    x_val, y_val : np.ndarray
        The validation side (recordings of ``val_speakers``, taken out of the training side); empty without one.
    val_speakers : list of str
        Speakers of the validation side.
    train_recordings : list of Recording
        The recordings of ``x_train``, in order.
    """
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    params: FeatureParams
    test_names: list
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    val_speakers: list = field(default_factory=list)
    train_recordings: list = field(default_factory=list)


def _summarize_warnings(caught, total, params):
    """Re-issue the front-end's warnings, the expected centre-crops as one count instead of one per file."""
    cropped = 0
    for w in caught:
        if issubclass(w.category, CroppedWarning):
            cropped += 1
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if cropped:
        warnings.warn(f"features: {cropped:,} of {total:,} recordings hold more speech than the model's "
                      f"{params.frames} frames and were centre-cropped", CroppedWarning, stacklevel=3)


def validation_speaker(train, choice: str | None = "auto", seed: int = 0) -> str | None:
    """The speaker of the training side ``train`` held out for validation.

    ``choice`` ``"auto"`` picks the ``seed % n``-th of the ``n`` training speakers in sorted order, ``None`` or
    ``"none"`` holds none out, any other value must be one of the training speakers.

    Raises
    ------
    FsddError
        On a speaker not in the training side, or when only one training speaker would be left.
    """
    if choice is None or choice == "none":
        return None
    names = speakers(train)
    if len(names) < 2:
        raise FsddError(f"a validation speaker needs two training speakers; the training side has "
                        f"{', '.join(names)} (use --val-speaker none)")
    if choice == "auto":
        return names[seed % len(names)]
    if choice not in names:
        raise FsddError(f"validation speaker {choice!r} is not on the training side (training speakers: "
                        f"{', '.join(names)})")
    return choice


def validation_index(train, lo: int, hi: int) -> list[Recording]:
    """The recordings of the training side ``train`` whose index (the number in the file name) lies in
    ``lo ... hi``: for every speaker and digit the same takes, a validation side drawn from the same speakers as
    the official split's test side (which holds indices 0-4), for choices that must not be made on that test side.

    Raises
    ------
    FsddError
        On a range that is empty, holds every training recording or none of them.
    """
    if lo > hi or lo < 0:
        raise FsddError(f"validation index range {lo}-{hi} is empty (need 0 <= LO <= HI)")
    val = [r for r in train if lo <= r.index <= hi]
    if not val:
        present = sorted({r.index for r in train})
        raise FsddError(f"validation index range {lo}-{hi} holds no training recording (training indices "
                        f"{present[0]}-{present[-1]})" if present else "the training side is empty")
    if len(val) == len(train):
        raise FsddError(f"validation index range {lo}-{hi} holds all {len(train):,} training recordings; "
                        f"leave some to train on")
    return val


def load_dataset(data_dir, split_name: str = "official", params: FeatureParams | None = None, *,
                 fit: bool = True, limit_train: int | None = None, test_only: bool = False,
                 progress: bool = True, val_speaker: str | None = None,
                 val_index: tuple[int, int] | None = None) -> Dataset:
    """Load one split as INT8 maps.

    Parameters
    ----------
    params : FeatureParams, optional
        Front-end parameters (default: :class:`FeatureParams()`).
    fit : bool
        Fit the normalization on the training side (otherwise ``params`` must carry it, as a trained
        model's manifest does).
    limit_train : int, optional
        Keep only an evenly spread subset of this many training files (reduced runs in tests).
    test_only : bool
        Skip the training side (evaluation of a trained model; needs ``fit=False``).
    val_speaker : str, optional
        Move this training speaker's recordings to the validation side (see :func:`validation_speaker`); the
        normalization is fitted on the rest.
    val_index : (int, int), optional
        Instead, move the training recordings whose index lies in this range to the validation side
        (:func:`validation_index`).
    """
    params = params or FeatureParams()
    recs = list_recordings(data_dir)
    train, test = training_recordings(recs, split_name, limit_train), split(recs, split_name)[1]
    if test_only:
        if fit:
            raise FsddError("test_only needs fit=False: the normalization comes from the training side")
        train = []
    if val_speaker is not None and val_index is not None:
        raise FsddError("choose a validation speaker or a validation index range, not both")
    if val_index is not None:
        val = validation_index(train, *val_index) if train else []
        held = set(val)
        train = [r for r in train if r not in held]
        return dataset_of(train, test, params, fit=fit, progress=progress, val=val, val_speakers=[])
    val = [r for r in train if r.speaker == val_speaker]
    train = [r for r in train if r.speaker != val_speaker]
    if val_speaker is not None and not val:
        raise FsddError(f"validation speaker {val_speaker!r} has no training recordings")
    return dataset_of(train, test, params, fit=fit, progress=progress, val=val)


def dataset_of(train, test, params: FeatureParams, *, fit: bool = True, progress: bool = True,
               val=(), val_speakers=None) -> Dataset:
    """The :class:`Dataset` of lists of :class:`Recording`: any split (:func:`load_dataset` makes the named ones;
    the design-space search its speaker-held-out validation split). With ``fit`` the normalization is fitted on
    ``train``, else ``params`` must carry it; ``val`` becomes the validation side, by default the recordings of
    one held-out speaker (``val_speakers`` names the speakers held out, ``[]`` when it is not split by speaker)."""
    from tqdm import tqdm
    val = list(val)
    if val_speakers is None:
        val_speakers = [val[0].speaker] if val else []
    files = train + val + test
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FeatureWarning)
        raws = [raw_features(r.path, params)
                for r in tqdm(files, desc="features", unit="file", disable=not progress, leave=False)]
    _summarize_warnings(caught, len(files), params)
    if fit:
        params = fit_normalization(raws[:len(train)], params)
    maps = np.stack([quantize(finalize(c, params), params) for c in raws]).reshape(-1, *params.map_shape)
    labels = np.array([r.digit for r in files], dtype=np.int64)
    n, v = len(train), len(train) + len(val)
    return Dataset(maps[:n], labels[:n], maps[v:], labels[v:], params, [r.path.name for r in test],
                   x_val=maps[n:v], y_val=labels[n:v], val_speakers=list(val_speakers),
                   train_recordings=train)


# -- download ------------------------------------------------------------------------------------------------

def _check_archive(zf: zipfile.ZipFile, expected: int | None) -> list:
    """Members of the archive's ``recordings`` folder, after integrity and content checks."""
    bad = zf.testzip()
    if bad is not None:
        raise FsddError(f"archive member {bad} is corrupt (CRC mismatch)")
    members = []
    for info in zf.infolist():
        parts = info.filename.split("/")
        if info.filename.startswith("/") or ".." in parts:
            raise FsddError(f"archive member {info.filename!r} has an unsafe path")
        if info.is_dir() or len(parts) < 2 or parts[-2] != "recordings":
            continue
        if not _NAME.match(parts[-1]):
            continue
        members.append(info)
    if not members:
        raise FsddError("archive holds no recordings/{digit}_{speaker}_{index}.wav files")
    if expected is not None and len(members) != expected:
        raise FsddError(f"archive holds {len(members):,} recordings, FSDD has {expected:,}")
    for info in members:
        with zf.open(info) as f:
            head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise FsddError(f"archive member {info.filename} is not a WAV file")
    return members


def download(dest, url: str = FSDD_URL, *, expected_files: int | None = FSDD_FILES, sha256: str | None = None,
             force: bool = False, progress: bool = True) -> Path:
    """Download the FSDD archive and install its recordings as ``dest/recordings``.

    The archive is downloaded to a temporary file in ``dest``, checked (zip CRCs, optional SHA-256, member names,
    count, WAV headers), extracted into a temporary folder and renamed into place: nothing is left behind on failure
    and an existing ``dest/recordings`` is only replaced with ``force`` after the new one is complete.

    Returns
    -------
    Path
        ``dest/recordings``.

    Raises
    ------
    FsddError
        When the target exists (without ``force``) or the archive fails a check.
    OSError
        On network or file-system errors.
    """
    from tqdm import tqdm
    dest = Path(dest)
    target = dest / "recordings"
    if target.exists() and not force:
        raise FsddError(f"{target} already exists (use --force to replace it)")
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp_zip = tempfile.mkstemp(prefix=".fsdd-", suffix=".zip", dir=dest)
    tmp_dir = None
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="download", disable=not progress) as bar:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise FsddError(f"archive SHA-256 {digest.hexdigest()} does not match the expected {sha256}")
        try:
            zf = zipfile.ZipFile(tmp_zip)
        except zipfile.BadZipFile as e:
            raise FsddError(f"downloaded file from {url} is not a zip archive ({e})") from None
        with zf:
            try:
                members = _check_archive(zf, expected_files)
            except (zipfile.BadZipFile, EOFError, OSError) as e:
                raise FsddError(f"archive from {url} is corrupt ({e})") from None
            tmp_dir = Path(tempfile.mkdtemp(prefix=".recordings-", dir=dest))
            for info in tqdm(members, desc="extract", unit="file", disable=not progress, leave=False):
                name = info.filename.split("/")[-1]
                with zf.open(info) as src, open(tmp_dir / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=".recordings-old-", dir=dest))
            os.replace(target, old / "recordings")
        os.replace(tmp_dir, target)
        tmp_dir = None
        if old is not None:
            shutil.rmtree(old)
        return target
    finally:
        if os.path.exists(tmp_zip):
            os.unlink(tmp_zip)
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.fsdd",
                                     description="Free Spoken Digit Dataset: download it, or list a split.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download", help="download FSDD into DIR/recordings (atomic, checked)")
    d.add_argument("dir", nargs="?", default=None,
                   help="destination folder; the WAV files land in DIR/recordings (default: the place every command "
                        "looks in, $XDG_DATA_HOME/spikesmith/fsdd or ~/.local/share/spikesmith/fsdd)")
    d.add_argument("--url", default=FSDD_URL, help="archive URL (default: the pinned GitHub commit)")
    d.add_argument("--sha256", help="expected SHA-256 of the archive (optional)")
    d.add_argument("--expect-files", type=int, default=FSDD_FILES,
                   help="number of recordings the archive must hold (default: %(default)s)")
    d.add_argument("--force", action="store_true", help="replace an existing DIR/recordings")
    s = sub.add_parser("split", help="print the size of a split")
    s.add_argument("data", help="directory of FSDD WAV files")
    s.add_argument("--split", default="official", help="official or speaker:NAME (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "download":
            from .datadir import download_dir
            dest = args.dir if args.dir is not None else download_dir()
            path = download(dest, args.url, expected_files=args.expect_files, sha256=args.sha256,
                            force=args.force)
            hint = "every command finds it there" if args.dir is None else f"use --data {path}"
            print(f"FSDD installed in {path} ({len(list(path.glob('*.wav'))):,} files); {hint}")
        else:
            recs = list_recordings(args.data)
            train, test = split(recs, args.split)
            print(f"{args.split}: {len(train):,} training, {len(test):,} test files; "
                  f"speakers {', '.join(speakers(recs))}")
    except FsddError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
