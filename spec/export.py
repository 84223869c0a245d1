"""``python -m spec.export``, under the name course staff already call: the exports themselves are
grader/judge/export.py."""

import sys

from grader.judge.export import main

if __name__ == "__main__":
    sys.exit(main())
