"""Wrong on purpose (dl-a1.q2e only): the op-count model counts L hidden K x K products, not L-1."""

from impl import *  # noqa: F403 - the reference, with one function broken below


def op_counts(D, K, P, L, batch=1):
    primal = K * D + L * K * K
    return {"forward": batch * (primal + D * (L * K * K + P * K)),
            "reverse": batch * (primal + P * (L * K * K + K * D))}
