"""The data directory rule: --data, then $SPIKESMITH_DATA, then the default download location."""

from pathlib import Path

from train.datadir import ENV, download_dir, find_data, search_text


def test_argument_wins_over_everything(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, str(tmp_path / "env"))
    assert find_data(tmp_path / "arg") == tmp_path / "arg"


def test_environment_then_download_location(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, str(tmp_path / "env"))
    assert find_data() == tmp_path / "env"
    monkeypatch.delenv(ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert download_dir() == tmp_path / "xdg" / "spikesmith" / "fsdd"
    assert find_data() is None
    (tmp_path / "xdg" / "spikesmith" / "fsdd" / "recordings").mkdir(parents=True)
    assert find_data() == tmp_path / "xdg" / "spikesmith" / "fsdd" / "recordings"


def test_default_download_location_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert download_dir() == Path(tmp_path) / ".local" / "share" / "spikesmith" / "fsdd"
    assert ENV in search_text() and "train.fsdd download" in search_text()
