"""The spec's pytest plugin, loaded from here in modules small enough to read at once:

* spec/plugins/selection.py: the implementation under test and the exercises selected (``--impl``,
  ``--exercise``, ``--alias``, ...), the markers and hypothesis profiles, the tie of every test to its
  exercise, and the fixtures (``impl``, ``seed``, ``rng``, ``catalogue``, ``spec_collection``);
* spec/plugins/summary.py: per-exercise results, the per-sheet summary, the interface page;
* spec/plugins/contracts.py: ``--check-contracts``, a test that relies on a contract the interface
  (spec/interface.toml, spec/given.py) does not state fails;
* spec/plugins/leaks.py: the leak guard (a test that leaves a thread or a child process behind fails)
  and the hang timeout (``--hang-timeout``: a process in which no test makes progress for that long
  dumps its stacks and exits 1);
* grader/judge/plugin.py: isolated mode (``--isolate``: the implementation in a sandboxed worker) and
  the records a grader reads (``--records``).
"""

# in this order: a plugin imports only those before it (the selection imports the rest of the spec and grader)
pytest_plugins = ["spec.plugins.summary", "spec.plugins.leaks", "spec.plugins.contracts", "spec.plugins.selection",
                  "grader.judge.plugin"]
