"""Declipping: restore the peaks of a recording saturated at its rails, before the features are made.

A recorder driven too hard saturates: every sample beyond full scale is stored at the rail, so a waveform's peaks
become flat runs at one value. The flat runs add harmonics all over the spectrum, which a model trained on clean
speech has not heard (a model of the shipped recipe without it lost 8 points on FSDD's test split at gain x10).
The front-end's ``declip`` option (:func:`train.features.condition`, before the DC removal) detects the saturated
samples and estimates what they were:

**Detection** (:func:`clipped`), one rail at a time (the largest and the smallest sample): the samples at the rail
count as clipped when there are at least :data:`MIN_RUN` of them and at least :data:`SPIKE_RATIO` times as many
as lie just below it (within :data:`BAND` of the rail's magnitude, the rail excluded). A clean recording's
amplitudes thin out towards the peak, even when coarsely quantized; a saturated one piles up at the rail. Of
FSDD's 3,000 recordings, 16 are detected as clipped as they are (all of one speaker, whose peaks sit at one value
in runs; some look clipped at the source), against 2,022 of the 2,072 in which gain x10 saturates four or more
samples.

**Reconstruction** (:func:`declip`), the autoregressive interpolation of Janssen, Veldhuis and Vries (IEEE Trans.
ASSP 34(2), 1986) with the clipping constraint: the clipped runs, with :data:`CONTEXT` samples of context on
each side (overlapping stretches merged), are first bridged by a cubic spline through the unclipped samples;
then, :data:`ITERATIONS` times, an all-pole model of order :data:`ORDER` is fitted to the stretch
(autocorrelation method) and the clipped samples are set to the values that minimize its prediction error over the
stretch (a sparse least-squares problem), each kept at least as far from zero as its rail (the true sample was
beyond it). The constants are part of the ``declip`` field's meaning in the manifest.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from scipy.interpolate import CubicSpline

__all__ = ["clipped", "declip", "MIN_RUN", "SPIKE_RATIO", "BAND", "ORDER", "CONTEXT", "ITERATIONS"]

#: Fewest samples at a rail that can be saturation.
MIN_RUN = 4
#: Samples at the rail, at least this many times those just below it.
SPIKE_RATIO = 2.0
#: "Just below": magnitudes above this share of the rail's.
BAND = 0.9
#: Order of the all-pole model (8 kHz speech: about two poles per kHz, and a few for the glottal source).
ORDER = 16
#: Samples of context on each side of a clipped run.
CONTEXT = 64
#: Rounds of fitting the model and solving for the clipped samples.
ITERATIONS = 3


def clipped(x: np.ndarray) -> np.ndarray:
    """Boolean mask of the samples of ``x`` saturated at its largest or smallest value (the module's rule)."""
    x = np.asarray(x, dtype=np.float64)
    mask = np.zeros(x.size, dtype=bool)
    if x.size == 0:
        return mask
    for side in (x, -x):
        rail = side.max()
        if not rail > 0.0:
            continue
        at = side >= rail
        near = int(np.count_nonzero((side > BAND * rail) & ~at))
        count = int(np.count_nonzero(at))
        if count >= MIN_RUN and count >= SPIKE_RATIO * max(near, 1):
            mask |= at
    return mask


def _stretches(bad: np.ndarray, size: int):
    """``[start, stop)`` of every clipped sample's neighbourhood, overlapping ones merged."""
    out = []
    for a, b in zip(np.maximum(bad - CONTEXT, 0), np.minimum(bad + CONTEXT + 1, size)):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], int(b))
        else:
            out.append([int(a), int(b)])
    return out


def _refine(s: np.ndarray, m: np.ndarray, rail: np.ndarray) -> np.ndarray:
    """One stretch ``s`` whose samples ``m`` are unknown (at least ``|rail|`` from zero), refined in place. The
    work grows as the stretch's length times ``ORDER`` squared (a banded system), so a recording clipped all
    through (30 s at most) takes seconds, not minutes."""
    n = s.size
    p = min(ORDER, n // 4)
    unknown, known = np.flatnonzero(m), np.flatnonzero(~m)
    for _ in range(ITERATIONS):
        r = np.array([s[:n - k] @ s[k:] for k in range(p + 1)]) / n  # lags 0 ... p only: O(n p)
        if p == 0 or not r[0] > 0.0:
            break
        try:
            a = scipy.linalg.solve_toeplitz(r[:p], -r[1:p + 1])
        except np.linalg.LinAlgError:
            break
        f = np.concatenate([[1.0], a])
        # rows: the prediction error e[t] = sum_k f[k] s[t - k] for t = p ... n - 1
        A = scipy.sparse.diags([np.full(n - p, f[k]) for k in range(p + 1)], [p - k for k in range(p + 1)],
                               shape=(n - p, n), format="csc")
        M = (A.T @ A).tocsc()
        lhs = M[unknown][:, unknown].tocsc()
        rhs = -(M[unknown][:, known] @ s[known])
        v = scipy.sparse.linalg.spsolve(lhs, rhs)
        if not np.all(np.isfinite(v)):
            break
        s[m] = np.where(rail > 0, np.maximum(v, rail), np.minimum(v, rail))
    return s


def declip(x: np.ndarray) -> np.ndarray:
    """``x`` with its saturated samples (:func:`clipped`) estimated; ``x`` itself when none are detected, or when
    half the samples or more sit at the rails (nothing left to estimate them from)."""
    x = np.asarray(x, dtype=np.float64)
    mask = clipped(x)
    bad = np.flatnonzero(mask)
    if bad.size == 0 or 2 * bad.size >= x.size:
        return x
    good = np.flatnonzero(~mask)
    y = x.copy()
    guess = CubicSpline(good, x[good])(bad)
    y[bad] = np.where(x[bad] > 0, np.maximum(guess, x[bad]), np.minimum(guess, x[bad]))
    with np.errstate(all="ignore"):
        for a, b in _stretches(bad, x.size):
            y[a:b] = _refine(y[a:b].copy(), mask[a:b], x[a:b][mask[a:b]])
    return y
