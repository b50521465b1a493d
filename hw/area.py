"""``python -m hw.area --board icebreaker``: LUT4s, flip-flops, carries, block RAMs and DSPs per core.

The entry point the README names; the work is :mod:`flow.area` (it builds the board top, which joins the generator
and the boards). ``python -m hw.area --help`` lists the options.
"""

import sys

__all__ = ["main"]


def main(argv=None):
    """Run :func:`flow.area.main`; return the exit status."""
    from flow.area import main as area_main

    return area_main(argv)


if __name__ == "__main__":
    from golden.cli import run_main
    sys.exit(run_main(main))
