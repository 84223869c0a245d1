"""Wrong on purpose (a7.conv2d only): cross-correlation (the kernel not flipped)."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import conv2d as _reference


def conv2d(image, kernel_, mode="valid", stride=1):
    return _reference(image, kernel_.flip(0, 1), mode=mode, stride=stride)
