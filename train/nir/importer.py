"""The import pipeline: NIR file -> float network -> spikesmith model (quantized, optionally fine-tuned) -> report.

:func:`import_graph` reads the file (:func:`read_file`), maps it (:func:`train.nir.graph.read_graph`), takes the
integers a spikesmith export carries or quantizes after training (:mod:`train.nir.quantize`, calibrated on the FSDD
training side), optionally fine-tunes with the project's quantization-aware training (``finetune`` epochs of
:class:`train.model.SCNN` in its ``qat`` mode), checks the torch integer mode against the golden model on the whole
test split, measures the float graph in snnTorch (:mod:`train.nir.floatrun`) beside the bit-true golden model, and
saves the model directory atomically (:func:`golden.manifest.save`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from .graph import DEFAULT_DT, NirError, read_graph
from .quantize import exact_model, quantize

__all__ = ["read_file", "import_graph", "spike_agreement", "finetune"]


def read_file(path):
    """The ``nir.NIRGraph`` in file ``path``; a file that is missing or not NIR is refused by name."""
    import nir
    path = Path(path)
    if not path.is_file():
        raise NirError(f"{path}: no such NIR file")
    try:
        return nir.read(path, type_check=False)
    except Exception as e:  # h5py, KeyError and friends: the file is not a NIR graph this nir can read
        raise NirError(f"{path}: not a NIR graph that nir {_version('nir')} can read ({type(e).__name__}: {e})") \
            from None


def _version(package):
    from importlib.metadata import version
    try:
        return version(package)
    except Exception:  # noqa: BLE001 - only for a message
        return "?"


def spike_agreement(golden_spikes, other_trains, names) -> dict:
    """Per layer, the fraction of ``(sample, step, neuron)`` spike values that two runs share."""
    return {name: float(np.mean(np.asarray(golden_spikes[name]) == np.asarray(other)))
            for name, other in zip(names, other_trains)}


def finetune(model, x, y, *, epochs: int, lr: float = 1e-4, batch: int = 64, shift: int = 4, seed: int = 0,
             progress: bool = True):
    """Quantization-aware fine-tuning of ``model`` with the trainer's recipe; returns the new model.

    The model becomes an :class:`train.model.SCNN` (:meth:`SCNN.from_model`), which re-quantizes to the same
    integers; ``epochs`` quantization-aware epochs at ``lr`` (cosine schedule, random time shift) follow, then the
    membrane widths are recalibrated on ``x`` and the network exported again.

    Raises
    ------
    NirError
        When the model is not one SCNN can train (mixed leak shifts or reset modes, a non-square kernel).
    """
    from argparse import Namespace
    from ..export import calibrate_mem_bits
    from ..model import SCNN
    from ..trainer import _epoch
    from ..util import seed_everything
    try:
        net = SCNN.from_model(model)
    except ValueError as e:
        raise NirError(f"--finetune: {e}") from None
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(np.asarray(x), dtype=torch.float32), torch.as_tensor(np.asarray(y))
    steps = (len(xt) + batch - 1) // batch
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps))
    net.mode = "qat"
    args = Namespace(batch=batch, shift=shift, label_smoothing=0.0)
    for _ in range(epochs):
        _epoch(net, opt, sched, xt.unsqueeze(0), yt, args, gen, "qat", progress)  # one version of each map
    net.config.mem_bits, _ = calibrate_mem_bits(net, np.asarray(x))
    out = net.export(name=model.name, classes=model.classes, features=model.features,
                     description=model.description + f"; fine-tuned {epochs} quantization-aware epochs")
    return dataclasses.replace(out, training=model.training)


def import_graph(path, data_dir, out=None, *, name=None, dt: float = DEFAULT_DT, time_steps=None,
                 finetune_epochs: int = 0, finetune_lr: float = 1e-4, requantize: bool = False, limit_train=None, progress: bool = True,
                 seed: int = 0) -> dict:
    """Import the NIR graph in ``path`` as a spikesmith model, measured on FSDD in ``data_dir``; save it to
    ``out`` (when given). Returns the report (see ``python -m train.nir import --help``).

    Raises
    ------
    NirError
        When the file or a node cannot be mapped (nothing is written then).
    """
    import golden.manifest as gm
    from golden.network import run
    from ..agree import check_agreement
    from ..features import FeatureParams
    from ..fsdd import load_dataset, training_record
    from .floatrun import FloatRunner, float_accuracy
    graph = read_file(path)
    net = read_graph(graph, dt=dt)
    given, name = name, name or (Path(out).name if out is not None else Path(path).stem)
    meta_features = net.metadata.get("spikesmith.features")
    exact = None
    params, fit = FeatureParams(), True
    if not requantize and meta_features is not None:
        import json
        saved = json.loads(str(meta_features))
        if saved is not None:
            params, fit = FeatureParams.from_dict(saved), False
    ds = load_dataset(data_dir, "official", params, fit=fit, limit_train=limit_train, progress=progress)
    shape = tuple(ds.x_test.shape[1:])
    if not requantize:
        exact = exact_model(net, input_shape=shape, name=name)
    steps = int(time_steps if time_steps is not None else (exact.time_steps if exact is not None else 4))
    scale = float(ds.params.input_scale)
    if exact is not None:
        model, rows = (exact if time_steps is None else dataclasses.replace(exact, time_steps=steps)), None
        if given is not None:
            model = dataclasses.replace(model, name=given)
    else:
        model, rows = quantize(net, input_shape=shape, input_scale=scale, time_steps=steps, x_calib=ds.x_train,
                               name=name, features=ds.params.to_dict())
    model = dataclasses.replace(model, training=training_record("official", limit_train))
    runner = FloatRunner(net, time_steps=model.time_steps, input_scale=scale)
    report = {"graph": str(path), "name": model.name, "dt": dt, "time_steps": model.time_steps,
              "exact": exact is not None, "layers": rows, "test_samples": int(len(ds.x_test)),
              "calibration_samples": int(len(ds.x_train)), "input_scale": scale}
    report["float_accuracy"], float_preds = float_accuracy(runner, ds.x_test, ds.y_test)
    agree_ptq = check_agreement(model, ds.x_test, progress=progress)
    report["ptq_bit_true_accuracy"] = float(np.mean(agree_ptq.classes == ds.y_test))
    if finetune_epochs:
        model = finetune(model, ds.x_train, ds.y_train, epochs=finetune_epochs, lr=finetune_lr, seed=seed,
                         progress=progress)
        model = dataclasses.replace(model, training=training_record("official", limit_train))
    agreement = check_agreement(model, ds.x_test, progress=progress) if finetune_epochs else agree_ptq
    report["finetune_epochs"] = int(finetune_epochs)
    report["bit_true_accuracy"] = float(np.mean(agreement.classes == ds.y_test))
    report["agreement"] = {"samples": agreement.samples, "values_compared": agreement.values_compared,
                           "spikes": agreement.spikes, "identical": True}
    report["float_bit_true_class_agreement"] = float(np.mean(float_preds == agreement.classes))
    # Spike by spike, the float graph against the bit-true model, on the first 100 test maps.
    xs = np.asarray(ds.x_test[:100])
    g = run(model, xs)
    with torch.no_grad():
        _, trains = runner(torch.as_tensor(xs), record=True)
    names = [l.name for l in model.layers if l.name in g.spikes]
    report["float_spike_agreement"] = spike_agreement(g.spikes, [t.numpy() for t in trains], names)
    from ..export import BudgetError, check_budget
    try:
        check_budget(model)
        report["fits"] = "iCE40UP5K block RAM"
    except BudgetError as e:
        report["fits"] = f"no: {e}"
    report["weights"] = int(model.weight_count)
    report["mem_bits"] = {l.name: l.neuron.mem_bits for l in model.layers if hasattr(l, "neuron")}
    if out is not None:
        gm.save(model, out)
        report["model_dir"] = str(out)
        report["model_hash"] = gm.model_hash(gm.load(out))
    report["model"] = model
    return report
