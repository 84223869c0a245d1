"""The data the solutions run on. The spec owns it (spec/data.py); the reference solutions and
their report read it from there."""

from spec.data import (  # noqa: F401
    EX08_X,
    EX08_Y,
    Split,
    digits_784,
    digits_images,
    ex08_linear_data,
    ex08_nonlinear_data,
    load_mnist,
    ps09_data,
    read_idx,
    two_moons,
)
