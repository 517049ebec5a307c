"""Statistics and timing helpers shared by the simulator tests (computed independently of the
code under test)."""

from __future__ import annotations

import math
from fractions import Fraction

from linkstack.sims.engine import NS_PER_S

Z999 = 3.2905  # two-sided 99.9 % normal quantile


def wilson(k: int, n: int, z: float = Z999) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n."""
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return centre - half, centre + half


def ser_ns(octets: int, rate_bps: float) -> int:
    """Serialization time as the tests compute it: ceil(8 * octets / rate) in ns, exactly."""
    return math.ceil(Fraction(8 * octets * NS_PER_S) / Fraction(rate_bps))
