"""The non-spiking CNN trained before the spiking network: its starting weights or its teacher.

Two options of ``python -m train`` train a ReLU CNN first, on the same augmented training maps, time shifts and masks
as the spiking network:

* ``--init-from-cnn``: the CNN of the spiking network's own layout, for ``--cnn-epochs``, whose weights start the
  spiking network (:mod:`train.convert`);
* ``--distill ALPHA``: knowledge distillation (Hinton, Vinyals & Dean, 2015). A CNN of ``--teacher-layers`` (any
  stack of :mod:`train.arch`, by default the student's own layout; a teacher is never exported, so it may be as large
  as the CPU allows) is trained for ``--teacher-epochs``, then frozen; every batch of the spiking network's float and
  quantization-aware epochs is also shown to the teacher, and the loss becomes

  ``(1 - ALPHA) * CE(student, labels) + ALPHA * tau^2 * KL(softmax(teacher / tau) || softmax(student / tau))``

  with ``tau`` = ``--distill-temp`` (with ``--label-smoothing``, ``CE`` against the smoothed labels, for the teacher's
  own training as well). The teacher's soft targets say which digits a recording resembles (a noisy "five" that
  also looks like a "nine"), which a one-hot label does not. The student's logits are its readout's
  membrane sums over the time steps, as in training without a teacher; the exported arithmetic is unchanged.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

__all__ = ["add_arguments", "check_arguments", "teacher_config", "train_cnn", "distill_loss"]


def add_arguments(parser):
    """The distillation options of ``python -m train``."""
    d = parser.add_argument_group(
        "distillation", "A non-spiking CNN trained first teaches the spiking network with its soft targets "
        "(train/teacher.py); the exported arithmetic is unchanged.")
    d.add_argument("--distill", type=float, default=0.0, metavar="ALPHA",
                   help="weight of the teacher's soft targets in the loss, 0 ... 1; 0: no teacher (default: "
                        "%(default)s)")
    d.add_argument("--distill-temp", type=float, default=4.0, metavar="TAU",
                   help="softmax temperature of the soft targets (default: %(default)s)")
    d.add_argument("--teacher-layers", metavar="STACK",
                   help="the teacher's layers before its readout, in --layers' notation (default: the spiking "
                        "network's own layout)")
    d.add_argument("--teacher-epochs", type=int, default=60,
                   help="epochs of the teacher (default: %(default)s)")


def check_arguments(args):
    """Refuse distillation options out of range (before any data are read)."""
    if not 0.0 <= args.distill <= 1.0:
        raise ValueError(f"--distill {args.distill} must lie in 0 ... 1")
    if not args.distill_temp > 0:
        raise ValueError(f"--distill-temp {args.distill_temp} must be positive")
    if args.teacher_epochs < 1:
        raise ValueError(f"--teacher-epochs {args.teacher_epochs} must be at least 1")
    if args.distill and args.neuron != "lif":
        raise ValueError("--distill teaches the spiking network; with --neuron relu there is none")


def teacher_config(cfg, args):
    """The teacher's :class:`train.model.SCNNConfig`: ReLU, no membranes, ``--teacher-layers`` or ``cfg``'s own
    layout."""
    kw = {"neuron": "relu", "mem_bits": []}
    if args.teacher_layers:
        kw["layers"] = args.teacher_layers
    return dataclasses.replace(cfg, **kw)


def train_cnn(cfg, bank, y, args, gen, show, epochs: int, desc: str = "cnn"):
    """A ReLU CNN of ``cfg``'s layout trained for ``epochs`` on the augmented maps ``bank`` (Adam, one-cycle, the
    spiking network's learning rate, batch, shifts and masks); returned in evaluation mode."""
    from tqdm import tqdm
    from .model import SCNN
    from .options import augment_config
    from .trainer import _epoch
    cnn = SCNN(dataclasses.replace(cfg, neuron="relu", mem_bits=[]))
    steps = (bank.shape[1] + args.batch - 1) // args.batch
    opt = torch.optim.Adam(cnn.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=max(1, epochs * steps))
    aug = augment_config(args)
    for _ in tqdm(range(epochs), desc=desc, unit="epoch", disable=not show, leave=False):
        _epoch(cnn, opt, sched, bank, y, args, gen, desc, show, aug)
    cnn.mode = "float"
    cnn.eval()
    return cnn


def distill_loss(out, y, teacher_out, alpha: float, temp: float, smoothing: float = 0.0):
    """Cross-entropy with the labels (smoothed by ``smoothing``), mixed with the temperature-scaled KL divergence
    from the teacher's soft targets (scaled by ``temp ** 2`` so that its gradients keep their size as ``temp``
    changes)."""
    hard = F.cross_entropy(out, y, label_smoothing=smoothing)
    soft = F.kl_div(F.log_softmax(out / temp, dim=1), F.log_softmax(teacher_out / temp, dim=1),
                    reduction="batchmean", log_target=True)
    return (1.0 - alpha) * hard + alpha * temp * temp * soft
