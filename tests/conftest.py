"""Shared fixtures: the repository root, the shipped test model and the FSDD data directory."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"


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
        pytest.skip(f"FSDD recordings not found at {FSDD} (see README: python -m train.fsdd download DIR)")
    return FSDD
