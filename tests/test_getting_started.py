"""docs/getting-started.md runs as written: every Python block of the page, in order, in one namespace, in a fresh
directory (its models and builds go there)."""

import re

import pytest

from conftest import FSDD, ROOT

PAGE = ROOT / "docs" / "getting-started.md"


def python_blocks(text):
    """The fenced ``python`` blocks of a Markdown page, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def test_the_page_has_the_whole_walk():
    blocks = python_blocks(PAGE.read_text())
    code = "\n".join(blocks)
    for call in ("spikesmith.train(", "spikesmith.evaluate(", "spikesmith.simulate(", "spikesmith.build(",
                 "spikesmith.classify("):
        assert call in code, call


@pytest.mark.skipif(not FSDD.is_dir(), reason="FSDD recordings not available (set SPIKESMITH_DATA)")
def test_getting_started_page_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "getting_started"}
    for number, block in enumerate(python_blocks(PAGE.read_text()), 1):
        try:
            exec(compile(block, f"{PAGE.name}, block {number}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"block {number} of {PAGE.name} failed: {error!r}\n{block}") from error
    out = capsys.readouterr().out
    assert "0 mismatches" in out and "logic cells, Fmax" in out
    assert (tmp_path / "build" / "my_first" / "top.bin").is_file()
