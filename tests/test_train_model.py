"""Tests of the torch network (train/model.py), its export (train/export.py) and the agreement check (train/agree.py).

The key property: the torch integer mode equals the golden model spike for spike, on many random models and on
the shipped model with real samples.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import golden.manifest as gm
from golden.network import run
from golden.randmodel import random_deep_model, random_inputs, random_model
from train.agree import AgreementError, check_agreement
from train.export import BudgetError, calibrate_mem_bits, check_budget
from train.arch import PRESETS, format_layers, parse_layers, stack_shapes, stack_weight_count
from train.model import SCNN, SCNNConfig, integer_forward, int_layers_from_model
from train.trainer import _sharpness_aware, time_shift
from conftest import FSDD

ROOT = Path(__file__).resolve().parents[1]
DATA = FSDD
MODEL = ROOT / "models" / "fsdd_scnn"


# -- torch integer mode against the golden model ----------------------------------------------------------------

@pytest.mark.parametrize("draw,block", [(random_model, b) for b in range(4)] + [(random_deep_model, b) for b in range(3)])
def test_random_models_agree_with_golden(draw, block):
    size = 50 if draw is random_model else 30
    for seed in range(block * size, block * size + size):
        model = draw(seed)
        x = random_inputs(model, 6, np.random.default_rng(seed))
        res = check_agreement(model, x, progress=False)
        golden = run(model, x)
        assert np.array_equal(res.readout, golden.readout)
        assert res.values_compared == sum(v.size for v in golden.spikes.values())
        assert res.spikes == sum(int(np.count_nonzero(v)) for v in golden.spikes.values())


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("leak_shift", [0, 1, 5])
def test_random_models_agree_at_narrow_widths(reset, leak_shift):
    for seed in range(10):
        model = random_model(1000 + seed, reset=reset, leak_shift=leak_shift, time_steps=6)
        x = random_inputs(model, 8, np.random.default_rng(seed))
        check_agreement(model, x, progress=False)


def test_disagreement_names_sample_layer_step_and_neuron():
    model = random_model(7)
    x = random_inputs(model, 4, np.random.default_rng(7))
    layers = int_layers_from_model(model)
    layers[0].bias = layers[0].bias + 10 ** 7
    with pytest.raises(AgreementError, match=r"sample 0 \(a\), layer conv1, time step 0, neuron \d+: golden spike 0, "
                                             r"torch spike 1"):
        check_agreement(model, x, layers, names=["a", "b", "c", "d"], progress=False)
    layers = int_layers_from_model(model)
    last = layers[-1]
    last.bias = last.bias.clone()
    last.bias[3] += 1
    with pytest.raises(AgreementError, match=rf"sample 0, layer {last.name}, time step {model.time_steps - 1}, "
                                             r"neuron 3: golden readout"):
        check_agreement(model, x, layers, progress=False)


# -- the trainable network -------------------------------------------------------------------------------------

def _small(**kw):
    cfg = SCNNConfig(input_shape=(1, 8, 16), channels=3, pool=(2, 4), hidden=(12,), time_steps=3, **kw)
    torch.manual_seed(0)
    return SCNN(cfg)


def _maps(n, shape=(1, 8, 16), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-60, 61, (n, *shape), generator=g).float()


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_qat_forward_equals_integer_mode(reset):
    net = _small(reset=reset)
    x = _maps(32)
    net.mode = "qat"
    layers, scale = net.int_layers(ste=True)
    qat = integer_forward(layers, x, net.config.time_steps, slope=25.0)
    net.mode = "int"
    exact = net(x)
    assert torch.equal(qat.double(), exact)
    assert torch.any(exact != 0)


def test_qat_backward_reaches_every_parameter():
    net = _small()
    net.mode = "qat"
    x = _maps(16) * 2
    loss = torch.nn.functional.cross_entropy(net(x), torch.arange(16) % 10)
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert net.body[0].weight.grad.abs().sum() > 0


def test_float_mode_and_cnn_control_run():
    net = _small()
    assert net(_maps(4)).shape == (4, 10)
    cnn = SCNN(SCNNConfig(input_shape=(1, 8, 16), channels=3, hidden=(12,), neuron="relu"))
    assert cnn(_maps(4)).shape == (4, 10)
    with pytest.raises(ValueError, match="only the spiking network"):
        cnn.export()


@pytest.mark.parametrize("neuron", ["lif", "relu"])
def test_dropout_acts_in_float_training_only(neuron):
    """Dropout changes the float network while it trains, and nothing in evaluation or in the integer modes."""
    plain, dropped = _small(neuron=neuron), _small(neuron=neuron, dropout=0.5)
    dropped.load_state_dict(plain.state_dict())
    x = _maps(16) * 2
    plain.eval(), dropped.eval()
    assert torch.equal(plain(x), dropped(x))
    dropped.train()
    torch.manual_seed(1)
    assert not torch.equal(plain(x), dropped(x))
    if neuron == "lif":
        for mode in ("qat", "int"):
            plain.mode = dropped.mode = mode
            assert torch.equal(plain(x), dropped(x))
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), not 1.0"):
        SCNNConfig(dropout=1.0)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_export_is_valid_and_agrees(tmp_path, reset):
    net = _small(reset=reset)
    x = _maps(40, seed=1)
    net.config.mem_bits, peaks = calibrate_mem_bits(net, x.numpy().astype(np.int8))
    assert set(peaks) == {"conv1", "fc1", "out"}
    model = net.export(name="tiny", features=None)
    for layer in model.layers:
        if hasattr(layer, "acc_bits"):
            assert layer.acc_bits == gm.required_acc_bits(layer)
    gm.save(model, tmp_path / "tiny")
    loaded = gm.load(tmp_path / "tiny")
    layers, _ = net.int_layers(ste=False)
    check_agreement(loaded, x.numpy().astype(np.int8), layers, progress=False)
    net.mode = "int"
    assert np.array_equal(net(x).numpy().astype(np.int64), run(loaded, x.numpy().astype(np.int8)).readout)


def test_budget_check_refuses_large_model():
    cfg = SCNNConfig(hidden=(300,))
    model = SCNN(cfg).export(name="big")
    assert model.weight_count == cfg.weight_count == 36 + 384 * 300 + 3000
    with pytest.raises(BudgetError, match=re.escape("model big needs ") + r"[\d,]+ bits of block RAM for weights "
                       r"and biases \(layer fc1: [\d,]+\); iCE40UP5K has 122,880 \(30 EBR of 4,096 bits\)"):
        check_budget(model)
    info = check_budget(SCNN(SCNNConfig()).export(name="default"))
    assert info["weights"] == 11068 and info["weight_bits"] == 88544 and info["rom_blocks"] == 22
    # counted in the plan's blocks: 8 bits of reserve leave 29 EBRs; a reserve of 9 EBRs leaves 21 < 22
    with pytest.raises(BudgetError, match=r"^model default: its weight and bias ROMs take 22 block RAMs \(layer fc1: "
                                          r"21\); iCE40UP5K has 30, 9 of which are kept"):
        check_budget(SCNN(SCNNConfig()).export(name="default"), reserve_bits=4096 * 8 + 1)


def test_config_refuses_bad_options():
    with pytest.raises(ValueError, match="reset must be"):
        SCNNConfig(reset="hold")
    with pytest.raises(ValueError, match="pool \\(4, 4\\) is larger than the 2 x 48 map"):
        SCNNConfig(input_shape=(1, 2, 48), pool=(4, 4))
    net = _small()
    net.config.mem_bits = [4, 24, 24]
    with pytest.raises(ValueError, match="layer conv1: integer threshold \\d+ does not fit mem_bits 4"):
        net.int_layers(ste=False)


def test_time_shift_is_zero_filled():
    x = torch.arange(1, 11, dtype=torch.float32).view(1, 1, 1, 10).repeat(50, 1, 2, 1)
    y = time_shift(x, 3, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    for row in y[:, 0, 0]:
        nz = row[row != 0]
        assert torch.equal(nz, torch.arange(nz[0], nz[0] + len(nz)))
        assert len(nz) >= 7
    assert torch.equal(time_shift(x, 0, torch.Generator()), x)


# -- the shipped model ---------------------------------------------------------------------------------------

@pytest.mark.skipif(not (MODEL / "manifest.json").exists(), reason=f"no shipped model at {MODEL}")
def test_shipped_model_fits_and_is_documented():
    model = gm.load(MODEL)
    assert model.weight_count <= 12000
    check_budget(model)
    from train.features import FeatureParams
    assert FeatureParams.from_dict(model.features).map_shape == tuple(model.input_shape)


@pytest.mark.skipif(not (MODEL / "manifest.json").exists(), reason=f"no shipped model at {MODEL}")
@pytest.mark.skipif(not DATA.is_dir(), reason=f"FSDD recordings not found at {DATA}")
def test_shipped_model_agrees_on_real_samples():
    from train.features import FeatureParams, extract
    model = gm.load(MODEL)
    p = FeatureParams.from_dict(model.features)
    files = [DATA / f"{d}_{s}_{i}.wav" for d in range(10) for s, i in (("george", 0), ("yweweler", 4))]
    x = np.stack([extract(f, p) for f in files])
    res = check_agreement(model, x, names=[f.name for f in files], progress=False)
    labels = np.repeat(np.arange(10), 2)
    assert np.mean(res.classes == labels) >= 0.9


def test_disagreement_in_a_hidden_layer_is_located():
    model = random_model(11, pool=False, hidden=(6,), time_steps=5)
    x = random_inputs(model, 3, np.random.default_rng(1))
    layers = int_layers_from_model(model)
    hidden = layers[1]
    assert hidden.kind == "dense" and hidden.neuron == "lif"
    hidden.bias = hidden.bias + 10 ** 7
    with pytest.raises(AgreementError, match=rf"sample 0, layer {hidden.name}, time step 0, neuron \d+"):
        check_agreement(model, x, layers, progress=False)


# -- stacked networks (train/arch.py, manifest version 2) -------------------------------------------------------

@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_random_deep_models_agree_at_narrow_widths(reset):
    for seed in range(8):
        model = random_deep_model(500 + seed, reset=reset, leak_shift=1, time_steps=5, mem_bits=8)
        check_agreement(model, random_inputs(model, 6, np.random.default_rng(seed)), progress=False)


def test_disagreement_in_a_conv_on_spikes_is_located():
    model = random_deep_model(2, dense_first=False)
    x = random_inputs(model, 3, np.random.default_rng(0))
    layers = int_layers_from_model(model)
    conv2 = next(l for l in layers if l.name == "conv2")
    conv2.bias = conv2.bias + 10 ** 7
    with pytest.raises(AgreementError, match=r"sample 0, layer conv2, time step 0, neuron \d+: golden spike 0, "
                                             r"torch spike 1"):
        check_agreement(model, x, layers, progress=False)


STACKS = ["c4k3,p2x2,c6k3s2p1,p1x2,d12,d8", "d20,d10", "c3k2s2p0,c4k3p2,d9", "c2k3,c3k1,p2x2"]


def _stack(layers, **kw):
    torch.manual_seed(0)
    return SCNN(SCNNConfig(input_shape=(1, 8, 16), layers=layers, time_steps=3, **kw))


@pytest.mark.parametrize("layers", STACKS)
def test_stack_qat_equals_integer_mode_and_export_agrees(tmp_path, layers):
    net = _stack(layers)
    x = _maps(40, seed=2) * 2
    net.config.mem_bits, peaks = calibrate_mem_bits(net, x.numpy().astype(np.int8))
    assert set(peaks) == {n for n in net.names if not n.startswith("pool")}
    net.mode = "qat"
    qat = integer_forward(net.int_layers(ste=True)[0], x, 3, slope=25.0)
    net.mode = "int"
    assert torch.equal(qat.double(), net(x))
    model = net.export(name="stack", features=None)
    assert [l.name for l in model.layers] == net.names
    assert model.weight_count == net.config.weight_count
    for k, layer in enumerate(l for l in model.layers if l.type != "pool"):
        assert layer.acc_bits == gm.required_acc_bits(layer, on_map=k == 0)
    gm.save(model, tmp_path / "m")
    loaded = gm.load(tmp_path / "m")
    check_agreement(loaded, x.numpy().astype(np.int8), net.int_layers(ste=False)[0], progress=False)
    again = SCNN.from_model(loaded)
    again.mode = "int"
    assert torch.equal(again(x), net(x))


def test_stack_float_mode_and_gradients_reach_every_layer():
    net = _stack("c4k3,p2x2,c6k3,d12")
    assert net(_maps(4)).shape == (4, 10)
    net.mode = "qat"
    loss = torch.nn.functional.cross_entropy(net(_maps(16) * 2), torch.arange(16) % 10)
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    cnn = SCNN(SCNNConfig(input_shape=(1, 8, 16), layers="c4k3,p2x2,c6k3,d12", neuron="relu"))
    assert cnn(_maps(4)).shape == (4, 10)


def test_default_stack_is_the_classic_network():
    cfg = SCNNConfig()
    assert format_layers(cfg.stack) == "c4k3,p2x4,d28"
    assert SCNN(cfg).names == ["conv1", "pool1", "fc1", "out"]
    assert SCNNConfig(layers="c4k3,p2x4,d28").weight_count == cfg.weight_count == 11068


@pytest.mark.parametrize("text,msg", [
    ("", r"layer stack must be a non-empty string like 'c8k3,p2x2,d64', not ''"),
    ("c8k3,q2", r"layer 2 'q2' is not cCkK\[sS\]\[pP\] \(conv2d\), pHxW \(pool\) or dN \(dense\)"),
    ("p2x2,d4", r"layer 1 'p2x2': the first layer must be a conv2d or dense layer \(a pool needs spikes\)"),
    ("d8,c4k3", r"layer 2 'c4k3': a conv2d layer needs a map and cannot follow a dense layer"),
    ("d8,p2x2", r"layer 2 'p2x2': a pool layer needs a map and cannot follow a dense layer"),
    ("c0k3", r"layer 1 'c0k3': sizes, kernels and strides must be at least 1"),
])
def test_layer_stack_syntax_errors(text, msg):
    with pytest.raises(ValueError, match=f"^{msg}$"):
        parse_layers(text)


def test_layer_stack_round_trip_and_shapes():
    text = "c8k3,p2x2,c16k5s2p1,p2x4,d128,d64"
    specs = parse_layers(text)
    assert format_layers(specs) == text and parse_layers(format_layers(specs)) == specs
    assert stack_shapes(specs, (1, 16, 48)) == [(8, 16, 48), (8, 8, 24), (16, 3, 11), (16, 1, 2), (128,), (64,)]
    with pytest.raises(ValueError, match=r"layer 3 'c4k9p0': kernel 9 with padding 0 does not fit the 8 x 24 map"):
        SCNNConfig(layers="c8k3,p2x2,c4k9p0")


def test_presets_are_the_seed_papers_models_adapted():
    a, b = PRESETS["scnn-a"], PRESETS["scnn-b"]
    assert [s.kind for s in parse_layers(a.layers)] == ["conv2d", "pool", "conv2d", "pool", "dense", "dense"]
    assert [(s.channels, s.kernel) for s in parse_layers(a.layers) if s.kind == "conv2d"] == [(6, 3), (16, 3)]
    assert [s.features for s in parse_layers(a.layers) if s.kind == "dense"] == [128, 64]
    assert [s.kind for s in parse_layers(b.layers)] == ["conv2d", "pool", "dense"]
    assert a.time_steps == b.time_steps == 10
    for p in (a, b):
        count = stack_weight_count(parse_layers(p.layers), (1, 16, 48), 10)
        assert f"{count:,} weights" in p.about
        assert count * 8 <= 4 * 262144  # fits the four SPRAMs


def test_trainer_options_choose_the_stack():
    from train.options import build_parser, network_config
    base = ["--data", "x"]

    def cfg(*argv):
        return network_config(build_parser().parse_args(base + list(argv)), (1, 16, 48))
    assert cfg().stack == SCNNConfig().stack and cfg().time_steps == 4
    assert cfg("--arch", "scnn-a").layers == PRESETS["scnn-a"].layers and cfg("--arch", "scnn-a").time_steps == 10
    assert cfg("--arch", "scnn-b", "--time-steps", "4").time_steps == 4
    assert cfg("--layers", "d64").layers == "d64"
    assert cfg("--hidden", "16", "8").hidden == (16, 8)
    with pytest.raises(ValueError, match="--layers and --arch both give the layer stack; use one"):
        cfg("--layers", "d64", "--arch", "scnn-a")
    with pytest.raises(ValueError, match="--hidden shape the default network; with --layers or --arch write the "
                                         "whole stack there"):
        cfg("--layers", "d64", "--hidden", "3")


def test_trainer_options_set_cmvn_and_vtlp():
    from train.options import augment_config, build_parser, feature_params

    def args(*argv):
        return build_parser().parse_args(["--data", "x", *argv])
    p = feature_params(args())
    assert (p.cmn, p.cvn, p.cvn_floor) == (True, False, 0.1)
    p = feature_params(args("--front-end", "classic", "--cvn", "--cvn-floor", "0.3"))
    assert (p.cmn, p.cvn, p.cvn_floor, p.win_ms) == (True, True, 0.3, 25.0)  # --cvn brings the mean with it
    p = feature_params(args("--feature-kind", "logmel"))
    assert (p.kind, p.n_mels, p.n_mfcc, p.map_shape) == ("logmel", 16, 16, (1, 16, 48))
    assert feature_params(args("--feature-kind", "logmel", "--n-mels", "20")).map_shape == (1, 20, 48)
    assert feature_params(args("--n-mels", "24", "--n-mfcc", "12")).map_shape == (1, 12, 48)
    assert (feature_params(args()).trim_db, feature_params(args("--trim-db", "20")).trim_db) == (35.0, 20.0)
    assert (feature_params(args()).limit, feature_params(args("--limit", "0.02")).limit) == (0.0, 0.02)
    assert (feature_params(args()).declip, feature_params(args("--declip")).declip) == (False, True)
    p = feature_params(args("--fmin", "150", "--fmax", "3800"))
    assert (p.fmin, p.fmax, feature_params(args()).fmin, feature_params(args()).fmax) == (150.0, 3800.0, 0.0, 4000.0)
    with pytest.raises(ValueError, match=r"^features: mel range 5000\.0 \.\.\. 4000\.0 Hz must lie in 0 "):
        feature_params(args("--fmin", "5000"))
    with pytest.raises(ValueError, match=r"^features: limit \(the share of samples the limiter clips\) must lie"):
        feature_params(args("--limit", "0.5"))
    with pytest.raises(ValueError, match="^--n-mfcc sets the cepstral coefficients; with --feature-kind logmel"):
        feature_params(args("--feature-kind", "logmel", "--n-mfcc", "12"))
    a = augment_config(args())
    assert a.vtlp_p == 0.0  # off unless asked for
    a = augment_config(args("--vtlp", "0.9", "1.1", "--vtlp-p", "0.5"))
    assert (a.vtlp, a.vtlp_p) == ((0.9, 1.1), 0.5)
    assert (augment_config(args()).trim_jitter, augment_config(args("--trim-jitter", "6")).trim_jitter) == (0.0, 6.0)


def test_budget_with_spram():
    model = SCNN(SCNNConfig(layers=PRESETS["scnn-a"].layers)).export(name="a")
    with pytest.raises(BudgetError, match=r"model a needs [\d,]+ bits of block RAM .* or --spram to count the four "
                                          r"SPRAMs$"):
        check_budget(model)
    info = check_budget(model, spram=True)
    assert info["weights"] == 108054 and info["total_bits"] == 122880 + 4 * 262144
    huge = SCNN(SCNNConfig(layers="c8k3,d128")).export(name="huge")
    with pytest.raises(BudgetError, match=r"model huge needs [\d,]+ bits of block RAM and SPRAM for weights and "
                                          r"biases \(layer fc1: [\d,]+\); iCE40UP5K has 1,171,456 \(30 EBR of 4,096 "
                                          r"bits and 4 SPRAM of 262,144\)"):
        check_budget(huge, spram=True)


DEEP = ROOT / "models" / "fsdd_deep"


@pytest.mark.parametrize("deep", [DEEP, ROOT / "models" / "fsdd_deep2"], ids=["fsdd_deep", "fsdd_deep2"])
def test_deeper_model_has_the_issue_14_structure(deep):
    import json
    if not (deep / "manifest.json").exists():
        pytest.skip(f"no deeper model at {deep}")
    model = gm.load(deep)
    assert json.loads((deep / "manifest.json").read_text())["version"] == 2
    assert [l.type for l in model.layers] == ["conv2d", "pool", "conv2d", "pool", "dense", "dense", "dense"]
    assert model.weight_count >= 50000
    check_budget(model, spram=True)
    with pytest.raises(BudgetError):
        check_budget(model)
    from train.features import FeatureParams
    assert FeatureParams.from_dict(model.features).map_shape == tuple(model.input_shape)


@pytest.mark.skipif(not (DEEP / "manifest.json").exists(), reason=f"no deeper model at {DEEP}")
@pytest.mark.skipif(not DATA.is_dir(), reason=f"FSDD recordings not found at {DATA}")
def test_deeper_model_agrees_on_real_samples():
    from train.features import FeatureParams, extract
    model = gm.load(DEEP)
    p = FeatureParams.from_dict(model.features)
    files = [DATA / f"{d}_{s}_{i}.wav" for d in range(10) for s, i in (("jackson", 1), ("theo", 3))]
    x = np.stack([extract(f, p) for f in files])
    res = check_agreement(model, x, names=[f.name for f in files], progress=False)
    assert np.mean(res.classes == np.repeat(np.arange(10), 2)) >= 0.9
    net = SCNN.from_model(model)
    net.mode = "int"
    assert np.array_equal(net(torch.as_tensor(x)).numpy().astype(np.int64), res.readout)


ROBUST = ROOT / "models" / "fsdd_robust"


@pytest.mark.skipif(not (ROBUST / "manifest.json").exists(), reason=f"no robust model at {ROBUST}")
def test_robust_model_fits_with_its_spram_plan_and_uses_the_robust_front_end():
    from hw.plan import plan
    from train.features import FeatureParams
    model = gm.load(ROBUST)
    check_budget(model, spram=True)
    p = FeatureParams.from_dict(model.features)
    assert (p.win_ms, p.hop_ms, p.dc_remove, p.cmn, p.trim_db) == (32.0, 16.0, True, True, 20.0)
    assert (p.kind, p.n_mels, p.n_mfcc) == ("logmel", 16, 16)  # the log-mel map (README, Robustness)
    assert (p.stretch, p.frames) == (True, 24)  # the speech fitted to 24 frames: nothing cropped, nothing padded
    assert p.declip  # saturated samples estimated before the features (README, the declipper)
    assert p.map_shape == tuple(model.input_shape)
    assert model.training == {"dataset": "fsdd", "split": "official"}
    # its own iCE40UP5K options (manifest "hardware"): the plan the README's figures were built with
    fc1 = plan(model).layer("fc1")
    assert (fc1.lanes, fc1.weights, fc1.buffer.listed, fc1.accumulators) == (8, "spram", True, "registers")
    # six steps need two more step memories after conv1: the readout's accumulators in block RAM keep the fit
    # check's estimate under the chip (README, Robustness)
    assert model.time_steps == 6 and plan(model).layer("out").accumulators == "ram"
    assert plan(model, params={}).layer("fc1").lanes != 8


@pytest.mark.skipif(not (ROBUST / "manifest.json").exists(), reason=f"no robust model at {ROBUST}")
@pytest.mark.skipif(not DATA.is_dir(), reason=f"FSDD recordings not found at {DATA}")
def test_robust_model_vectors_are_its_front_end_and_agree():
    from train.features import FeatureParams, extract
    model = gm.load(ROBUST)
    p = FeatureParams.from_dict(model.features)
    v = model.test_vectors
    pick = list(range(0, len(v), 23))
    x = np.stack([extract(DATA / v.names[k], p, warn_crop=False) for k in pick])
    assert np.array_equal(x, v.x[pick])
    res = check_agreement(model, v.x, names=v.names, progress=False)
    assert np.mean(res.classes == v.y) >= 0.94


def test_resume_takes_a_checkpoint_written_before_an_option_existed():
    """An option left at its default counts as absent, so a checkpoint of an older version (without the key) resumes;
    a different value of any option is refused."""
    from train.options import build_parser, ckpt_args, same_options
    args = build_parser().parse_args(["--data", "DIR", "--epochs", "7"])
    current = ckpt_args(args)
    older = {k: v for k, v in current.items() if k != "babble_p"}
    assert "babble_p" in current and same_options(older, current)
    assert not same_options(older, {**current, "babble_p": 0.5})
    assert not same_options({**current, "epochs": 8}, current)


def test_label_smoothing_reaches_the_hard_term_of_distillation_alone():
    """--label-smoothing smooths the labels' cross-entropy, with a teacher too; the teacher's term is unchanged."""
    import torch.nn.functional as F

    from train.teacher import distill_loss
    gen = torch.Generator().manual_seed(0)
    out, t_out = torch.randn(8, 10, generator=gen), torch.randn(8, 10, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    smooth = F.cross_entropy(out, y, label_smoothing=0.2)
    assert not torch.isclose(smooth, F.cross_entropy(out, y))
    assert torch.isclose(distill_loss(out, y, t_out, 0.0, 2.0, 0.2), smooth)
    soft = distill_loss(out, y, t_out, 1.0, 2.0, 0.0)
    assert torch.isclose(distill_loss(out, y, t_out, 1.0, 2.0, 0.2), soft)
    assert torch.isclose(distill_loss(out, y, t_out, 0.5, 2.0, 0.2), 0.5 * smooth + 0.5 * soft)


@pytest.mark.parametrize("with_teacher", [False, True])
def test_an_epoch_trains_on_the_smoothed_labels(with_teacher):
    """The trainer's epoch gives the loss --label-smoothing asks for, with and without a teacher (a learning rate
    of 0 keeps the network as it is, so the epoch's loss is the loss of the whole set in one batch)."""
    from argparse import Namespace

    import torch.nn.functional as F

    from train.teacher import distill_loss
    from train.trainer import _epoch
    x, y = _maps(10), torch.arange(10)
    teacher = _small(neuron="relu").eval() if with_teacher else None

    def epoch_loss(eps):
        net = _small(neuron="relu")
        args = Namespace(batch=10, shift=0, label_smoothing=eps, distill=0.5, distill_temp=2.0)
        opt = torch.optim.SGD(net.parameters(), lr=0.0)
        loss, _ = _epoch(net, opt, None, x[None], y, args, torch.Generator().manual_seed(0), "t", False,
                         teacher=teacher)
        with torch.no_grad():
            out = net(x)
            want = (F.cross_entropy(out, y, label_smoothing=eps) if teacher is None
                    else distill_loss(out, y, teacher(x), 0.5, 2.0, eps))
        return loss, float(want)
    plain, smooth = epoch_loss(0.0), epoch_loss(0.9)
    assert plain[0] == pytest.approx(plain[1], rel=1e-5) and smooth[0] == pytest.approx(smooth[1], rel=1e-5)
    assert abs(plain[0] - smooth[0]) > 1e-3


def test_sharpness_aware_step_takes_the_gradient_at_the_perturbed_weights():
    """_sharpness_aware leaves the weights where they were and their gradients those of the point rho away along
    the first gradient (here of sum(w^3), 3 w'^2 at w' = w + rho g / |g|)."""
    layer = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -1.0, 2.0]]))
    w = layer.weight.detach().clone()
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)

    def loss_fn():
        return (layer.weight ** 3).sum()
    opt.zero_grad()
    loss_fn().backward()
    g = 3 * w ** 2
    _sharpness_aware(layer, opt, 0.2, loss_fn)
    assert torch.equal(layer.weight.detach(), w)
    moved = w + 0.2 * g / g.norm()
    assert torch.allclose(layer.weight.grad, 3 * moved ** 2)
    assert not torch.allclose(layer.weight.grad, g)
