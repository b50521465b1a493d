"""``python -m hw.build --board icebreaker``: build a bitstream of a model for a board.

The entry point the README names; the build itself is the package :mod:`flow` (an ordered list of steps, each
writing its files and a record into the build directory: :mod:`flow.steps`), which joins the generator (``hw``) and
the boards (``boards``). ``python -m hw.build --help`` lists the options.

The names this module had before the flow moved (``build``, ``build_auto``, ``default_model_dir``, ``BuildError``
...) are looked up in :mod:`flow.build` on first use, so that importing ``hw.build`` loads nothing of ``boards``.
"""

import sys

__all__ = ["main"]

_MOVED = ("build", "build_auto", "program", "BuildError", "OverBudgetError", "TimingError", "BuildResult",
          "default_model_dir", "DEFAULT_CLOCK_MHZ")


def main(argv=None):
    """Run the build's command line (:func:`flow.cli.main`); return the exit status."""
    from flow.cli import main as flow_main

    return flow_main(argv)


def __getattr__(name):
    if name in _MOVED:
        import flow.build

        return getattr(flow.build, name)
    raise AttributeError(f"module 'hw.build' has no attribute {name!r}")


if __name__ == "__main__":
    from golden.cli import run_main
    sys.exit(run_main(main))
