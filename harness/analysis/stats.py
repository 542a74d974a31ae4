"""Small statistics for results: confidence intervals across repetitions, spread, Welch's two-sample t-test (the
significance test of ``bench compare``), and latency trend.

No SciPy (it is not a dependency): the Student-t quantile comes from a table for small samples and the
Cornish-Fisher expansion beyond it, which is what the 95 % intervals of the report and of ``bench compare`` need.
Welch's test takes that quantile at the Welch–Satterthwaite degrees of freedom rounded down, which is slightly
conservative (never calls more changes significant than the exact quantile).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Two-sided 95 % quantiles t(0.975, df) for df = 1..30.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = 1.959964


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (two-sided 95 %)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1 (got {df})")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    # Cornish-Fisher expansion: error < 1e-4 for df > 30.
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Estimate:
    """Mean of repeated measurements with the half-width of its 95 % confidence interval."""

    mean: float
    half_width: float | None
    """None with fewer than two finite values: no spread was measured."""
    n: int
    stdev: float | None

    @property
    def cv(self) -> float | None:
        """Coefficient of variation (stdev / |mean|), None if unknown or the mean is 0."""
        if self.stdev is None or self.mean == 0 or not math.isfinite(self.mean):
            return None
        return self.stdev / abs(self.mean)


def estimate(values: Sequence[float | None]) -> Estimate | None:
    """Mean ± 95 % CI (t-distribution) over the finite values; None when there is none."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return None
    mean = float(finite.mean())
    if finite.size < 2:
        return Estimate(mean, None, 1, None)
    stdev = float(finite.std(ddof=1))
    return Estimate(mean, t975(finite.size - 1) * stdev / math.sqrt(finite.size), int(finite.size), stdev)


@dataclass(frozen=True)
class Welch:
    """Welch's two-sample t-test of B − A at 95 % (two-sided)."""

    difference: float
    """mean(B) − mean(A), in the figure's unit."""
    standard_error: float
    """sqrt(var_A / n_A + var_B / n_B)."""
    df: float
    """Welch–Satterthwaite degrees of freedom."""
    critical_t: float
    """Student-t 0.975 quantile at floor(df)."""

    @property
    def detectable(self) -> float:
        """The smallest |difference| of means this test calls significant, in the figure's unit."""
        return self.critical_t * self.standard_error

    @property
    def significant(self) -> bool:
        return abs(self.difference) > self.detectable


def welch(a: Sequence[float], b: Sequence[float]) -> Welch | None:
    """The test of B against A; None with fewer than 2 values on a side."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return None
    ea, eb = estimate(a), estimate(b)
    assert ea is not None and eb is not None and ea.stdev is not None and eb.stdev is not None
    qa, qb = ea.stdev**2 / na, eb.stdev**2 / nb
    se = math.sqrt(qa + qb)
    if qa + qb == 0:
        df = float(na + nb - 2)  # no spread on either side: any difference is significant
    else:
        df = (qa + qb) ** 2 / (qa**2 / (na - 1) + qb**2 / (nb - 1))
    return Welch(eb.mean - ea.mean, se, df, t975(max(1, math.floor(df))))


@dataclass(frozen=True)
class Trend:
    """Least-squares line through (x, y): ``y ≈ start + slope * (x - x[0])``."""

    slope: float
    """y units per x unit."""
    start: float
    """Fitted y at the first x."""
    growth: float
    """Fitted y at the last x minus fitted y at the first x."""
    points: int
    slope_low: float = math.nan
    """Lower end of the slope's two-sided 95 % confidence interval (Student t, n − 2 degrees of freedom): the
    slope is above it with 95 % confidence. Equal to ``slope`` when the points lie exactly on the line."""


def trend(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> Trend | None:
    """Linear trend of ``y`` over ``x``; None with fewer than 3 points or no spread in ``x``."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    if xs.size < 3 or np.ptp(xs) == 0:
        return None
    slope, intercept = np.polyfit(xs - xs.min(), ys, 1)
    span = float(xs.max() - xs.min())
    residuals = ys - (intercept + slope * (xs - xs.min()))
    spread = float(np.sum((xs - xs.mean()) ** 2))
    se = math.sqrt(float(np.sum(residuals**2)) / (xs.size - 2) / spread) if xs.size > 2 else math.inf
    low = float(slope) - t975(xs.size - 2) * se
    return Trend(float(slope), float(intercept), float(slope * span), int(xs.size), low)
