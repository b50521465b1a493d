"""NIR in and out: spiking networks from snnTorch, Norse, Sinabs and other frameworks as spikesmith models, and
spikesmith models as NIR graphs (docs/nir.md).

``python -m train.nir import GRAPH.nir --data DIR --out DIR [--finetune EPOCHS]`` and
``python -m train.nir export --model DIR --out GRAPH.nir``. The pieces: :mod:`train.nir.graph` reads a graph into a
float chain or refuses it by node, :mod:`train.nir.quantize` turns that into integers, :mod:`train.nir.floatrun`
runs the float chain with snnTorch's neurons, :mod:`train.nir.importer` is the pipeline and its report,
:mod:`train.nir.write` is the export.
"""

from .graph import DEFAULT_DT, FloatLayer, FloatNet, NirError, read_graph
from .quantize import exact_model, nearest_leak_shift, quantize
from .write import to_graph, write_graph

__all__ = ["DEFAULT_DT", "FloatLayer", "FloatNet", "NirError", "read_graph", "exact_model", "nearest_leak_shift",
           "quantize", "to_graph", "write_graph"]
