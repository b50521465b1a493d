"""Reduced end-to-end training (train/trainer.py) through export, the agreement check, resume and evaluation.

These use the real FSDD recordings (a few hundred training files, a couple of epochs) and skip without them.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import golden.manifest as gm
from golden import store
from golden.cli import EXIT_BAD_INPUT, run_main
from train import evaluate, trainer
from conftest import FSDD

DATA = FSDD
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"FSDD recordings not found at {DATA}")

QUICK = ["--data", str(DATA), "--limit-train", "300", "--epochs", "3", "--qat-epochs", "1", "--batch", "16", "--quiet",
         "--hidden", "16", "--seed", "3", "--name", "e2e"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One reduced run: (model dir, run dir, metrics)."""
    base = tmp_path_factory.mktemp("e2e")
    out, run = base / "model", base / "run"
    assert trainer.main(QUICK + ["--out", str(out), "--run-dir", str(run)]) == 0
    return out, run, json.loads((run / "metrics.json").read_text())


def test_reduced_training_exports_an_agreeing_model(trained):
    out, run, metrics = trained
    model = gm.load(out)
    assert model.weight_count == 4 * 9 + 384 * 16 + 16 * 10
    assert metrics["agreement"] == {"samples": 300, "values_compared": metrics["agreement"]["values_compared"],
                                    "spikes": metrics["agreement"]["spikes"],
                                    "identical": True}
    assert metrics["int_accuracy_torch"] == pytest.approx(metrics["bit_true_accuracy"], abs=1e-6)
    assert metrics["bit_true_accuracy"] > 0.2  # twice chance: 250 files, 3 epochs, augmented
    assert [h["phase"] for h in metrics["history"]] == ["float", "float", "float", "qat"]
    assert model.features["kind"] == "mfcc" and len(model.features["mean"]) == 16
    assert metrics["mem_bits"] == {l.name: l.neuron.mem_bits for l in model.layers if hasattr(l, "neuron")}
    assert store.leftovers(out) == [], "temporary export directories left behind"
    assert model.training == {"dataset": "fsdd", "split": "official", "limit_train": 300}
    # model selection on a held-out training speaker (seed 3: the fourth of six), never on the test side
    assert metrics["val_speakers"] == ["nicolas"] and metrics["val_samples"] == 50
    assert metrics["train_samples"] == 250
    chosen = metrics["history"][metrics["qat_epoch_chosen"] - 1]
    assert chosen["phase"] == "qat" and chosen["val_acc"] == metrics["qat_val_accuracy"]
    assert chosen["val_acc"] == max(h["val_acc"] for h in metrics["history"] if h["phase"] == "qat")
    assert model.features["dc_remove"] is True and model.features["cmn"] is True
    assert metrics["augment"]["copies"] == 4


def test_init_from_cnn_starts_the_spiking_network_from_the_cnn(tmp_path):
    run = tmp_path / "run"
    argv = [a for a in QUICK if a != "--quiet"] + ["--quiet", "--no-export", "--run-dir", str(run), "--epochs", "1",
                                                   "--qat-epochs", "0", "--init-from-cnn", "--cnn-epochs", "6",
                                                   "--augment-copies", "0"]
    assert trainer.main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["cnn_accuracy"] > 0.3
    # the converted network, before any spiking training, already does twice as well as chance
    assert metrics["init_accuracy"] > 0.2


def test_evaluate_cli_json_matches_training(trained, capsys):
    out, _, metrics = trained
    assert evaluate.main(["--model", str(out), "--data", str(DATA), "--json", "--quiet"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    res = json.loads(last)
    assert res["samples"] == 300 and res["seen_in_training"] == 0
    assert res["accuracy"] == pytest.approx(metrics["bit_true_accuracy"])
    assert res["correct"] == round(300 * res["accuracy"])
    assert np.array(res["confusion"]).sum() == 300


def test_evaluate_cli_errors(tmp_path, capsys):
    assert run_main(evaluate.main, ["--model", str(tmp_path / "none"), "--data", str(DATA)]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == f"error: model directory {tmp_path / 'none'} does not exist\n"


def test_resume_after_interruption_gives_the_same_model(trained, tmp_path, monkeypatch):
    out, _, metrics = trained
    calls = {"n": 0}
    real = trainer._epoch

    def interrupted(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    argv = QUICK + ["--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "run")]
    monkeypatch.setattr(trainer, "_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.main(argv)
    assert not (tmp_path / "m").exists()
    monkeypatch.setattr(trainer, "_epoch", real)
    assert trainer.main(argv + ["--resume"]) == 0
    again = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert again["predictions"] == metrics["predictions"]
    assert gm.model_hash(gm.load(tmp_path / "m")) == metrics["model_hash"]


def test_agree_cli_on_saved_model(trained, capsys):
    from train import agree
    out, _, metrics = trained
    assert agree.main(["--model", str(out), "--data", str(DATA), "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["agree"] is True and res["samples"] == 300
    assert res["values_compared"] == metrics["agreement"]["values_compared"]
    assert 0 < res["spikes"] == metrics["agreement"]["spikes"] < res["values_compared"]
    assert res["accuracy"] == pytest.approx(metrics["bit_true_accuracy"])


def test_report_writes_plots_and_figures(trained, tmp_path):
    from train.report import make_report
    out, run, metrics = trained
    fig = make_report(out, DATA, tmp_path / "report", run_dir=run, max_steps=4, progress=False)
    for name in ("curves", "confusion", "raster", "firing", "steps"):
        data = (tmp_path / "report" / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["accuracy"] == pytest.approx(metrics["bit_true_accuracy"])
    assert set(saved["firing_rate"]) == {"conv1", "pool1", "fc1"}
    assert all(0 < v < 1 for v in saved["firing_rate"].values())
    assert saved["accuracy_vs_time_steps"][str(fig["time_steps"])] == pytest.approx(saved["accuracy"])
    assert np.array(saved["confusion"]).sum() == 300


def test_report_compares_runs(trained, tmp_path, capsys):
    from train.report import main
    _, run, metrics = trained
    assert main(["--compare", str(run), str(run), "--labels", "a", "b", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads((tmp_path / "compare.json").read_text())
    assert [r["label"] for r in rows] == ["a", "b"]
    assert rows[0]["bit_true_accuracy"] == metrics["bit_true_accuracy"]
    assert capsys.readouterr().out.splitlines()[0] == (f"a: bit_true_accuracy {100 * metrics['bit_true_accuracy']:.2f}%, "
                                                       f"qat_val_accuracy {100 * metrics['qat_val_accuracy']:.2f}%")


@pytest.mark.slow
def test_leave_one_speaker_out_study(tmp_path):
    from train import loso
    argv = ["--data", str(DATA), "--speakers", "theo", "--out", str(tmp_path), "--limit-train", "300",
            "--epochs", "3", "--qat-epochs", "1", "--batch", "16", "--quiet"]
    assert loso.main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["speakers"]["theo"]["test_samples"] == 500
    assert 0.1 < summary["mean_bit_true_accuracy"] <= 1.0
    assert summary["worst_speaker"] == "theo"
    assert summary["worst_bit_true_accuracy"] == summary["speakers"]["theo"]["bit_true_accuracy"]
    assert "theo" not in summary["speakers"]["theo"]["val_speakers"]


def test_leave_one_speaker_out_of_the_cnn_control_reports_float(tmp_path, capsys):
    """The non-spiking control has no integer model: its study is judged, and labelled, by the float accuracy."""
    from train import loso
    argv = ["--data", str(DATA), "--speakers", "theo", "--out", str(tmp_path), "--limit-train", "100",
            "--epochs", "1", "--batch", "16", "--neuron", "relu", "--val-speaker", "none", "--quiet"]
    assert loso.main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    theo = summary["speakers"]["theo"]
    assert summary["measure"] == "float" and theo["bit_true_accuracy"] is None
    assert summary["mean_float_accuracy"] == summary["worst_float_accuracy"] == theo["float_accuracy"]
    assert "mean_bit_true_accuracy" not in summary
    assert "mean float accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_inference_figures():
    from train.bench import bench_inference
    model = Path(__file__).resolve().parents[1] / "models" / "fsdd_scnn"
    if not (model / "manifest.json").exists():
        pytest.skip(f"no shipped model at {model}")
    res = bench_inference(model, DATA)
    assert res["samples"] == 300 and res["golden_over_snntorch_float"] > 0
    assert res["golden_accuracy"] >= 0.98


def test_training_refuses_a_model_over_the_block_ram_budget_before_training(tmp_path, capsys):
    argv = ["--data", str(DATA), "--limit-train", "10", "--hidden", "300", "--quiet", "--out", str(tmp_path / "m"),
            "--run-dir", str(tmp_path / "run")]
    assert trainer.main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(r"model m needs 9\d\d,\d\d\d bits of block RAM for weights and biases \(layer fc1: "
                     r"9\d\d,\d\d\d\); iCE40UP5K has 122,880", err), err
    assert list(tmp_path.iterdir()) == []


def test_reduced_training_of_a_layer_stack(tmp_path):
    argv = ["--data", str(DATA), "--limit-train", "200", "--epochs", "2", "--qat-epochs", "1", "--batch", "16",
            "--quiet", "--seed", "1", "--layers", "c4k3,p2x2,c4k3s2,p2x2,d16,d12", "--time-steps", "3",
            "--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "run")]
    assert trainer.main(argv) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    model = gm.load(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["version"] == 2
    assert [l.name for l in model.layers] == ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "out"]
    assert model.layer("conv2").stride == (2, 2) and model.time_steps == 3
    assert metrics["agreement"]["identical"] and metrics["agreement"]["samples"] == 300
    assert metrics["int_accuracy_torch"] == pytest.approx(metrics["bit_true_accuracy"], abs=1e-6)
    assert metrics["config"]["layers"] == "c4k3,p2x2,c4k3s2,p2x2,d16,d12"
    from train import agree
    assert agree.main(["--model", str(tmp_path / "m"), "--data", str(DATA), "--json"]) == 0


def test_validation_index_chooses_on_the_same_speakers_takes(tmp_path):
    run = tmp_path / "run"
    argv = ["--data", str(DATA), "--limit-train", "200", "--epochs", "1", "--qat-epochs", "2", "--batch", "32",
            "--quiet", "--hidden", "8", "--augment-copies", "0", "--val-index", "5", "9", "--no-export",
            "--out", str(tmp_path / "model"), "--run-dir", str(run)]
    assert trainer.main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val_index"] == [5, 9] and metrics["val_speakers"] == []
    assert metrics["val_samples"] + metrics["train_samples"] == 200 and metrics["val_samples"] > 0
    chosen = metrics["history"][metrics["qat_epoch_chosen"] - 1]
    assert chosen["val_acc"] == max(h["val_acc"] for h in metrics["history"] if h["phase"] == "qat")


def test_training_refuses_a_bad_babble_share_before_reading_data(tmp_path, capsys):
    argv = ["--data", str(tmp_path / "nowhere"), "--babble-p", "1.5", "--quiet", "--out", str(tmp_path / "m"),
            "--run-dir", str(tmp_path / "run")]
    assert trainer.main(argv) == 2
    assert "augmentation babble_p must be a probability in 0 ... 1, not 1.5" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


DISTILL = ["--distill", "0.7", "--teacher-layers", "c8k3,p2x4,d32", "--teacher-epochs", "4", "--epochs", "2",
           "--qat-epochs", "1", "--no-export", "--augment-copies", "1", "--mixup", "0.3",
           "--label-smoothing", "0.1", "--trim-jitter", "5"]


def test_distillation_trains_the_teacher_first_and_resumes_to_the_same_model(tmp_path, monkeypatch):
    """--distill: the teacher (a ReLU CNN of its own layout) is trained and measured before the spiking network;
    an interrupted run resumes with the teacher of its checkpoint, to the same predictions (with mixup, whose draws
    come from the checkpointed generator, and with label smoothing and trim jitter)."""
    argv = QUICK + DISTILL + ["--run-dir", str(tmp_path / "run")]
    assert trainer.main(argv) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["teacher_accuracy"] > 0.2 and 0 <= metrics["teacher_val_accuracy"] <= 1
    assert metrics["int_accuracy_torch"] == pytest.approx(metrics["bit_true_accuracy"], abs=1e-6)
    assert metrics["augment"]["mixup"] == 0.3 and metrics["augment"]["trim_jitter"] == 5.0
    assert metrics["label_smoothing"] == 0.1
    # without a teacher the same options give another network
    plain = QUICK + [a for a in DISTILL if a not in ("--distill", "0.7")] + ["--run-dir", str(tmp_path / "plain")]
    assert trainer.main(plain) == 0
    assert json.loads((tmp_path / "plain" / "metrics.json").read_text())["predictions"] != metrics["predictions"]

    calls = {"n": 0}
    real = trainer._epoch

    def interrupted(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 4 + 2:  # after the teacher's four epochs and the student's first
            raise KeyboardInterrupt
        return real(*args, **kw)
    again = QUICK + DISTILL + ["--run-dir", str(tmp_path / "again")]
    monkeypatch.setattr(trainer, "_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.main(again)
    monkeypatch.setattr(trainer, "_epoch", real)
    assert trainer.main(again + ["--resume"]) == 0
    resumed = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert resumed["predictions"] == metrics["predictions"]
    assert resumed["teacher_accuracy"] == metrics["teacher_accuracy"]


@pytest.mark.parametrize("option, message", [
    (["--distill", "1.5"], "--distill 1.5 must lie in 0 ... 1"),
    (["--distill", "0.5", "--distill-temp", "0"], "--distill-temp 0.0 must be positive"),
    (["--distill", "0.5", "--neuron", "relu"], "with --neuron relu there is none"),
    (["--distill", "0.5", "--teacher-layers", "c8k3,d32,p2x2"], "p2x2"),
    (["--label-smoothing", "1"], "--label-smoothing must be in 0 ... 1 (excluded; 0: off), not 1.0"),
    (["--label-smoothing", "-0.1"], "--label-smoothing must be in 0 ... 1 (excluded; 0: off), not -0.1"),
    (["--trim-jitter", "50"], "augmentation trim_jitter must be in 0 ... 40 dB (0: off), not 50.0"),
    (["--sam", "-1"], "--sam must be a finite RHO >= 0 (0: off), not -1.0"),
    (["--sam", "inf"], "--sam must be a finite RHO >= 0 (0: off), not inf"),
    (["--swa", "5", "--neuron", "relu"], "--swa averages quantization-aware epochs; --neuron relu has none"),
    (["--swa", "11"], "--swa must be in 0 ... --qat-epochs (10), not 11"),
    (["--swa", "-1"], "--swa must be in 0 ... --qat-epochs (10), not -1"),
])
def test_training_refuses_bad_training_options_before_reading_data(tmp_path, capsys, option, message):
    argv = ["--data", str(tmp_path / "nowhere"), "--quiet", "--out", str(tmp_path / "m"),
            "--run-dir", str(tmp_path / "run")] + option
    assert trainer.main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_weight_averaging_exports_the_mean_of_the_last_epochs_and_resumes(tmp_path, monkeypatch):
    """--swa 2 of three quantization-aware epochs: the network kept is the mean of the weights after the second and
    the third (not the last epoch's), it agrees with the golden model like any other, and a run interrupted between
    the two averaged epochs resumes to the same model."""
    import torch
    argv = QUICK + ["--qat-epochs", "3", "--swa", "2", "--epochs", "2", "--augment-copies", "1",
                    "--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "run")]
    states, real = [], trainer._epoch

    def watched(net, *args, **kw):
        result = real(net, *args, **kw)
        states.append({k: v.detach().clone() for k, v in net.state_dict().items()})
        return result
    monkeypatch.setattr(trainer, "_epoch", watched)
    assert trainer.main(argv) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["swa_epochs"] == 2 and len(states) == 5
    # the validation speaker measures the mean but chooses no quantization-aware epoch
    assert 0 <= metrics["swa_val_accuracy"] <= 1 and "qat_epoch_chosen" not in metrics
    kept = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["net"]
    for name in ("body.0.weight", "body.1.weight", "out.weight", "out.bias"):
        mean = (states[3][name] + states[4][name]) / 2
        assert torch.allclose(kept[name], mean, atol=1e-6), name
        assert not torch.allclose(kept[name], states[4][name]), name
    assert metrics["int_accuracy_torch"] == pytest.approx(metrics["bit_true_accuracy"], abs=1e-6)

    calls = {"n": 0}

    def interrupted(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 5:  # after the first averaged epoch
            raise KeyboardInterrupt
        return real(*args, **kw)
    again = argv[:-4] + ["--out", str(tmp_path / "m2"), "--run-dir", str(tmp_path / "again")]
    monkeypatch.setattr(trainer, "_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.main(again)
    monkeypatch.setattr(trainer, "_epoch", real)
    assert trainer.main(again + ["--resume"]) == 0
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["predictions"] == metrics["predictions"]
    assert gm.model_hash(gm.load(tmp_path / "m2")) == metrics["model_hash"]


def test_sharpness_aware_training_agrees_and_is_reproducible(tmp_path, monkeypatch):
    """--sam through a whole reduced run with dropout: the second pass replays the batch's dropout masks (its loss,
    evaluated twice at the same weights, is the same both times), the model agrees with the golden model, differs
    from the same run without --sam, and a second run gives the same model."""
    import torch
    real = trainer._sharpness_aware
    replays = []

    def checked(net, opt, rho, loss_fn):
        with torch.no_grad():
            replays.append(float(loss_fn()) == float(loss_fn()))
        return real(net, opt, rho, loss_fn)
    hashes = []
    for k in range(2):
        if k == 0:
            monkeypatch.setattr(trainer, "_sharpness_aware", checked)
        else:
            monkeypatch.setattr(trainer, "_sharpness_aware", real)
        argv = QUICK + ["--sam", "0.05", "--dropout", "0.3", "--out", str(tmp_path / f"m{k}"),
                        "--run-dir", str(tmp_path / f"run{k}")]
        assert trainer.main(argv) == 0
        metrics = json.loads((tmp_path / f"run{k}" / "metrics.json").read_text())
        assert metrics["int_accuracy_torch"] == pytest.approx(metrics["bit_true_accuracy"], abs=1e-6)
        hashes.append(gm.model_hash(gm.load(tmp_path / f"m{k}")))
    assert replays and all(replays)
    assert hashes[0] == hashes[1]
    plain = QUICK + ["--dropout", "0.3", "--out", str(tmp_path / "plain"), "--run-dir", str(tmp_path / "rplain")]
    assert trainer.main(plain) == 0
    assert gm.model_hash(gm.load(tmp_path / "plain")) != hashes[0]
