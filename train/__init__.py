"""spikesmith's trainer: FSDD data, MFCC front-end, snnTorch spiking CNN with an exact integer mode, export.

Modules (one concept each):

* :mod:`train.fsdd` — the dataset: listing, official and leave-one-speaker-out splits, download;
* :mod:`train.features` — the MFCC front-end that makes the INT8 input map;
* :mod:`train.model` — the network (float, quantization-aware and integer modes) and the integer engine;
* :mod:`train.export` — block-RAM budget check, membrane widths, atomic export;
* :mod:`train.trainer` — the training recipe (``python -m train``);
* :mod:`train.agree` — exact agreement with the golden model;
* :mod:`train.evaluate` — bit-true accuracy of a saved model;
* :mod:`train.report` — plots and a JSON of figures;
* :mod:`train.loso` — leave-one-speaker-out study;
* :mod:`train.bench` — benchmark figures.
"""
