"""dl-a1 question 3: networks whose weights are set by hand, no fitting.

Every net is a list of layers (W, b); each layer but the last is followed by ReLU, the last is
linear: h <- relu(W h + b), ..., out = W_last h + b_last. Inputs are rows of x (N x D).
"""

from __future__ import annotations

import torch

from spec.given import HandNet

XNOR_MARGIN = 0.5


def _net(*layers) -> HandNet:
    return HandNet(tuple((torch.tensor(w, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
                         for w, b in layers))


def xnor_net() -> HandNet:
    """XNOR with one hidden ReLU layer of two units.

    Unit 1 is AND: relu(x1 + x2 - 1) is 1 at (1, 1) and 0 at the other three inputs. Unit 2 is
    NOR: relu(1 - x1 - x2) is 1 at (0, 0) and 0 elsewhere. XNOR is true exactly when one of the two
    fires, and they never fire together, so the output AND + NOR is exactly 1 on (0, 0) and (1, 1)
    and exactly 0 on (0, 1) and (1, 0). Read with the threshold 1/2, every input is classified with
    the margin XNOR_MARGIN = 1/2.
    """
    return _net(([[1.0, 1.0], [-1.0, -1.0]], [-1.0, 1.0]), ([[1.0, 1.0]], [0.0]))


def tent_net() -> HandNet:
    """The tent f = 2x on [0, 1/2], 2(1 - x) on [1/2, 1], 0 elsewhere, with two hidden layers.

    f(x) = 2 max(0, min(x, 1 - x)), and min(a, b) = a - relu(a - b), so with a = x, b = 1 - x:
    f(x) = 2 relu(x - relu(2x - 1)) = 2 relu(x - 2 relu(x - 1/2)). Layer 1 computes relu(x),
    relu(-x) (their difference passes x through, whatever its sign) and relu(x - 1/2); layer 2
    computes relu(relu(x) - relu(-x) - 2 relu(x - 1/2)); the output doubles it. Check: x <= 1/2
    gives 2 relu(x), i.e. 2x on [0, 1/2] and 0 for x < 0; x >= 1/2 gives 2 relu(1 - x), i.e.
    2(1 - x) on [1/2, 1] and 0 for x > 1. In floating point it is exact as well: x - 1/2 and
    x - 2(x - 1/2) are exact on [1/2, 1]; far out only the sign matters, and no intermediate
    exceeds 2|x|, so nothing overflows into inf - inf.
    """
    return _net(([[1.0], [-1.0], [1.0]], [0.0, 0.0, -0.5]), ([[1.0, -1.0, -2.0]], [0.0]), ([[2.0]], [0.0]))


def soft_threshold_net(s: float) -> HandNet:
    """max(|x| - s, 0) sign(x) with one hidden ReLU layer of two units, for a threshold s >= 0.

    relu(x - s) is x - s for x > s and 0 otherwise; relu(-x - s) is |x| - s for x < -s and 0
    otherwise. Their difference is x - s above s, x + s below -s, and 0 in between: exactly the soft
    threshold. With s < 0 the two units overlap on (s, -s) and the formula breaks, so s < 0 is
    rejected.
    """
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not s >= 0 or s == float("inf"):
        raise ValueError(f"s must be a finite number >= 0, got {s!r}")
    return _net(([[1.0], [-1.0]], [-float(s), -float(s)]), ([[1.0, -1.0]], [0.0]))
