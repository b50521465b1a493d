"""Board descriptions and top-levels, the PLL per FPGA family, the UART host protocol, the report parsers and the
host tool.

:data:`BOARDS` maps the names accepted by ``python -m hw.build --board`` to :class:`boards.board.Board`
descriptions.
"""

from .icebreaker import ICEBREAKER
from .tangnano9k import TANGNANO9K
from .ulx3s import ULX3S_25F, ULX3S_85F
from .upduino import UPDUINO_V3

__all__ = ["BOARDS", "get_board", "MODEL_HELP"]

#: Boards by command-line name.
BOARDS = {board.name: board for board in (ICEBREAKER, UPDUINO_V3, ULX3S_85F, ULX3S_25F, TANGNANO9K)}

#: The ``--model`` help of the commands that take a board: each board's shipped default model.
MODEL_HELP = ("model directory (default: the board's shipped model in models/: "
              + ", ".join(f"{name} {board.model}" for name, board in sorted(BOARDS.items())) + ")")


def get_board(name):
    """The :class:`boards.board.Board` called ``name``.

    Raises
    ------
    KeyError
        If there is no such board (the message lists the known ones).
    """
    try:
        return BOARDS[name]
    except KeyError:
        raise KeyError(f"unknown board {name!r} (known: {', '.join(sorted(BOARDS))})") from None
