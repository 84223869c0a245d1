"""Wrong on purpose (a7.logreg only): C taken as the weight of the penalty (sum log loss +
C ||w||^2 / 2) instead of the weight of the data term (C sum log loss + ||w||^2 / 2)."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import fit_logistic_regression as _reference


def fit_logistic_regression(x, y, *, C=1.0, max_iter=500):
    if C is None:
        return _reference(x, y, C=None, max_iter=max_iter)
    # C' sum + |w|^2 / 2 with C' = 1 / C is, up to the factor 1 / C, sum + C |w|^2 / 2
    return _reference(x, y, C=1.0 / C if C > 0 else C, max_iter=max_iter)
