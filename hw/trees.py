"""Reductions of many Amaranth values (a sum, an XOR) without an expression nested as deep as they are many.

Amaranth's transformations (``EnableInserter`` among them) recurse through an expression: a left-to-right chain of
a few hundred additions exceeds Python's recursion limit in elaboration (a conv lane of 360 taps did). :func:`chained`
keeps chains of up to :data:`CHAIN` terms, left to right (the form whose products and sums Yosys packs into DSP
blocks best, and for short reductions the very expression a loop would build), and joins the chains by a balanced
tree, so the nesting grows with ``CHAIN + log2(terms / CHAIN)``.
"""

import operator

__all__ = ["chained", "CHAIN"]

#: Terms combined in one chain.
CHAIN = 32


def chained(terms, combine=operator.add, chain=CHAIN):
    """``terms[0] combine terms[1] combine ...`` for a non-empty list of Amaranth values, as chains of up to
    ``chain`` terms joined by a balanced tree."""
    terms = list(terms)
    if not terms:
        raise ValueError("chained needs at least one term")
    parts = []
    for start in range(0, len(terms), chain):
        total = terms[start]
        for term in terms[start + 1:start + chain]:
            total = combine(total, term)
        parts.append(total)
    while len(parts) > 1:
        parts = [combine(parts[k], parts[k + 1]) if k + 1 < len(parts) else parts[k] for k in range(0, len(parts), 2)]
    return parts[0]
