"""Tiny helper for sanity checks in the ex08 notebook."""


def test(condition, message):
    """Print OK or FAIL followed by the message. Returns the condition as bool."""
    ok = bool(condition)
    print(("OK   " if ok else "FAIL ") + str(message))
    return ok
