"""``python -m grader``: grade a submission or a class folder (grader/judge/grade.py)."""

import sys

from grader.judge.grade import main

if __name__ == "__main__":
    sys.exit(main())
