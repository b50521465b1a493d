"""Design-space search on Ray Tune: accuracy against latency and logic cells on a board (issue 18).

``python -m train.search --data DIR --board icebreaker --trials N --out RUN_DIR [--space SPACE.toml] [--resume]
[--address HOST:PORT] [--synthesize K] [--json]`` trains ``N`` networks drawn from a search space
(:mod:`train.search.space`: neuron parameters, layer stack, recipe) by Optuna's multi-objective sampler through Ray
Tune (:mod:`train.search.cli`), each with the project's quantization-aware trainer on the official training side with
one speaker held out, and measures each bit-true on that speaker and on the board's plan and cycle model
(:mod:`train.search.trial`). The run directory gets every trial as a JSON line and the Pareto fronts as a table,
PNG plots and exported models (:mod:`train.search.pareto`). See docs/search.md.
"""
