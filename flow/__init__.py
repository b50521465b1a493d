"""The board build as an ordered list of steps, joining the generator (``hw``) and the boards (``boards``).

- :mod:`flow.steps`: the steps (load, plan, fit, golden, timing, generate, verify, synthesis, place and route, pack,
  report), each writing its artifact and a JSON record into the build directory;
- :mod:`flow.build`: :func:`~flow.build.build` and :func:`~flow.build.build_auto` run them in a fresh directory;
- :mod:`flow.cli`: ``python -m hw.build``; :mod:`flow.area`: ``python -m hw.area``;
- :mod:`flow.tools`: the tools and their progress; :mod:`flow.progress`: progress lines with elapsed time;
- :mod:`flow.timing`: latency from the golden model and the cycle model;
- :mod:`flow.design`: the one adapter to the generator's API (plan, network, cycle model, fit check).

``hw`` imports nothing from ``boards``; ``boards`` may import ``hw``; ``flow`` imports both.
"""
