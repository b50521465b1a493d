"""Training: surrogate-gradient float training, quantization-aware fine-tuning, export and the agreement check.

``python -m train --data DIR --out models/fsdd_scnn`` runs the whole recipe:

1. features of the chosen split (:mod:`train.fsdd`; ``--front-end robust`` by default: 32 ms window every 16 ms,
   DC removal, per-utterance mean normalization; ``--cvn`` adds the per-utterance variance normalization,
   ``--feature-kind logmel`` takes the log mel energies instead of their cepstrum); one training speaker
   (``--val-speaker``, default ``auto``: the ``seed mod n``-th) becomes the validation side, or with
   ``--val-index LO HI`` the recordings numbered ``LO ... HI`` of every speaker and digit (the official test
   side's speakers), and the normalization is fitted on the rest;
2. ``--augment-copies`` perturbed versions of every training recording (:mod:`train.augment`: speed, gain with or
   without clipping, white/pink/brown noise or babble of other training speakers, DC offset, with ``--reverb-p``
   simulated rooms, with ``--vtlp`` a warped mel filterbank, with ``--trim-jitter`` a silence trimming level drawn
   around ``--trim-db``), made once;
3. optionally (``--init-from-cnn``) the non-spiking CNN of the same layout, trained for ``--cnn-epochs``, whose
   weights start the spiking network (:mod:`train.convert`);
4. ``--epochs`` float epochs (snnTorch neurons, fast-sigmoid surrogate, Adam with a one-cycle schedule; each
   recording in one of its versions, random time shift of up to ``--shift`` frames, band and frame masks; the
   cross-entropy against labels smoothed by ``--label-smoothing``); the epoch that does best on the validation side
   starts the next phase;
5. membrane widths calibrated on the training maps, then ``--qat-epochs`` quantization-aware epochs at ``--qat-lr``;
   the one that does best on the validation side is kept (the last one with ``--val-speaker none``), or with
   ``--swa N`` the mean of the weights after each of the last ``N`` (stochastic weight averaging); the test split
   is measured every epoch for the record but never chooses;
6. widths recalibrated, block-RAM budget check, atomic export (:func:`golden.manifest.save`);
7. the exact agreement check (:mod:`train.agree`) of the network's integer mode against the golden model on the
   whole test split; the figures go to ``RUN/metrics.json``.

A checkpoint (``RUN/checkpoint.pt``) is written atomically after every epoch; ``--resume`` continues from it with
the same results as an uninterrupted run. ``--neuron relu`` trains the non-spiking CNN of the same layout (float
only, the control row). Everything is seeded (``--seed``).

The network is the default ``conv2d -> pool -> dense...`` (``--channels``, ``--kernel``, ``--pool``, ``--hidden``), or
any layer stack of :mod:`train.arch` given by ``--layers "c8k3,p2x2,c16k3,p2x4,d128,d64"`` or by a preset,
``--arch scnn-a`` / ``--arch scnn-b``. ``--spram`` counts the iCE40UP5K's SPRAMs toward the weight budget.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .augment import time_shift
from .model import SCNN
from .options import augment_config, build_parser, ckpt_args, feature_params, network_config, same_options
from .teacher import check_arguments as check_teacher_arguments
from .teacher import distill_loss, teacher_config, train_cnn
from .util import atomic_torch_save, atomic_write_json, seed_everything

__all__ = ["build_parser", "network_config", "train", "evaluate_net", "time_shift", "main"]


def evaluate_net(net, x, y, batch: int = 500) -> tuple:
    """``(accuracy, predictions)`` of ``net`` in its current mode."""
    preds = []
    net.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = net(x[i:i + batch])
            preds.append(torch.as_tensor(np.argmax(out.detach().numpy(), axis=1)))
    p = torch.cat(preds)
    return float((p == y).float().mean()), p.numpy()


def _epoch(net, opt, sched, bank, y, args, gen, desc, show, aug=None, teacher=None):
    """One epoch over the training maps; ``bank`` ``(V, N, C, H, W)`` holds ``V`` versions of each map (the clean
    one first), one of which is drawn per map, then time-shifted, masked and mixed (``aug``); with a ``teacher``
    (:mod:`train.teacher`) the loss mixes in its soft targets on the same maps."""
    from tqdm import tqdm
    from .augment import mask_maps, mix_maps
    net.train()
    n = bank.shape[1]
    perm = torch.randperm(n, generator=gen)
    version = torch.randint(0, bank.shape[0], (n,), generator=gen) if bank.shape[0] > 1 else None
    total, correct, count = 0.0, 0, 0
    smooth = args.label_smoothing
    rho = getattr(args, "sam", 0.0)
    bar = tqdm(range(0, n, args.batch), desc=desc, unit="batch", leave=False, disable=not show)
    for i in bar:
        idx = perm[i:i + args.batch]
        xb = bank[0, idx] if version is None else bank[version[idx], idx]
        xb = time_shift(xb, args.shift, gen)
        partner, lam = None, 1.0
        if aug is not None:
            xb, partner, lam = mix_maps(mask_maps(xb, aug, gen), aug, gen)
        if teacher is not None:
            with torch.no_grad():
                t_out = teacher(xb)

        def objective():
            """The network's outputs on the batch and their loss, against the (mixed) labels and the teacher."""
            out = net(xb)
            if teacher is None:
                def crit(target):
                    return F.cross_entropy(out, target, label_smoothing=smooth)
            else:
                def crit(target):
                    return distill_loss(out, target, t_out, args.distill, args.distill_temp, smooth)
            return out, crit(y[idx]) if partner is None else lam * crit(y[idx]) + (1.0 - lam) * crit(y[idx][partner])
        rng = torch.get_rng_state() if rho else None
        out, loss = objective()
        opt.zero_grad()
        loss.backward()
        if rho:
            def perturbed_loss():
                torch.set_rng_state(rng)  # the same dropout masks: the same loss, at the moved weights
                return objective()[1]
            _sharpness_aware(net, opt, rho, perturbed_loss)
        opt.step()
        if sched is not None:
            sched.step()
        total += float(loss.detach()) * len(idx)
        correct += int((out.argmax(1) == y[idx]).sum())
        count += len(idx)
        bar.set_postfix(loss=f"{total / count:.3f}")
    return total / count, correct / count


def _sharpness_aware(net, opt, rho, loss_fn):
    """Sharpness-aware minimization (Foret et al., 2021): replace the gradients already in the parameters by those at
    the point ``rho`` away along them, the worst nearby weights to first order, so that the step goes to a flat
    minimum; the weights themselves are put back before the optimizer's step."""
    params = [p for p in net.parameters() if p.grad is not None]
    if not params:
        return
    norm = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params))
    if not torch.isfinite(norm) or norm == 0:
        return
    kept = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p in params:
            p.add_(p.grad * (rho / norm))
    opt.zero_grad()
    loss_fn().backward()
    with torch.no_grad():
        for p, w in zip(params, kept):
            p.copy_(w)  # exactly the weights before the move ((w + e) - e need not be w in floating point)


def _state_copy(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _accumulate(averaged, net):
    """Fold the network's trained parameters into the running mean ``averaged`` (``count``, ``net``); the neurons'
    fixed buffers (thresholds, leaks) are copied from the network as they are, not averaged."""
    n = averaged["count"]
    trained = dict(net.named_parameters())
    if averaged["net"] is None:
        averaged["net"] = _state_copy(net)
    else:
        for k, v in averaged["net"].items():
            if k in trained:
                v.mul_(n / (n + 1)).add_(trained[k].detach(), alpha=1.0 / (n + 1))
    averaged["count"] = n + 1


def train(args, *, dataset=None, on_epoch=None) -> dict:
    """Run the recipe described in the module docstring; returns the metrics dict (also saved).

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`train.options.build_parser`.
    dataset : train.fsdd.Dataset, optional
        Maps already made (the design-space search's split, :mod:`train.search`); ``--data``, ``--split``,
        ``--cmn`` and ``--limit-train`` then only go into the records. Its test side is what every accuracy,
        the agreement check and ``bit_true_accuracy`` are measured on.
    on_epoch : callable, optional
        Called with each new history entry (a dict with ``phase``, ``epoch``, ``loss``, ``train_acc``,
        ``test_acc``) after the epoch's checkpoint is written; what it raises stops the training.
    """
    from tqdm import tqdm
    from .fsdd import load_dataset
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    name = args.name or out.name
    run_dir = Path(args.run_dir or Path("runs") / name)
    ckpt_path = run_dir / "checkpoint.pt"
    show = not args.quiet
    started = time.perf_counter()

    # refuse bad options and a structure that cannot fit before the data are read (before the seed: the
    # network built here for the budget draws its own random weights)
    aug = augment_config(args)
    swa = getattr(args, "swa", 0)
    if not 0 <= swa <= args.qat_epochs:
        raise ValueError(f"--swa must be in 0 ... --qat-epochs ({args.qat_epochs}), not {swa}")
    if swa and args.neuron != "lif":
        raise ValueError(f"--swa averages quantization-aware epochs; --neuron {args.neuron} has none")
    if not (math.isfinite(getattr(args, "sam", 0.0)) and args.sam >= 0.0):
        raise ValueError(f"--sam must be a finite RHO >= 0 (0: off), not {args.sam}")
    if not 0.0 <= args.label_smoothing < 1.0:
        raise ValueError(f"--label-smoothing must be in 0 ... 1 (excluded; 0: off), not {args.label_smoothing}")
    check_teacher_arguments(args)
    params = None if dataset is not None else feature_params(args)
    cfg = network_config(args, tuple(dataset.x_train.shape[1:]) if dataset is not None else params.map_shape)
    # a bad --teacher-layers is refused here, not after the data are read
    tcfg = teacher_config(cfg, args) if args.distill else None
    if cfg.neuron == "lif" and not args.no_export:
        from .export import check_budget
        check_budget(SCNN(cfg).export(name=name), spram=args.spram)
    seed_everything(args.seed)
    from .fsdd import list_recordings, split, validation_speaker
    if dataset is not None:
        ds = dataset
    else:
        val_index = getattr(args, "val_index", None)
        val_speaker = None if val_index else validation_speaker(split(list_recordings(args.data), args.split)[0],
                                                                args.val_speaker, args.seed)
        ds = load_dataset(args.data, args.split, params, limit_train=args.limit_train,
                          progress=show, val_speaker=val_speaker, val_index=tuple(val_index) if val_index else None)
    from .augment import augmented_bank
    bank = augmented_bank(ds, aug, args.seed, show)
    y_tr = torch.as_tensor(ds.y_train)
    x_te, y_te = torch.as_tensor(ds.x_test, dtype=torch.float32), torch.as_tensor(ds.y_test)
    x_va, y_va = torch.as_tensor(ds.x_val, dtype=torch.float32), torch.as_tensor(ds.y_val)
    validate = len(x_va) > 0
    net = SCNN(cfg)
    gen = torch.Generator().manual_seed(args.seed)
    steps = (bank.shape[1] + args.batch - 1) // args.batch
    float_opt = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(float_opt, max_lr=args.lr, total_steps=max(1, args.epochs * steps))
    qat_opt = qat_sched = None

    def make_qat():
        opt = torch.optim.Adam(net.parameters(), lr=args.qat_lr, weight_decay=args.weight_decay)
        sch = None
        if args.qat_schedule == "cosine":
            sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, args.qat_epochs * steps))
        return opt, sch
    history, state = [], {"phase": "float", "epoch": 0, "elapsed": 0.0}
    best = {"acc": -1.0, "epoch": 0, "net": None}
    averaged = {"count": 0, "net": None}  # --swa: the running mean of the last epochs' weights
    ck = torch.load(ckpt_path, weights_only=False) if args.resume and ckpt_path.exists() else None
    if ck is not None:
        if not same_options(ck["args"], ckpt_args(args)):
            raise SystemExit(f"error: {ckpt_path} was written with other options; drop --resume or use them")
        net.load_state_dict(ck["net"])
        cfg.mem_bits = list(ck["mem_bits"])
        float_opt.load_state_dict(ck["float_opt"])
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["torch_rng"])
        history, state, best = ck["history"], ck["state"], ck["best"]
        averaged = ck.get("averaged") or averaged
        if ck.get("qat_opt") is not None:
            qat_opt, qat_sched = make_qat()
            qat_opt.load_state_dict(ck["qat_opt"])
            if qat_sched is not None:
                qat_sched.load_state_dict(ck["qat_sched"])
        print(f"resumed from {ckpt_path}: {state['phase']} epoch {state['epoch']}", file=sys.stderr)
    elif args.init_from_cnn and cfg.neuron == "lif":
        from .convert import init_from_cnn
        cnn = train_cnn(cfg, bank, y_tr, args, gen, show, args.cnn_epochs)
        state["cnn_accuracy"], _ = evaluate_net(cnn, x_te, y_te)
        if validate:
            state["cnn_val_accuracy"], _ = evaluate_net(cnn, x_va, y_va)
        init_from_cnn(net, cnn, bank[0])
        state["init_accuracy"], _ = evaluate_net(net, x_te, y_te)
    teacher = None
    if args.distill:
        if ck is not None:
            teacher = SCNN(tcfg)
            teacher.load_state_dict(ck["teacher"])
            teacher.mode = "float"
            teacher.eval()
        else:
            teacher = train_cnn(tcfg, bank, y_tr, args, gen, show, args.teacher_epochs, "teacher")
            state["teacher_accuracy"], _ = evaluate_net(teacher, x_te, y_te)
            if validate:
                state["teacher_val_accuracy"], _ = evaluate_net(teacher, x_va, y_va)

    def save_ckpt():
        atomic_torch_save(ckpt_path, {
            "args": ckpt_args(args), "net": net.state_dict(), "mem_bits": list(cfg.mem_bits),
            "float_opt": float_opt.state_dict(), "sched": sched.state_dict(),
            "qat_opt": qat_opt.state_dict() if qat_opt is not None else None,
            "qat_sched": qat_sched.state_dict() if qat_sched is not None else None, "gen": gen.get_state(),
            "torch_rng": torch.get_rng_state(), "history": history, "state": state, "best": best,
            "averaged": averaged,
            "teacher": teacher.state_dict() if teacher is not None else None})

    def record(phase, loss, acc):
        """Measure the epoch on the validation and test sides; keep the network if validation improved."""
        val_acc = evaluate_net(net, x_va, y_va)[0] if validate else None
        test_acc, _ = evaluate_net(net, x_te, y_te)
        state["epoch"] += 1
        history.append({"phase": phase, "epoch": len(history) + 1, "loss": loss, "train_acc": acc,
                        "val_acc": val_acc, "test_acc": test_acc})
        if validate and val_acc >= best["acc"] and not (phase == "qat" and swa):
            best.update(acc=val_acc, epoch=len(history), net=_state_copy(net))
        if phase == "qat" and state["epoch"] > qat_epochs - swa:
            _accumulate(averaged, net)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", **({"val": f"{val_acc:.3f}"} if validate else {}))
        state["elapsed"] = time.perf_counter() - t0
        save_ckpt()
        if on_epoch is not None:
            on_epoch(history[-1])

    def restore_best(phase):
        """Go back to the epoch of this phase that did best on the validation side (the last one without)."""
        if validate and best["net"] is not None:
            net.load_state_dict(best["net"])
            state[f"{phase}_epoch_chosen"], state[f"{phase}_val_accuracy"] = best["epoch"], best["acc"]
        best.update(acc=-1.0, epoch=0, net=None)

    spiking = cfg.neuron == "lif"
    qat_epochs = args.qat_epochs if spiking else 0
    total_epochs = args.epochs + qat_epochs
    bar = tqdm(total=total_epochs, initial=len(history), desc="epochs", unit="epoch", disable=not show)
    t0 = time.perf_counter() - state["elapsed"]
    while state["phase"] == "float" and state["epoch"] < args.epochs:
        net.mode = "float"
        loss, acc = _epoch(net, float_opt, sched, bank, y_tr, args, gen, "float", show, aug, teacher)
        record("float", loss, acc)
    if state["phase"] == "float":
        net.mode = "float"
        restore_best("float")
        state["float_acc"], _ = evaluate_net(net, x_te, y_te)
        state["phase"], state["epoch"] = "qat", 0
        if spiking:
            from .export import calibrate_mem_bits
            cfg.mem_bits, _ = calibrate_mem_bits(net, ds.x_train, margin=args.mem_margin)
            qat_opt, qat_sched = make_qat()
        save_ckpt()
    while state["phase"] == "qat" and state["epoch"] < qat_epochs:
        net.mode = "qat"
        loss, acc = _epoch(net, qat_opt, qat_sched, bank, y_tr, args, gen, "qat", show, aug, teacher)
        net.mode = "int"
        record("qat", loss, acc)
    if state["phase"] == "qat" and spiking:
        if swa:
            net.load_state_dict(averaged["net"])
            state["swa_epochs"] = averaged["count"]
            if validate:
                net.mode = "int"
                state["swa_val_accuracy"], _ = evaluate_net(net, x_va, y_va)
            best.update(acc=-1.0, epoch=0, net=None)
        else:
            restore_best("qat")
        state["phase"] = "done"
        save_ckpt()
    bar.close()
    train_time = state["elapsed"]

    metrics = {"name": name, "run_dir": str(run_dir), "split": args.split, "seed": args.seed, "config": cfg.to_dict(),
               "features": ds.params.to_dict(), "augment": dataclasses.asdict(aug),
               "label_smoothing": args.label_smoothing,
               "train_samples": len(y_tr), "val_speakers": ds.val_speakers,
               **({"val_index": list(args.val_index)} if getattr(args, "val_index", None) else {}), "val_samples": len(y_va),
               "test_samples": len(x_te), "float_accuracy": state["float_acc"],
               "train_seconds": round(train_time, 2), "history": history,
               **{k: state[k] for k in ("float_epoch_chosen", "float_val_accuracy", "qat_epoch_chosen",
                                        "qat_val_accuracy", "cnn_accuracy", "cnn_val_accuracy", "init_accuracy",
                                        "teacher_accuracy", "teacher_val_accuracy", "swa_epochs",
                                        "swa_val_accuracy")
                  if k in state}}
    if spiking:
        from .export import calibrate_mem_bits, check_budget
        cfg.mem_bits, peaks = calibrate_mem_bits(net, ds.x_train, margin=args.mem_margin)
        metrics["membrane_peak_train"] = peaks
        net.mode = "int"
        metrics["int_accuracy_torch"], _ = evaluate_net(net, x_te, y_te)
        description = (f"spiking CNN trained on FSDD ({args.split} split) by `python -m train`, seed {args.seed}; "
                       f"float {state['float_acc']:.4f}, integer {metrics['int_accuracy_torch']:.4f} on "
                       f"{len(x_te)} test samples")
        model = net.export(name=name, features=ds.params.to_dict(), description=description)
        metrics["budget"] = check_budget(model, spram=args.spram)
        metrics["weights"] = model.weight_count
        metrics["mem_bits"] = {l.name: l.neuron.mem_bits for l in model.layers if hasattr(l, "neuron")}
        if not args.no_export:
            import golden.manifest as gm
            from .export import export_model
            from .fsdd import training_record
            model, _ = export_model(net, out, name=name, features=ds.params.to_dict(), description=description,
                                    training=training_record(args.split, args.limit_train), spram=args.spram)
            metrics["model_dir"] = str(out)
            metrics["model_hash"] = gm.model_hash(model)
        from .agree import check_agreement
        layers, _ = net.int_layers(ste=False)
        res = check_agreement(model, ds.x_test, layers, names=ds.test_names, progress=show)
        metrics["bit_true_accuracy"] = float(np.mean(res.classes == ds.y_test))
        metrics["agreement"] = {"samples": res.samples, "values_compared": res.values_compared,
                                "spikes": res.spikes, "identical": True}
        metrics["predictions"] = res.classes.tolist()
    metrics["labels"] = ds.y_test.tolist()
    metrics["wall_seconds"] = round(time.perf_counter() - started, 2)
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .export import BudgetError
    from .features import FeatureError
    from .fsdd import FsddError
    from .agree import AgreementError
    try:
        m = train(args)
    except (BudgetError, FeatureError, FsddError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except AgreementError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    summary = {k: m[k] for k in ("name", "split", "seed", "float_accuracy", "int_accuracy_torch", "bit_true_accuracy",
                                 "weights", "train_seconds", "wall_seconds", "test_samples", "model_dir", "run_dir") if k in m}
    if args.json:
        print(json.dumps(summary))
    else:
        print(_summary_text(summary, m))
    return 0


def _summary_text(summary, metrics):
    """The closing lines of ``python -m train``: where the model went and its figures."""
    lines = []
    if "model_dir" in summary:
        lines.append(f"model {summary['name']} written to {summary['model_dir']} "
                     f"({summary.get('weights', 0):,} INT8 weights)")
    else:
        lines.append(f"model {summary['name']}: not exported (--no-export)")
    n = summary.get("test_samples")
    figures = [f"float {summary['float_accuracy']:.2%}"]
    if "bit_true_accuracy" in summary:
        agreement = metrics["agreement"]
        figures.append(f"bit-true {summary['bit_true_accuracy']:.2%} (golden model = torch integer mode on all "
                       f"{agreement['samples']} samples, {agreement['spikes']:,} spikes)")
    lines.append(f"test accuracy on {n} recordings ({summary['split']} split): " + ", ".join(figures))
    lines.append(f"training {summary['train_seconds']:.0f} s, {summary['wall_seconds']:.0f} s in all; "
                 f"checkpoints and metrics.json in {summary['run_dir']}")
    return "\n".join(lines)
