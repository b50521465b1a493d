"""python -m hw.generate and python -m hw.bench: outputs, summary contents, and clear refusals."""

import json

import pytest

from golden.manifest import save
from golden.randmodel import random_model
from hw.generate import main as generate_main
from hw.bench import main as bench_main
from hw.kinds.dense import row_stride
from hw.plan import plan


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model = random_model(41, input_shape=(1, 4, 6), time_steps=2, hidden=[5], pool=(2, 2), out_channels=2,
                         kernel=(3, 3), padding=(1, 1), stride=(1, 1))
    path = tmp_path_factory.mktemp("model") / "m41"
    save(model, path)
    return path, model


def test_generate_writes_verilog_and_summary(model_dir, tmp_path, capsys):
    path, model = model_dir
    out = tmp_path / "out"
    assert generate_main(["--model", str(path), "--out", str(out)]) == 0
    verilog = (out / "spikesmith_random_41.v").read_text()
    for port in ("i__payload", "i__valid", "i__ready", "o__payload", "o__valid", "o__ready",
                 "events__payload", "events__valid", "events__ready", "clk", "rst"):
        assert port in verilog
    data = json.loads((out / "summary.json").read_text())
    p = plan(model)
    assert [layer["name"] for layer in data["layers"]] == [layer.name for layer in model.layers]
    fc1 = data["layers"][2]
    assert fc1["lanes"] == p.layer("fc1").lanes and fc1["neurons"] == 5
    assert fc1["buffer"] == {"row": 12, "rows_per_step": 1, "bits": 2 * 12}
    weights = [mem for mem in fc1["memories"] if mem["name"] == "fc1.weights"][0]
    assert weights["bits"] == 8 * p.layer("fc1").lanes * 12 * row_stride(p.layer("fc1").groups)
    text = (out / "summary.txt").read_text()
    assert "fc1.weights" in text and "in front of fc1: 2 steps x 1 words x 12 bits = 24 bits" in text
    assert "wrote" in capsys.readouterr().out
    assert not [f for f in out.iterdir() if f.name.startswith(".")]  # no temporary files left


def test_generate_without_debug_has_no_event_port(model_dir, tmp_path):
    path, _ = model_dir
    assert generate_main(["--model", str(path), "--out", str(tmp_path), "--no-debug",
                          "--params", '{"fc1": {"lanes": 1}}']) == 0
    verilog = (tmp_path / "spikesmith_random_41.v").read_text()
    assert "events__payload" not in verilog and "o__payload" in verilog
    assert json.loads((tmp_path / "summary.json").read_text())["layers"][2]["lanes"] == 1


@pytest.mark.parametrize("args,message", [
    (["--params", "{nope"], "--params is not valid JSON"),
    (["--params", "[1]"], "--params must be a JSON object"),
    (["--params", '{"fc7": {"lanes": 1}}'], "params: model random_41 has no layer 'fc7'"),
    (["--params", '{"fc1": {"lanes": 9}}'], "layer fc1: lanes must be an integer from 1 to 5"),
])
def test_generate_refuses_bad_params(model_dir, tmp_path, capsys, args, message):
    path, _ = model_dir
    assert generate_main(["--model", str(path), "--out", str(tmp_path / "o")] + args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "summary.json").exists()


def test_generate_refuses_bad_paths(model_dir, tmp_path, capsys):
    path, _ = model_dir
    assert generate_main(["--model", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "is not a model directory (no manifest.json)" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert generate_main(["--model", str(path), "--out", str(blocker)]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


def test_bench_json_figures(model_dir, tmp_path, capsys, monkeypatch):
    path, _ = model_dir
    monkeypatch.delenv("SPIKESMITH_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    # recordings cannot be made into the input of a model without a feature front-end: --data is refused
    assert bench_main(["--model", str(path), "--data", str(tmp_path), "--samples", "20", "--quiet"]) == 2
    assert "has no 'features' object; FSDD audio cannot be made into its input" in capsys.readouterr().err
    assert bench_main(["--model", str(path), "--samples", "20", "--json", "--quiet"]) == 0
    out = capsys.readouterr().out
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["samples"] == 20 and "random INT8 maps" in figures["inputs"]
    assert figures["cycles_min"] <= figures["cycles_median"] <= figures["cycles_max"] <= figures["dense_cycles_min"]
    assert figures["lower_bound_median"] > 0
