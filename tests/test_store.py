"""The model directory on disk: a save killed at any step leaves a complete model; loads read only safe files."""

import os
import shutil
import signal
from pathlib import Path

import pytest

from golden import manifest as mf
from golden import store
from golden.randmodel import random_model

# The file-system calls a save makes; a kill is injected before each of them in turn.
_STEPS = [(os, "mkdir"), (os, "open"), (os, "fsync"), (os, "symlink"), (os, "replace"), (os, "rename"),
          (os, "unlink"), (os, "rmdir"), (shutil, "rmtree"), (store, "_exchange")]


def _save_killed_at(model, target, step):
    """Run ``save(model, target)`` in a forked child killed (SIGKILL) just before its ``step``-th file-system call.

    Returns the number of calls the save made if it finished, or None if the child was killed.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count the calls, die at the chosen one
        try:
            os.close(read)
            count = [0]

            def wrap(module, name):
                real = getattr(module, name)

                def counted(*args, **kwargs):
                    count[0] += 1
                    if count[0] == step:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real(*args, **kwargs)
                setattr(module, name, counted)
            for module, name in _STEPS:
                wrap(module, name)
            mf.save(model, target)
            os.write(write, str(count[0]).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        calls = f.read()
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return None
    assert os.WEXITSTATUS(status) == 0 and calls, "the save failed in the child"
    return int(calls)


def _plain_copy(src, dst):
    shutil.copytree(src, dst, symlinks=False)
    return dst


def _linked_copy(src, dst):
    mf.save(mf.load(src), dst)
    return dst


@pytest.mark.parametrize("layout", [_plain_copy, _linked_copy], ids=["plain directory", "saved link"])
def test_a_kill_at_every_step_of_save_leaves_a_complete_model(tmp_path, layout):
    old = mf.load("models/tiny")
    new = random_model(7)
    hashes = {"old": mf.model_hash(old), "new": mf.model_hash(new)}
    seen, step = [], 1
    while True:
        case = tmp_path / f"k{step}"
        case.mkdir()
        target = layout(Path("models/tiny"), case / "m")
        calls = _save_killed_at(new, target, step)
        loaded = mf.model_hash(mf.load(target))
        assert loaded in hashes.values(), f"kill before call {step}: the target holds neither model"
        seen.append("new" if loaded == hashes["new"] else "old")
        if calls is not None:
            break
        step += 1
    assert seen[-1] == "new" and seen[0] == "old"
    switch = seen.index("new")
    assert seen[switch:] == ["new"] * (len(seen) - switch), "the target went back to the old model"
    assert calls >= 8  # every step was reached: mkdir, files, fsyncs, link, switch, clean-up
    # the next save removes whatever a killed one left behind, and nothing else
    for case in sorted(tmp_path.iterdir()):
        mf.save(old, case / "m")
        assert store.leftovers(case / "m") == []
        assert [p.name for p in case.iterdir() if p.name.startswith(".")] == [os.readlink(case / "m")]
        assert mf.model_hash(mf.load(case / "m")) == hashes["old"]


def test_the_issue_reproducer_no_longer_loses_the_model(tmp_path):
    """Kill right after the old model is moved aside: the former scheme left no model directory at all."""
    target = _plain_copy(Path("models/tiny"), tmp_path / "x")
    for step in range(1, 40):
        calls = _save_killed_at(random_model(3), target, step)
        assert (tmp_path / "x" / "manifest.json").is_file()
        mf.load(target)
        if calls is not None:
            break


def test_leftovers_of_the_former_scheme_are_ignored_then_removed(tmp_path):
    target = _plain_copy(Path("models/tiny"), tmp_path / "m")
    half = tmp_path / ".m.tmp-abc123"
    half.mkdir()
    (half / "manifest.json").write_text("{half")
    _plain_copy(Path("models/tiny"), tmp_path / ".m.old-xyz")
    unrelated = tmp_path / ".other.v-123"
    unrelated.mkdir()
    assert mf.load(target).name == "tiny"
    assert [p.name for p in store.leftovers(target)] == [".m.old-xyz", ".m.tmp-abc123"]
    mf.save(random_model(1), target)
    assert store.leftovers(target) == [] and unrelated.is_dir()


def test_a_saved_model_stays_readable_through_a_plain_copy(tmp_path):
    """Copying a saved model (cp -rL, git add of a copy) gives a plain directory that loads the same."""
    model = random_model(2)
    mf.save(model, tmp_path / "m")
    shutil.copytree(tmp_path / "m", tmp_path / "plain")
    assert not (tmp_path / "plain").is_symlink()
    assert mf.model_hash(mf.load(tmp_path / "plain")) == mf.model_hash(model)


def test_a_file_in_the_way_is_not_replaced(tmp_path):
    (tmp_path / "m").write_text("not a model")
    with pytest.raises(mf.ManifestError, match="exists and is not a model directory"):
        mf.save(random_model(1), tmp_path / "m")
    assert (tmp_path / "m").read_text() == "not a model"


# -- reading --------------------------------------------------------------------------------------------------------

@pytest.fixture
def model_dir(tmp_path):
    return _plain_copy(Path("models/tiny"), tmp_path / "m")


def _replace(path, make):
    os.remove(path)
    make(path)


@pytest.mark.parametrize("make,msg", [
    (lambda p: os.mkfifo(p), "file conv1.bias.hex is a FIFO, not a regular file"),
    (lambda p: os.symlink("/dev/zero", p), "file conv1.bias.hex is a symbolic link"),
    (lambda p: os.symlink(p.name, p), "file conv1.bias.hex is a symbolic link"),
    (lambda p: os.symlink("conv1.weights.hex", p), "file conv1.bias.hex is a symbolic link"),
    (lambda p: os.mkdir(p), "file conv1.bias.hex is a directory, not a regular file"),
    (lambda p: p.write_bytes(b"0" * 10_000), r"file conv1.bias.hex has 10,000 bytes; at most 4,\d+ are allowed"),
])
def test_a_rom_file_that_is_not_a_small_regular_file_is_refused_at_once(model_dir, make, msg):
    _replace(model_dir / "conv1.bias.hex", make)
    with pytest.raises(mf.ManifestError, match=f"layer conv1.bias: {msg}"):
        mf.load(model_dir)


@pytest.mark.parametrize("make,msg", [
    (lambda p: os.mkfifo(p), "file manifest.json is a FIFO"),
    (lambda p: os.mkdir(p), "file manifest.json is a directory"),
    (lambda p: os.symlink("/etc/hostname", p), "file manifest.json is a symbolic link"),
    (lambda p: p.write_bytes(b" " * (store.MAX_MANIFEST_BYTES + 1)), "has 1,048,577 bytes; at most 1,048,576"),
])
def test_a_manifest_that_is_not_a_regular_file_is_refused(model_dir, make, msg):
    _replace(model_dir / "manifest.json", make)
    with pytest.raises(mf.ManifestError, match=msg):
        mf.load(model_dir)


def test_a_model_link_may_only_name_a_sibling(tmp_path, model_dir):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink("../m", outside / "up")
    os.symlink(str(model_dir.resolve()), tmp_path / "absolute")
    os.symlink("m", tmp_path / "sibling")
    os.symlink("sibling", tmp_path / "chain")
    for bad in (outside / "up", tmp_path / "absolute"):
        with pytest.raises(mf.ManifestError, match="is a symbolic link to .*; a model link may only name a "
                                                   "directory beside it"):
            mf.load(bad)
    assert mf.load(tmp_path / "sibling").name == "tiny"
    with pytest.raises(mf.ManifestError, match="chain is not a directory that can be read"):
        mf.load(tmp_path / "chain")  # a link to a link is not followed
    os.symlink("chain2", tmp_path / "chain2")
    with pytest.raises(mf.ManifestError, match="chain2 is not a directory"):
        mf.load(tmp_path / "chain2")  # a link to itself does not loop


def test_the_models_in_git_are_plain_directories():
    for name in ("tiny", "fsdd_scnn"):
        path = Path("models") / name
        assert path.is_dir() and not path.is_symlink()
        mf.load(path)
