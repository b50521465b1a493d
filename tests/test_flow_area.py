"""flow.area (python -m hw.area): the modules it picks from a board top, its refusals, and (slow) a real per-core
synthesis of the tiny model."""

import pytest

from flow.area import _cores, area, main, module_names


def test_picks_the_cores_and_the_board_parts():
    rtlil = "\n".join(f"module \\{name}\nend" for name in [
        "top", "top.pll", "top.core", "top.core.uart_rx", "top.core.engine", "top.core.network",
        "top.core.network.core", "top.core.network.core.conv1", "top.core.network.core.conv1.lines",
        "top.core.network.core.fc1", "top.core.network.core.fc1.acc", "top.core.network.core.fc1_buffer"])
    names = module_names(rtlil)
    assert names[0] == "top" and len(names) == 12
    assert _cores(names) == ["top.core.uart_rx", "top.core.engine", "top.core.network.core.conv1",
                             "top.core.network.core.fc1", "top.core.network.core.fc1_buffer"]


@pytest.mark.slow
def test_tiny_model_per_core(capsys):
    rows = area(board="icebreaker", model_dir="models/tiny", progress=False)
    by_name = {row["module"]: row for row in rows}
    assert {"conv1", "engine", "whole design"} <= set(by_name)
    assert by_name["conv1"]["lut4"] > 0 and by_name["whole design"]["lut4"] >= by_name["conv1"]["lut4"]
    assert main(["--board", "icebreaker", "--model", "models/tiny", "--json"]) == 0
    assert '"module": "whole design"' in capsys.readouterr().out.splitlines()[-1]


@pytest.mark.parametrize("args, message", [
    (["--params", "{nope"], "--params is not valid JSON"),
    (["--params", '{"nope": {"lanes": 2}}'], "has no layer 'nope'"),
    (["--model", "no/such/model"], "no model here (manifest.json missing)"),
])
def test_refusals_name_the_problem(args, message, capsys):
    import hw.area

    assert hw.area.main(["--board", "icebreaker", "--model", "models/tiny", *args]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: ") and message in err and "Traceback" not in err
