"""``python -m spec.grade``, the grader's command under the name course staff already call: the grader
itself is grader/judge/grade.py (also ``python -m grader``)."""

import sys

from grader.judge.grade import main

if __name__ == "__main__":
    sys.exit(main())
