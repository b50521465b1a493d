"""Train a spiking CNN on FSDD in plain snnTorch (not spikesmith's trainer) and write it as a NIR graph.

This is the peer side of ``python -m train.nir import``: a network as an snnTorch user writes it, trained with
snnTorch's ``Leaky`` neurons and surrogate gradient, in float, with no knowledge of spikesmith's integers::

    OMP_NUM_THREADS=1 nice -n 10 python examples/snntorch_fsdd.py --data DIR --out runs/snntorch_fsdd.nir
    python -m train.nir import runs/snntorch_fsdd.nir --data DIR --out models/fsdd_nir --finetune 5

The network: Conv2d(1->4, 3x3, padding 1) + Leaky -> MaxPool2d(2, 4) -> Linear(384->28) + Leaky -> Linear(28->10)
summed over T = 4 steps, ``beta = 0.875``, reset to zero (NIR's LIF resets to ``v_reset``; snnTorch's default
reset by subtraction has no NIR form). The input is the project's FSDD feature map as floats (``x_int / 32``).

The graph is written with snnTorch's own module converter (``snntorch.export_nir._extract_snntorch_module``) for
Conv2d, Leaky, Flatten and Linear, and nir's API for what snnTorch 1.0.0 cannot export: the max-pool of spikes (a
``SumPool2d`` followed by a ``Threshold`` of 0.5, which is the same OR) and the integrating readout (``I``).
``snntorch.export_nir.export_to_nir`` itself fails on this network with nir 1.0.8 (docs/nir.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BETA, STEPS, SCALE = 0.875, 4, 32.0


class Net(nn.Module):
    """The plain snnTorch SCNN (see the module docstring)."""

    def __init__(self, channels=4, hidden=28, classes=10, pool=(2, 4), map_shape=(1, 16, 48)):
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate
        grad = surrogate.fast_sigmoid(slope=25)
        self.pool = pool
        self.conv = nn.Conv2d(map_shape[0], channels, 3, padding=1)
        self.lif1 = snn.Leaky(beta=BETA, spike_grad=grad, reset_mechanism="zero")
        n = channels * (map_shape[1] // pool[0]) * (map_shape[2] // pool[1])
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(n, hidden)
        self.lif2 = snn.Leaky(beta=BETA, spike_grad=grad, reset_mechanism="zero")
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        cur = self.conv(x)
        mem1 = torch.zeros_like(cur)
        mem2, total = None, 0
        for _ in range(STEPS):
            s1, mem1 = self.lif1(cur, mem1)
            c2 = self.fc1(self.flatten(F.max_pool2d(s1, self.pool)))
            s2, mem2 = self.lif2(c2, torch.zeros_like(c2) if mem2 is None else mem2)
            total = total + self.out(s2)
        return total


def to_nir(net, map_shape=(1, 16, 48)):
    """The ``nir.NIRGraph`` of ``net``: snnTorch's converter per module, nir's API for the pool and readout."""
    import nir
    from snntorch.export_nir import _extract_snntorch_module as convert
    c, h, w = map_shape
    ph, pw = net.pool
    pooled = (net.conv.out_channels, h // ph, w // pw)
    nodes = {"input": nir.Input(input_type={"input": np.array(map_shape)}),
             "conv": convert(net.conv), "lif1": convert(net.lif1),
             "pool": nir.SumPool2d(kernel_size=np.array(net.pool), stride=np.array(net.pool), padding=np.zeros(2)),
             "pool_or": nir.Threshold(threshold=np.full(pooled, 0.5)),
             "flatten": convert(net.flatten), "fc1": convert(net.fc1), "lif2": convert(net.lif2),
             "out": convert(net.out), "readout": nir.I(r=np.ones(net.out.out_features)),
             "output": nir.Output(output_type={"output": np.array([net.out.out_features])})}
    # snnTorch leaves the input shapes of the convolution and the flatten unset and the convolution's tensors in
    # torch; nir.write needs them as arrays.
    nodes["flatten"].input_type = {"input": np.array(pooled)}
    conv = nodes["conv"]
    conv.input_shape = np.array([h, w])
    conv.weight, conv.bias = np.asarray(conv.weight), np.asarray(conv.bias)
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])), type_check=False)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="directory of FSDD WAV files")
    p.add_argument("--out", required=True, help="the .nir file to write")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit-train", type=int)
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import nir
    from train.fsdd import load_dataset
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    ds = load_dataset(args.data, "official", limit_train=args.limit_train, progress=False)
    x_tr = torch.tensor(ds.x_train, dtype=torch.float32) / SCALE
    y_tr = torch.tensor(ds.y_train)
    x_te = torch.tensor(ds.x_test, dtype=torch.float32) / SCALE
    net = Net(map_shape=tuple(ds.x_train.shape[1:]))
    batch = 64
    steps = (len(x_tr) + batch - 1) // batch
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.epochs * steps)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(x_tr), batch):
            idx = perm[i:i + batch]
            shift = int(torch.randint(-4, 5, (1,), generator=gen))
            loss = F.cross_entropy(net(torch.roll(x_tr[idx], shift, dims=3)), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        acc = float((net(x_te).argmax(1).numpy() == ds.y_test).mean())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # snnTorch's LIF parameters are 0-d arrays, which h5py cannot compress: write uncompressed.
    nir.write(out, to_nir(net, tuple(ds.x_train.shape[1:])), compression=None)
    figures = {"float_accuracy_snntorch": acc, "epochs": args.epochs, "seed": args.seed,
               "train_seconds": round(time.perf_counter() - t0, 1), "nir": str(out)}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
