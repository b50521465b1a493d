"""The simulation harness (:mod:`sim.harness`) and what it needs from the build: signatures, captures, builds.

The pure parts (signatures, capture decoding, the Verilator control file, the clock wrapper) run without a
simulator; the rest runs the harness on Verilator: a model with one class (a length-1 readout array), heavy
backpressure that delays spike events past the result, a broken network that the protocol checks must catch, and
the small campaign that CI runs.
"""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from sim.build import clocked, ports_config
from sim.checker import Expectation, check_captures, expect
from sim.harness import Harness, capture_layout, mix, probability_code, sample_seed, signatures
from sim.stimulus import extreme_inputs, mixed, random_inputs, random_models
from sim.verify import network_design, verify

VERILOG = """module top(a, b, clk, o);
  input [3:0] a;
  wire [3:0] a;
  input b;
  input clk;
  output [7:0] o;
  reg [7:0] o = 8'h00;
  always @(posedge clk) o <= {a, a};
endmodule
module other(x);
  input x;
endmodule
"""


def test_ports_config_lists_the_top_ports_only():
    text = ports_config(VERILOG, "top")
    assert text.splitlines()[0] == "`verilator_config"
    assert re.findall(r'-var "(\w+)"', text) == ["a", "b", "clk", "o"]
    with pytest.raises(ValueError, match=r"^the Verilog defines no module 'nothing'$"):
        ports_config(VERILOG, "nothing")


def test_clocked_wrapper_drives_the_clock_once_a_cycle():
    text, name = clocked(VERILOG, "top", period_ps=10000)
    assert name == "top_clocked"
    wrapper = text[text.index("module top_clocked("):]
    assert "module top_clocked(a, b, o);" in wrapper and "input [3:0] a;" in wrapper
    assert "always begin #(10000ps) clk = 1'b1; #0 clk = 1'b0; end" in wrapper
    assert "top dut (.a(a), .b(b), .clk(clk), .o(o));" in wrapper
    with pytest.raises(ValueError, match=r"^the clock period must be an even number of picoseconds, not 5$"):
        clocked(VERILOG, "top", period_ps=5)
    with pytest.raises(ValueError, match=r"^module top has no input 'clock'$"):
        clocked(VERILOG, "top", clock="clock")


def test_pause_thresholds_and_seeds():
    assert probability_code(0.0) == 0 and probability_code(0.2) == 51 and probability_code(0.999) == 255
    with pytest.raises(ValueError, match=r"^pause probability must be in \[0, 1\), not 1\.0$"):
        probability_code(1.0)
    assert sample_seed(0, 0) == 1  # never the all-zero state of the xorshift generator
    assert sample_seed(7, 3) == (7 ^ (3 * 0x9E3779B9)) & 0xFFFFFFFF


def test_mix_is_the_two_32_bit_finalizers():
    keys = np.arange(1000, dtype=np.uint64)
    for which in (0, 1):
        h = mix(keys, which)
        assert h.dtype == np.uint64 and int(h.max()) < 1 << 32
        assert len(set(h.tolist())) == 1000  # bijective on 32 bits
    assert not np.array_equal(mix(keys, 0), mix(keys, 1))


def _captures(model, expectation, neuron_bits, layout, change=None):
    """Capture words as the harness would write them for ``expectation`` (and one changed field)."""
    sigs = signatures(expectation, neuron_bits)
    words = []
    for k in range(expectation.samples):
        layers = []
        for layer in expectation.layers:
            count, s0, s1 = (int(v[k]) for v in sigs[layer])
            layers.append({"count": count, "sum0": s0, "sum1": s1, "disorder": 0})
        value = {"result": {"cls": int(expectation.classes[k]), "cycles": int(expectation.cycles[k]),
                            "readout": [int(v) for v in expectation.readout[k]]},
                 "layers": layers, "o_error": 0, "events_error": 0, "foreign_layer": 0, "results": 1}
        if change is not None:
            change(k, value)
        words.append(hex(layout.const(value).as_bits()))
    return words


def test_check_captures_names_sample_and_layer(tiny_shipped):
    net = network_design(tiny_shipped)
    net._MustUse__silence = True
    layout = capture_layout(net)
    x = mixed(tiny_shipped, samples=6, seed=5).x
    expectation = expect(tiny_shipped, x, plan=net.plan)
    bits = net.events.payload.shape()["neuron"].width
    sigs = signatures(expectation, bits)
    good = check_captures(expectation, sigs, _captures(tiny_shipped, expectation, bits, layout), layout)
    assert good["mismatches"] == 0 and good["events_compared"] == expectation.event_count > 0

    def change(k, value):
        if k == 4:
            value["layers"][1]["count"] += 1
            value["result"]["cycles"] += 1
            value["o_error"] = 1

    bad = check_captures(expectation, sigs, _captures(tiny_shipped, expectation, bits, layout, change), layout)
    assert bad["failing_samples"] == [4]
    assert bad["mismatch_kinds"] == {"cycles": 1, "events": 1, "protocol": 1}
    text = [m["text"] for m in bad["mismatch_list"]]
    assert any(t.startswith("events mismatch at sample 4, layer fc1: expected ") for t in text)
    short = check_captures(expectation, sigs, _captures(tiny_shipped, expectation, bits, layout)[:3], layout)
    assert short["mismatch_kinds"] == {"result": 1} and short["failing_samples"] == [3]


def test_harness_refuses_a_network_without_debug_stream(tiny_shipped):
    from hw.network import Network
    from hw.plan import plan
    with pytest.raises(ValueError, match=r"debug=True"):
        Harness(Network(plan(tiny_shipped), debug=False))
    with pytest.raises(ValueError, match=r"^capacity must be a positive integer, not 0$"):
        Harness(Network(plan(tiny_shipped)), capacity=0)


def _check_passed(result):
    summary = result.summary()
    assert result.passed, f"{summary['mismatches']} mismatch(es); first: {summary['first_mismatch']}"
    assert summary["results"] == summary["samples"]
    assert summary["events_compared"] == summary["events_expected"]
    return summary


def test_one_class_model(tmp_path):
    """Issue 11: a readout of one class is a length-1 array field; the run must decode it as one."""
    [(model, path)] = random_models(31, 1, tmp_path / "models", classes=1)
    assert model.layers[-1].out_features == 1
    out = subprocess.run([sys.executable, "-m", "sim", "--model", str(path), "--samples", "8", "--seed", "3",
                          "--run-dir", str(tmp_path / "run"), "--json"], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["samples"] == 8 and last["mismatches"] == 0


def test_heavy_backpressure_delays_events_past_the_result(tiny_shipped, tmp_path):
    """Issue 11: with 90% stalls the last spike events come long after the result; none may be reported
    missing."""
    x = mixed(tiny_shipped, samples=8, seed=9).x
    result = verify(tiny_shipped, x, run_dir=tmp_path, seed=9, gap=0.5, stall={"o": 0.9, "events": 0.9})
    _check_passed(result)


def test_parts_in_two_processes_equal_one(tiny_shipped, tmp_path):
    """The pauses of a sample depend on its index, not on the process it runs in."""
    x = (extreme_inputs(tiny_shipped) + random_inputs(tiny_shipped, 70, 4)).x
    one = verify(tiny_shipped, x, run_dir=tmp_path / "one", seed=4, jobs=1)
    two = verify(tiny_shipped, x, run_dir=tmp_path / "two", seed=4, jobs=2)
    assert two.report["processes"] == 2
    _check_passed(one), _check_passed(two)
    assert one.report["sim_cycles"] == two.report["sim_cycles"] and one.cycles == two.cycles


def test_small_campaign(tmp_path):
    """What CI runs: at least 1,000 samples over 4 random models (2 of them stacked: convolutions on spikes or a
    dense first layer), every plan option drawn, no mismatch."""
    from sim.campaign import main
    code = main(["--models", "4", "--samples", "250", "--seed", "2", "--run-dir", str(tmp_path), "--json"])
    report = json.loads((tmp_path / "campaign.json").read_text())
    assert report["models"] == 4 and report["samples"] >= 1000
    assert {"conv2d", "dense"} <= set(report["layer_kinds"])
    assert report["events_compared"] > 0
    assert code == 0 and report["mismatches"] == 0, report["rows"]


def test_campaign_with_every_plan_option(tmp_path):
    """Every plan option drawn (spike logic, input memory, lanes, word widths): random_model(5000) with the conv
    core's LIF pipeline once counted 57 cycles where the cycle model said 55, until the cycle model read the spike
    logic from the plan."""
    from sim.campaign import main
    assert main(["--models", "1", "--samples", "20", "--seed", "5", "--run-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "campaign.json").read_text())
    assert report["mismatches"] == 0


@pytest.mark.parametrize("seed", [41, 42])
def test_weights_in_spram_on_verilator(tmp_path, seed):
    """RTL = golden with the dense and readout weights forced into SPRAM: the harness loads the image first (the
    SPRAM model starts at zero, so a load that went wrong could not pass)."""
    [(model, _)] = random_models(seed, 1, tmp_path / "models")
    params = {layer.name: {"weights": "spram"} for layer in model.layers if layer.type == "dense"}
    from hw.weights import image
    from sim.verify import hardware_plan
    assert image(hardware_plan(model, params))
    x = (extreme_inputs(model) + random_inputs(model, 30, seed)).x
    _check_passed(verify(model, x, run_dir=tmp_path / "run", params=params, seed=seed))
