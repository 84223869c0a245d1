"""The grader, split where trust is split:

* grader/sandboxed/: the only project code bound into the sandbox, run with the submission (the
  worker, the notebook runner, the loader of a submission, the channel's worker half, the rules'
  and the spec's observation drivers). Small, few imports; nothing here is trusted by the judge.
* grader/judge/: what decides, in processes that never import a submission (the judge's pytest
  plugin and its records, the channel's reading half, the sandbox's plan, the grade, the class
  batch, the exports to Gradescope and GitHub Classroom).

``python -m grader`` grades (the same as ``python -m spec.grade``).
"""
