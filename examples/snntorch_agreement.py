"""Spike agreement of snnTorch's ``import_from_nir`` against the golden model (docs/nir.md).

The model is ``models/fsdd_nir`` (zero reset) with its pool taken out, since snnTorch 1.0.0 imports no ``Threshold``
node: conv1 -> a dense layer of random INT8 weights over the 3,072 conv outputs -> the readout, exported by
spikesmith, loaded by snnTorch (the readout's ``I`` node removed: snnTorch has none; its current is summed over the
steps here) and run one sample at a time on the first 100 FSDD test maps of ``models/fsdd_scnn``::

    python examples/snntorch_agreement.py
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import dataclasses, numpy as np, torch, snntorch as snn
from snntorch import utils
from snntorch.import_nir import import_from_nir
import golden.manifest as gm
from golden.network import run
from train.nir import to_graph
from train.nir.importer import spike_agreement
m = gm.load("models/fsdd_nir")
# the FSDD model with the pool taken out: conv1 -> fc1 (random INT8 weights over the 3,072 conv outputs) -> out
rng = np.random.default_rng(0)
conv, fc, out = m.layers[0], m.layers[2], m.layers[3]
w = rng.integers(-20, 21, (28, 3072)).astype(np.int8)
fc = dataclasses.replace(fc, in_features=3072, weights=w, acc_bits=64)
fc = dataclasses.replace(fc, acc_bits=gm.required_acc_bits(fc, on_map=False),
                         neuron=dataclasses.replace(fc.neuron, threshold=200, mem_bits=20))
m = gm.validate(dataclasses.replace(m, layers=[conv, fc, out]))
g, notes = to_graph(m)
del g.nodes["out_i"]
g.edges = [(a, "output") if b == "out_i" else (a, b) for a, b in g.edges if a != "out_i"]
net = import_from_nir(g)
spikes = {}
for name, mod in net.named_modules():
    if isinstance(mod, snn.Leaky):
        mod.register_forward_hook(lambda mo, i, o, name=name: spikes.setdefault(name, []).append((o if torch.is_tensor(o) else o[0]) > 0))
x = gm.load("models/fsdd_scnn").test_vectors.x
x = x[:100]
tot = []
with torch.no_grad():
    for s in x:
        utils.reset(net)
        xs = torch.tensor(s[None], dtype=torch.float32) / 32.0
        tot.append(sum(net(xs)[0].reshape(-1) for _ in range(m.time_steps)))
res = run(m, x)
trains = [torch.stack(v).reshape(len(x), m.time_steps, -1).numpy() for v in spikes.values()]
print(spike_agreement(res.spikes, trains, ["conv1", "fc1"]), "class agreement", np.mean(torch.stack(tot).argmax(1).numpy() == res.classes))
for name, t in zip(["conv1", "fc1"], trains):
    print(name, "golden spikes", int(res.spikes[name].sum()), "snntorch spikes", int(t.sum()), "differ", int((res.spikes[name] != t).sum()))
