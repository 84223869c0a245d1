"""Wrong on purpose (a7.sigmoid-factor only): the saturation threshold by the textbook formula
log((1 + r) / (1 - r)), whose 1 - r cancels for small eps."""

import math

from impl import *  # noqa: F403 - the reference, with one function broken below


def saturation_threshold(eps):
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise ValueError("eps must be positive")
    if eps >= 0.25:
        return 0.0
    root = math.sqrt(1 - 4 * eps)
    return math.log((1 + root) / (1 - root))
