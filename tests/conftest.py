"""Shared fixtures: the repository root, the shipped test model and the FSDD data directory."""

from pathlib import Path

import pytest

from train.datadir import download_dir, find_data

ROOT = Path(__file__).resolve().parent.parent
# FSDD as every command finds it (train.datadir): $SPIKESMITH_DATA (.ci/run sets it), then the download location
FSDD = find_data() or download_dir() / "recordings"


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def tiny_shipped():
    from golden.manifest import load
    return load(ROOT / "models" / "tiny")


@pytest.fixture(scope="session")
def fsdd_dir():
    if not FSDD.is_dir():
        pytest.skip(f"FSDD recordings not found at {FSDD}: set $SPIKESMITH_DATA or run python -m train.fsdd download")
    return FSDD
