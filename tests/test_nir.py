"""NIR in and out (train.nir): round trips, the mapping's arithmetic, refusals by node, and real peers.

Peers: networks built in snnTorch and converted by snnTorch's own NIR module converter; graphs written with nir's
API as other frameworks write them (Sinabs' IF and sum-pooling, Rockpool/Lava-style CubaLIF, LI readouts); a
spikesmith model loaded back by snnTorch's ``import_from_nir``. The FSDD import through the command line and the RTL
of an imported model are at the end.
"""

import dataclasses
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")
snn = pytest.importorskip("snntorch")

import golden.manifest as gm  # noqa: E402
from golden.network import run  # noqa: E402
from golden.randmodel import random_deep_model, random_model  # noqa: E402
from train.nir import NirError, exact_model, nearest_leak_shift, quantize, read_graph, to_graph, write_graph  # noqa: E402
from train.nir.floatrun import FloatRunner  # noqa: E402
from train.nir.importer import spike_agreement  # noqa: E402

DT = 1e-4


def _through_file(graph, tmp_path, name="g.nir"):
    path = tmp_path / name
    nir.write(path, graph)
    return nir.read(path, type_check=False)


def _chain(*pairs, input_shape):
    """A NIR graph of the named nodes in order, from an Input of ``input_shape`` to an Output."""
    nodes = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    nodes.update(pairs)
    out = nodes[list(nodes)[-1]]
    nodes["output"] = nir.Output(output_type={"output": np.array([out.weight.shape[0]]) if hasattr(out, "weight")
                                              else np.array(out.output_type["output"])})
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])), type_check=False)


def _lif(n, beta=0.875, thr=1.0, **kw):
    tau = DT / (1 - beta)
    shape = n if isinstance(n, tuple) else (n,)
    return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / DT), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, thr), **kw)


def _rng_affine(rng, n_out, n_in, scale=0.3):
    return nir.Affine(weight=rng.normal(0, scale, (n_out, n_in)), bias=rng.normal(0, 0.05, n_out))


# -- round trip ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["tiny", "fsdd_scnn", "fsdd_deep", "random", "deep-conv", "deep-dense"])
def test_round_trip_is_bit_for_bit(which, root, tmp_path):
    """spikesmith -> NIR file -> spikesmith gives the same manifest: weights, biases, thresholds, leak shifts,
    reset modes and widths (model_hash), for the shipped models and random ones of both manifest versions."""
    model = {"random": lambda: random_model(5), "deep-conv": lambda: random_deep_model(7, dense_first=False),
             "deep-dense": lambda: random_deep_model(8, dense_first=True)}.get(
        which, lambda: gm.load(root / "models" / which))()
    write_graph(model, tmp_path / "m.nir")
    back = exact_model(read_graph(nir.read(tmp_path / "m.nir", type_check=False)), input_shape=model.input_shape,
                       name="unused")
    assert back is not None
    assert gm.model_hash(back) == gm.model_hash(model)
    for a, b in zip(model.layers, back.layers):
        if hasattr(a, "weights"):
            assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
            assert a.neuron == b.neuron


def test_export_writes_nir_continuous_time_form(root):
    model = gm.load(root / "models" / "fsdd_scnn")
    graph, notes = to_graph(model, dt=1e-3)
    conv, lif = model.layers[0], graph.nodes["conv1_lif"]
    S = conv.weight_scale / model.quantization["input_scale"]
    k = conv.neuron.leak_shift
    assert np.allclose(lif.tau, 1e-3 * 2 ** k) and np.allclose(lif.r, 2 ** k)
    assert np.allclose(lif.v_threshold, conv.neuron.threshold * S) and not lif.v_reset.any()
    assert np.allclose(graph.nodes["conv1"].weight, conv.weights * conv.weight_scale)
    assert type(graph.nodes["pool1"]).__name__ == "SumPool2d" and np.all(graph.nodes["pool1_or"].threshold == 0.5)
    assert type(graph.nodes["out_i"]).__name__ == "I"
    assert any("conv1 resets by subtraction" in n for n in notes)


def test_edited_graph_is_quantized_afresh(root):
    """Metadata that no longer matches the float weights is not trusted."""
    model = gm.load(root / "models" / "tiny")
    graph, _ = to_graph(model)
    first = model.layers[0].name
    graph.nodes[first].weight = graph.nodes[first].weight * 1.5
    assert exact_model(read_graph(graph), input_shape=model.input_shape, name="x") is None


def test_post_training_quantization_recovers_a_trained_models_integers(root):
    """Quantizing the float form of a trained model (max |w| = 127 in every layer) gives back its integers:
    the arithmetic of the scales, thresholds and biases is the trainer's."""
    model = gm.load(root / "models" / "fsdd_scnn")
    zero = dataclasses.replace(model, layers=[
        dataclasses.replace(l, neuron=dataclasses.replace(l.neuron, reset="zero"))
        if isinstance(getattr(l, "neuron", None), gm.LIF) else l for l in model.layers])
    graph, _ = to_graph(zero)
    x = model.test_vectors.x[:20]
    q, rows = quantize(read_graph(graph), input_shape=model.input_shape, input_scale=32.0,
                       time_steps=model.time_steps, x_calib=x, name="q")
    for a, b in zip(zero.layers, q.layers):
        if hasattr(a, "weights"):
            assert np.array_equal(a.weights, b.weights), a.name
            assert np.array_equal(a.bias, b.bias), a.name
            if isinstance(a.neuron, gm.LIF):
                assert (a.neuron.threshold, a.neuron.leak_shift, "zero") == (
                    b.neuron.threshold, b.neuron.leak_shift, b.neuron.reset)
    assert [r["layer"] for r in rows] == [l.name for l in model.layers]
    assert all(r.get("leak_error", 0) == 0 for r in rows)


def test_nearest_leak_shift_and_its_error():
    assert nearest_leak_shift(0.875) == (3, 0.0)
    k, err = nearest_leak_shift(0.9)
    assert k == 3 and err == pytest.approx(-0.025)
    assert nearest_leak_shift(0.0) == (0, 0.0)


# -- peers -----------------------------------------------------------------------------------------------------------

def _snntorch_dense(seed):
    torch.manual_seed(seed)
    beta = torch.full((24,), 0.875)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(48, 24),
        snn.Leaky(beta=beta, threshold=torch.ones(24), init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(24, 5))


def test_snntorch_network_through_its_own_converter(tmp_path):
    """A network built in snnTorch, converted by snnTorch's exporter (nirtorch's tracer with snnTorch's module
    converter; its final type inference fails with nir 1.0.8, docs/nir.md), is read with snnTorch's semantics: the
    float runner equals the snnTorch network, and the quantized model stays close to it."""
    import nirtorch
    from snntorch.export_nir import _extract_snntorch_module
    net = _snntorch_dense(3)
    with torch.no_grad():
        net[1].weight.mul_(4)
    graph = nirtorch.extract_nir_graph(net, _extract_snntorch_module, torch.zeros(1, 1, 4, 12), model_name="s")
    fnet = read_graph(graph)
    assert [l.kind for l in fnet.layers] == ["dense", "dense"]
    rng = np.random.default_rng(0)
    x = rng.integers(-127, 128, (64, 1, 4, 12))
    steps = 5
    runner = FloatRunner(fnet, time_steps=steps, input_scale=32.0)
    from snntorch import utils
    with torch.no_grad():
        utils.reset(net)
        ref = sum(net(torch.tensor(x, dtype=torch.float32) / 32.0) for _ in range(steps))
        got = runner(torch.tensor(x))
    assert torch.allclose(ref, got, atol=1e-4)
    model, rows = quantize(fnet, input_shape=(1, 4, 12), input_scale=32.0, time_steps=steps, x_calib=x,
                           name="snntorch_dense")
    assert rows[0]["mapped"].startswith("dense 48->24 + LIF k=3")
    g = run(model, x)
    assert np.mean(g.classes == got.argmax(1).numpy()) >= 0.9


def test_norse_network_through_its_own_exporter():
    """Norse 1.1.0's ``to_nir`` writes ``tau = dt / tau_mem_inv`` (its dt times its time constant in units of dt), so
    its graphs read with ``--dt`` equal to dt squared (1e-6 for its default 1e-3): then the float run equals Norse's
    own, LI readout included. Skipped where Norse is not installed (from PyPI it pulls torch 2.14 with CUDA)."""
    nt = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    net = nt.SequentialState(torch.nn.Linear(48, 24), nt.LIFBoxCell(), torch.nn.Linear(24, 5), nt.LIBoxCell())
    with torch.no_grad():
        net[0].weight.mul_(8)
    fnet = read_graph(nt.to_nir(net, torch.zeros(1, 48)), dt=1e-6)
    assert [(l.kind, l.neuron, round(l.beta, 6)) for l in fnet.layers] == [("dense", "lif", 0.9),
                                                                          ("dense", "integrate", 0.9)]
    x = np.random.default_rng(0).integers(-127, 128, (64, 1, 4, 12))
    state = None
    with torch.no_grad():
        for _ in range(5):
            ref, state = net(torch.tensor(x.reshape(64, 48), dtype=torch.float32) / 32.0, state)
        got = FloatRunner(fnet, time_steps=5, input_scale=32.0)(torch.tensor(x))
    assert torch.allclose(ref, got, atol=1e-6)
    _, rows = quantize(fnet, input_shape=(1, 4, 12), input_scale=32.0, time_steps=5, x_calib=x, name="norse")
    assert rows[-1]["leak_error"] == pytest.approx(0.1)
    # Norse exports a Flatten as a node of no kind (None), which is refused by name.
    conv = nt.SequentialState(torch.nn.Conv2d(1, 2, 3, padding=1), nt.LIFBoxCell(), torch.nn.Flatten(),
                              torch.nn.Linear(2 * 4 * 12, 3), nt.LIBoxCell())
    with pytest.raises(NirError, match=r"^node 2 \(NoneType\): this node kind has no spikesmith equivalent"):
        read_graph(nt.to_nir(conv, torch.zeros(1, 1, 4, 12)), dt=1e-6)


def test_snntorch_avgpool_export_is_refused_by_name():
    """snnTorch exports AvgPool2d; average-pooled spikes feeding a dense layer are counts, not an OR."""
    import nirtorch
    from snntorch.export_nir import _extract_snntorch_module
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), snn.Leaky(beta=0.875, init_hidden=True,
                                                                               reset_mechanism="zero"),
                              torch.nn.AvgPool2d((2, 2)), torch.nn.Flatten(), torch.nn.Linear(2 * 2 * 6, 3))
    graph = nirtorch.extract_nir_graph(net, _extract_snntorch_module, torch.zeros(1, 1, 4, 12), model_name="s")
    with pytest.raises(NirError, match=r"^node 2 \(AvgPool2d\): passes spike counts .* follow it with a Threshold "
                                        r"node between 0 and 0.25$"):
        read_graph(graph)


def test_graph_written_with_nirs_api_sinabs_style_if_and_pool(tmp_path):
    """IF neurons (Sinabs' IAF), sum-pooling with a threshold (an OR), an LI readout: mapped, with the leak of the
    readout and of the IF reported."""
    rng = np.random.default_rng(1)
    g = _chain(("conv", nir.Conv2d(input_shape=np.array([6, 8]), weight=rng.normal(0, 0.5, (3, 1, 3, 3)),
                                   stride=np.array([1, 1]), padding=np.array([1, 1]), dilation=np.array([1, 1]),
                                   groups=1, bias=np.zeros(3))),
               ("iaf", nir.IF(r=np.ones((3, 6, 8)), v_threshold=np.full((3, 6, 8), 0.8))),
               ("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))),
               ("or", nir.Threshold(threshold=np.full((3, 3, 4), 0.5))),
               ("flat", nir.Flatten(input_type={"input": np.array([3, 3, 4])}, start_dim=0, end_dim=-1)),
               ("fc", _rng_affine(rng, 4, 36)),
               ("li", nir.LI(tau=np.full(4, 0.01), r=np.full(4, 100.0), v_leak=np.zeros(4))),
               input_shape=(1, 6, 8))
    fnet = read_graph(_through_file(g, tmp_path), dt=DT)
    x = rng.integers(-127, 128, (32, 1, 6, 8))
    model, rows = quantize(fnet, input_shape=(1, 6, 8), input_scale=32.0, time_steps=4, x_calib=x, name="sinabs")
    conv = model.layers[0]
    assert conv.neuron.reset == "zero" and conv.neuron.leak_shift == conv.neuron.mem_bits - 1
    assert rows[0]["integrator"] and rows[-1]["leak_error"] == pytest.approx(0.01)
    assert rows[1]["mapped"] == "pool 2x2 (OR)"
    # Spike by spike against the float graph (the IF's leak adds 1 to negative membranes, the rest is rounding).
    res = run(model, x)
    _, trains = FloatRunner(fnet, time_steps=4, input_scale=32.0)(torch.tensor(x), record=True)
    agree = spike_agreement(res.spikes, [t.numpy() for t in trains], ["conv1", "pool1"])
    assert min(agree.values()) > 0.95


def test_cubalif_folds_only_when_tau_syn_equals_dt():
    rng = np.random.default_rng(2)

    def graph(tau_syn):
        cuba = nir.CubaLIF(tau_syn=np.full(5, tau_syn), tau_mem=np.full(5, 8 * DT), r=np.full(5, 8.0),
                           v_leak=np.zeros(5), v_threshold=np.ones(5), w_in=np.full(5, 2.0))
        return _chain(("fc1", _rng_affine(rng, 5, 12)), ("lif", cuba), ("out", _rng_affine(rng, 3, 5)),
                      input_shape=(1, 3, 4))
    fnet = read_graph(graph(DT))
    assert fnet.layers[0].beta == pytest.approx(0.875)
    with pytest.raises(NirError, match=r"^node lif \(CubaLIF\): tau_syn gives a synaptic decay alpha = 1 - dt / "
                                        r"tau_syn = 0.8 at dt 0.0001 s; .* only tau_syn = dt \(alpha = 0\) folds"):
        read_graph(graph(5 * DT))


def test_per_neuron_thresholds_fold_into_the_rows():
    """A dense layer with a threshold per neuron: scaling each row by its threshold changes no spike."""
    rng = np.random.default_rng(4)
    fc = _rng_affine(rng, 6, 10)
    lif = _lif(6)
    lif.v_threshold = np.linspace(0.5, 2.0, 6)
    fnet = read_graph(_chain(("fc", fc), ("lif", lif), ("out", _rng_affine(rng, 2, 6)), input_shape=(10,)))
    assert np.allclose(fnet.layers[0].weight, fc.weight / lif.v_threshold[:, None])


# -- refusals ----------------------------------------------------------------------------------------------------------

def _ok_nodes(rng):
    return [("fc", _rng_affine(rng, 4, 6)), ("lif", _lif(4)), ("out", _rng_affine(rng, 2, 4))]


@pytest.mark.parametrize("case, message", [
    ("unknown edge", r"^edge \('lif', 'ghost'\) names node 'ghost', which the graph does not have$"),
    ("branch", r"^node fc \(Affine\) has 2 outgoing edges \(lif, out\); spikesmith runs one feed-forward chain$"),
    ("cycle", r"^node lif \(LIF\) has 2 incoming edges \(fc, out\); spikesmith runs one feed-forward chain$"),
    ("two inputs", r"^the graph has 2 Input and 1 Output nodes; spikesmith needs one of each$"),
    ("delay", r"^node d \(Delay\): this node kind has no spikesmith equivalent"),
    ("subgraph", r"^node sub \(NIRGraph\): a nested graph \(a recurrent layer\) is not supported"),
    ("v_reset", r"^node lif \(LIF\): v_reset 0.2; spikesmith resets to 0 \(reset 'zero'\) or by subtraction"),
    ("spiking output", r"^node lif2 \(LIF\) spikes into the output; spikesmith's last layer is an integrating "
                       r"readout"),
    ("mixed tau", r"^node lif \(LIF\): beta = 1 - dt / tau ranges from 0.5 to 0.875; spikesmith has one leak per "
                  r"layer$"),
    ("two synapses", r"^node out \(Affine\) follows fc \(Affine\) without a neuron between them$"),
    ("no nodes", r"^the graph has no nodes$"),
])
def test_malformed_and_unsupported_graphs_are_refused_by_node(case, message):
    rng = np.random.default_rng(0)
    nodes = _ok_nodes(rng)
    g = _chain(*nodes, input_shape=(6,))
    if case == "unknown edge":
        g.edges.append(("lif", "ghost"))
    elif case == "branch":
        g.edges.append(("fc", "out"))
    elif case == "cycle":
        g.edges.append(("out", "lif"))
    elif case == "two inputs":
        g.nodes["input2"] = nir.Input(input_type={"input": np.array([6])})
        g.edges.append(("input2", "fc"))
    elif case == "delay":
        g = _chain(nodes[0], ("d", nir.Delay(delay=np.ones(4))), *nodes[1:], input_shape=(6,))
    elif case == "subgraph":
        g = _chain(nodes[0], ("sub", _chain(*_ok_nodes(rng), input_shape=(4,))), *nodes[1:], input_shape=(6,))
    elif case == "v_reset":
        g.nodes["lif"].v_reset = np.full(4, 0.2)
    elif case == "spiking output":
        g = _chain(*nodes, ("lif2", _lif(2)), input_shape=(6,))
    elif case == "mixed tau":
        g.nodes["lif"].tau = np.array([2 * DT, 8 * DT, 8 * DT, 8 * DT])
    elif case == "two synapses":
        g = _chain(nodes[0], nodes[2], input_shape=(6,))
    elif case == "no nodes":
        g.nodes = {}
    with pytest.raises(NirError, match=message):
        read_graph(g)


def test_pools_that_are_not_an_or_are_refused():
    rng = np.random.default_rng(0)
    conv = nir.Conv2d(input_shape=np.array([4, 4]), weight=rng.normal(0, 1, (2, 1, 3, 3)), stride=np.array([1, 1]),
                      padding=np.array([1, 1]), dilation=np.array([1, 1]), groups=1, bias=np.zeros(2))

    def graph(pool, thr):
        return _chain(("conv", conv), ("lif", _lif((2, 4, 4))), ("pool", pool),
                      ("or", nir.Threshold(threshold=np.full((2, 2, 2), thr))),
                      ("fc", _rng_affine(rng, 3, 8)), input_shape=(1, 4, 4))
    overlapping = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([0, 0]))
    with pytest.raises(NirError, match=r"^node pool \(SumPool2d\): kernel \[2, 2\] with stride \[1, 1\] and padding "
                                        r"\[0, 0\]; an OR-pool has stride = kernel and no padding$"):
        read_graph(graph(overlapping, 0.5))
    avg = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    with pytest.raises(NirError, match=r"^node or \(Threshold\): threshold 0.5 \.\.\. 0.5 after AvgPool2d pool; it "
                                        r"equals OR-pooling only when 0 <= threshold < 0.25"):
        read_graph(graph(avg, 0.5))
    assert [l.kind for l in read_graph(graph(avg, 0.1)).layers] == ["conv2d", "pool", "dense"]


# -- snnTorch loads a spikesmith model back ---------------------------------------------------------------------------

def test_snntorch_import_of_an_exported_model_agrees_with_golden(tmp_path):
    """A zero-reset spikesmith model (conv on the map, dense LIF, readout) exported to NIR and loaded by snnTorch's
    ``import_from_nir``: snnTorch has no integrator node, so the readout Affine feeds the Output and its current is
    summed over the steps here. Spikes agree with the golden model except where the float leak ``beta * v`` and
    the integer ``v - (v >> k)`` round apart (docs/nir.md); the classes agree."""
    from snntorch.import_nir import import_from_nir
    model = random_deep_model(21, dense_first=False, reset="zero", leak_shift=3)
    model = dataclasses.replace(model, layers=[l for l in model.layers if l.type != "pool"][:1] +
                                [l for l in model.layers if l.type == "dense"])
    conv = model.layers[0]
    n_in = int(np.prod(conv.out_shape(model.input_shape)))
    rng = np.random.default_rng(3)
    layers = [conv]
    for l in model.layers[1:]:
        w = rng.integers(-60, 61, (l.out_features, n_in)).astype(np.int8)
        l = dataclasses.replace(l, in_features=n_in, weights=w, acc_bits=64)
        layers.append(dataclasses.replace(l, acc_bits=gm.required_acc_bits(l, on_map=False)))
        n_in = l.out_features
    model = gm.validate(dataclasses.replace(model, layers=layers))
    graph, notes = to_graph(model)
    assert notes == []
    graph = _through_file(graph, tmp_path)
    last = model.layers[-1].name
    del graph.nodes[last + "_i"]
    graph.edges = [(a, "output") if b == last + "_i" else (a, b) for a, b in graph.edges if a != last + "_i"]
    net = import_from_nir(graph)
    spikes = {}
    for name, mod in net.named_modules():
        if isinstance(mod, snn.Leaky):
            mod.register_forward_hook(lambda m, i, o, name=name: spikes.setdefault(name, []).append(
                (o if torch.is_tensor(o) else o[0]) > 0))
    x = rng.integers(-127, 128, (30,) + tuple(model.input_shape))
    scale = float((model.quantization or {}).get("input_scale", 32.0))
    # snnTorch's import maps NIR's Flatten(start_dim=0) to torch's Flatten(0), which flattens the batch as well:
    # one sample at a time, the neurons reset between samples.
    from snntorch import utils
    totals = []
    with torch.no_grad():
        for sample in x:
            utils.reset(net)
            xs = torch.tensor(sample[None], dtype=torch.float32) / scale
            # nirtorch's executor returns (output, state); snnTorch's neurons keep their own state (init_hidden).
            totals.append(sum(net(xs)[0].reshape(-1) for _ in range(model.time_steps)))
    total = torch.stack(totals)
    g = run(model, x)
    lif_names = [l.name for l in model.layers if isinstance(getattr(l, "neuron", None), gm.LIF)]
    trains = [torch.stack(v).reshape(len(x), model.time_steps, -1) for v in spikes.values()]
    agree = spike_agreement(g.spikes, [t.numpy() for t in trains], lif_names)
    assert all(v > 0.97 for v in agree.values()), agree
    assert np.mean(total.argmax(1).numpy() == g.classes) >= 0.9


# -- the command line and the hardware -----------------------------------------------------------------------------

def test_cli_export_then_import_round_trip(root, fsdd_dir, tmp_path):
    out = tmp_path / "graph.nir"
    env_cmd = [sys.executable, "-m", "train.nir"]
    r = subprocess.run(env_cmd + ["export", "--model", str(root / "models" / "fsdd_scnn"), "--out", str(out),
                                  "--json"], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr
    assert "resets by subtraction" in r.stderr
    r = subprocess.run(env_cmd + ["import", str(out), "--data", str(fsdd_dir), "--out", str(tmp_path / "back"),
                                  "--limit-train", "200", "--quiet", "--json"], capture_output=True, text=True,
                       cwd=root)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["exact"] and rep["bit_true_accuracy"] >= 0.95
    assert rep["model_hash"] == gm.model_hash(gm.load(root / "models" / "fsdd_scnn"))


def test_cli_refusal_names_the_node(root, tmp_path):
    rng = np.random.default_rng(0)
    g = _chain(*_ok_nodes(rng), input_shape=(6,))
    g.nodes["lif"].v_reset = np.full(4, 0.2)
    nir.write(tmp_path / "bad.nir", g)
    r = subprocess.run([sys.executable, "-m", "train.nir", "import", str(tmp_path / "bad.nir"), "--data",
                        str(tmp_path)], capture_output=True, text=True, cwd=root)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: node lif (LIF): v_reset 0.2")
    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    r = subprocess.run([sys.executable, "-m", "train.nir", "import", str(tmp_path / "junk.nir"), "--data",
                        str(tmp_path)], capture_output=True, text=True, cwd=root)
    assert r.returncode == 2 and "junk.nir: not a NIR graph" in r.stderr


def test_imported_peer_model_runs_on_the_rtl_as_golden(tmp_path):
    """A graph written with nir's API (conv on the map, OR-pool, dense, readout: what the generator builds today),
    imported, quantized, and run through the generated RTL: every spike, readout and class equals the golden model."""
    from sim.stimulus import mixed
    from sim.verify import verify
    rng = np.random.default_rng(9)
    g = _chain(("conv", nir.Conv2d(input_shape=np.array([6, 8]), weight=rng.normal(0, 0.5, (2, 1, 3, 3)),
                                   stride=np.array([1, 1]), padding=np.array([1, 1]), dilation=np.array([1, 1]),
                                   groups=1, bias=rng.normal(0, 0.1, 2))),
               ("lif1", _lif((2, 6, 8), beta=0.75)),
               ("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))),
               ("or", nir.Threshold(threshold=np.full((2, 3, 4), 0.5))),
               ("flat", nir.Flatten(input_type={"input": np.array([2, 3, 4])}, start_dim=0, end_dim=-1)),
               ("fc", _rng_affine(rng, 6, 24, 0.6)), ("lif2", _lif(6, beta=0.875)),
               ("out", _rng_affine(rng, 3, 6)), ("readout", nir.I(r=np.ones(3))), input_shape=(1, 6, 8))
    x = rng.integers(-127, 128, (40, 1, 6, 8))
    model, _ = quantize(read_graph(_through_file(g, tmp_path)), input_shape=(1, 6, 8), input_scale=32.0,
                        time_steps=3, x_calib=x, name="nir_peer")
    stim = mixed(model, samples=8, seed=4)
    result = verify(model, stim.x, names=stim.names, run_dir=tmp_path / "run", seed=4)
    summary = result.summary()
    assert result.passed, summary["first_mismatch"]
    assert summary["events_compared"] == summary["events_expected"] > 0


def _conv(rng, co, ci, h, w, scale=0.5):
    return nir.Conv2d(input_shape=np.array([h, w]), weight=rng.normal(0, scale, (co, ci, 3, 3)),
                      stride=np.array([1, 1]), padding=np.array([1, 1]), dilation=np.array([1, 1]), groups=1,
                      bias=rng.normal(0, 0.1, co))


def test_convolution_on_spikes_imports_and_runs_in_golden(tmp_path):
    """A graph with a second convolution on spikes (manifest version 2): imported and run bit-true in golden, which
    the torch integer mode matches spike for spike, and the generated network (amaranth.sim, with stalls) matches
    golden on every spike, readout, class and cycle."""
    from test_hw_network import check
    from train.agree import check_agreement
    rng = np.random.default_rng(12)
    g = _chain(("conv_a", _conv(rng, 3, 1, 6, 8)), ("lif_a", _lif((3, 6, 8))),
               ("conv_b", _conv(rng, 4, 3, 6, 8, 0.8)), ("lif_b", _lif((4, 6, 8), beta=0.75)),
               ("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))),
               ("or", nir.Threshold(threshold=np.full((4, 3, 4), 0.5))),
               ("fc", _rng_affine(rng, 3, 48)), ("readout", nir.I(r=np.ones(3))), input_shape=(1, 6, 8))
    fnet = read_graph(_through_file(g, tmp_path))
    x = rng.integers(-127, 128, (30, 1, 6, 8))
    model, rows = quantize(fnet, input_shape=(1, 6, 8), input_scale=32.0, time_steps=4, x_calib=x, name="deep")
    assert [l.type for l in model.layers] == ["conv2d", "conv2d", "pool", "dense"]
    assert gm.manifest_version(model) == 2
    assert [r.get("leak_shift") for r in rows] == [3, 2, None, None]
    agreement = check_agreement(model, x, progress=False)
    assert agreement.spikes > 0
    res = run(model, x)
    _, trains = FloatRunner(fnet, time_steps=4, input_scale=32.0)(torch.tensor(x), record=True)
    agree = spike_agreement(res.spikes, [t.numpy() for t in trains], ["conv1", "conv2", "pool1"])
    assert min(agree.values()) > 0.95, agree
    check(model, x[:3], seed=12, stall=0.3)


def test_finetune_keeps_golden_and_refuses_mixed_leaks():
    from train.agree import check_agreement
    from train.nir.importer import finetune
    rng = np.random.default_rng(13)

    def graph(beta2):
        return _chain(("conv", _conv(rng, 2, 1, 4, 8)), ("lif1", _lif((2, 4, 8))),
                      ("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                             padding=np.array([0, 0]))),
                      ("or", nir.Threshold(threshold=np.full((2, 2, 4), 0.5))),
                      ("fc", _rng_affine(rng, 6, 16, 0.8)), ("lif2", _lif(6, beta=beta2)),
                      ("out", _rng_affine(rng, 3, 6)), input_shape=(1, 4, 8))
    x = rng.integers(-127, 128, (64, 1, 4, 8))
    y = rng.integers(0, 3, 64)
    model, _ = quantize(read_graph(graph(0.875)), input_shape=(1, 4, 8), input_scale=32.0, time_steps=3,
                        x_calib=x, name="ft")
    tuned = finetune(model, x, y, epochs=1, progress=False)
    assert [l.name for l in tuned.layers] == [l.name for l in model.layers]
    assert check_agreement(gm.validate(tuned), x, progress=False).samples == 64
    mixed, _ = quantize(read_graph(graph(0.75)), input_shape=(1, 4, 8), input_scale=32.0, time_steps=3,
                        x_calib=x, name="mixed")
    with pytest.raises(NirError, match=r"^--finetune: model mixed: SCNN needs one leak shift and reset mode in all "
                                        r"LIF layers$"):
        finetune(mixed, x, y, epochs=1, progress=False)
