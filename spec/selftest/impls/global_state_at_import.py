"""Honest but careless: the reference, imported by a module that changes process-wide settings at
import (float64 by default, numpy errors raised, grad mode off, many threads). The spec undoes them:
every exercise must still pass."""

import numpy as np
import torch

from impl import *  # noqa: F403 - the reference, unchanged

torch.set_default_dtype(torch.float64)
np.seterr(all="raise")
torch.set_grad_enabled(False)
torch.set_num_threads(8)
