"""The harness judges another implementation: run the spec on deliberately wrong or partial
solutions and check that exactly the affected exercises go red."""

from __future__ import annotations

from pathlib import Path

import pytest

from spec.catalogue import load
from spec.selftest.runner import run_spec, run_spec_batch, statuses

IMPLS = Path(__file__).with_name("impls")


class WrongCase:
    """A deliberately wrong implementation, the exercises it is run on, and those it must fail.

    ``selection`` is the part it runs on in the slow tier (every exercise of it); ``quick`` (the IDs
    it breaks and a cheap neighbour, by default those it breaks) and ``keyword`` (a ``-k`` expression
    that leaves out long trainings) are its run in the default one. ``fragile``: the exercises whose
    robustness checks (no points) it must fail while earning their points, for a mistake the sheet
    does not ask about (the caller's input changed, a return value the interface promises); every
    other selected exercise it does not fail must pass its robustness checks."""

    def __init__(self, target: str, selection: str, failing: set[str], quick: tuple[str, ...] = (),
                 keyword: str | None = None, fragile: set[str] = frozenset()):
        self.target, self.selection, self.failing, self.fragile = target, selection, failing, set(fragile)
        assert not failing & self.fragile, "an exercise it fails loses its points: name it in failing only"
        self.quick = tuple(sorted(set(quick) | failing | self.fragile))
        self.keyword = keyword

    def __repr__(self):
        return Path(self.target).stem


PS09_1 = {e.id for e in load().select("ps09.1")}
WRONG = [
    WrongCase("ps09_sigmoid_plus.py", "ps09.1", {"ps09.1-2"}, ("ps09.1-1",)),
    WrongCase("ps09_trace_untransposed.py", "ps09.1", {"ps09.1-4"}, ("ps09.1-5",)),
    WrongCase("ps09_grad_reference.py", "ps09.1", {"ps09.1-5"}, ("ps09.1-4",)),
    WrongCase("ps09_partial.py", "ps09.1", PS09_1 - {"ps09.1-1"}, ("ps09.1-1",)),
    WrongCase("skip_everywhere.py", "ps09.1", PS09_1 - {"ps09.1-1"}, ("ps09.1-1",)),
    WrongCase("lying_results.py", "ps09.1", {"ps09.1-1", "ps09.1-4"}, ("ps09.1-2",)),
    WrongCase("broken_package", "ps09.1", PS09_1),
    # a wrong closed form costs (a) alone: (b) and (c) are checked against the exact gradient
    WrongCase("logcosh_sign.py", "dl-a1.q1", {"dl-a1.q1a"}, ("dl-a1.q1b",)),
    WrongCase("logcosh_naive.py", "dl-a1.q1", {"dl-a1.q1b"}, ("dl-a1.q1a",)),
    WrongCase("fd_by_autograd.py", "dl-a1.q1", {"dl-a1.q1c"}, ("dl-a1.q1a",), keyword="not error_order"),
    # steps and schemes ignored: the fitted error orders catch it too, the quick run leaves them out
    WrongCase("fd_ignores_h_and_scheme.py", "dl-a1.q1", {"dl-a1.q1c"}, keyword="not error_order"),
    WrongCase("fd_net_gradients_drop_h.py", "dl-a1.q1", {"dl-a1.q1c"}, keyword="not error_order"),
    WrongCase("housing_fixed_input_size.py", "dl-a1.q1", {"dl-a1.q1d"}, keyword="boston"),
    WrongCase("housing_whole_data_statistics.py", "dl-a1.q1", {"dl-a1.q1d"}, keyword="training_split_only"),
    # the forward and hand reverse modes are compared with the autograd Jacobian: (c) fails with it
    WrongCase("autograd_jacobian_of_the_sum.py", "dl-a1.q2", {"dl-a1.q2b", "dl-a1.q2c"}, ("dl-a1.q2e",)),
    WrongCase("jac_transposed.py", "dl-a1.q2", {"dl-a1.q2c"}, ("dl-a1.q2b",)),
    # its FLOPs are reverse mode's, so the op-count claim on "forward mode" fails too
    WrongCase("jac_forward_by_jacrev.py", "dl-a1.q2", {"dl-a1.q2c", "dl-a1.q2e"}),
    WrongCase("timing_ratio_to_autograd.py", "dl-a1.q2", {"dl-a1.q2d"}, ("dl-a1.q2e",)),
    # the caller's x left requiring grad, with a .grad: a robustness check, no points lost
    WrongCase("jacobian_autograd_marks_x.py", "dl-a1.q2", set(), fragile={"dl-a1.q2b"}),
    WrongCase("op_count_off_by_one.py", "dl-a1.q2", {"dl-a1.q2e"}, ("dl-a1.q2d",)),
    WrongCase("relu_slope_one_at_zero.py", "a7", {"a7.activation-eq4"}, ("a7.sigmoid-factor",)),
    WrongCase("backprop_without_slope.py", "a7", {"a7.backprop-eqs"}, ("a7.sigmoid-factor",)),
    WrongCase("threshold_naive.py", "a7", {"a7.sigmoid-factor"}, ("a7.activation-eq4",)),
    WrongCase("depth_study_output_first.py", "a7", {"a7.depth-study"}, ("a7.activation-eq4",)),
    WrongCase("logreg_c_as_lambda.py", "a7", {"a7.logreg"}, ("a7.sigmoid-factor",)),
    WrongCase("conv_correlation.py", "a7.c", {"a7.conv2d"}, ("a7.cnn",), keyword="not trains"),
    WrongCase("cnn_count_without_bias.py", "a7.c", {"a7.cnn"}, ("a7.conv2d",), keyword="not trains"),
    WrongCase("moons_weight_norms.py", "moons", {"moons.grad-norms"}, keyword="recorded_per_step"),
    WrongCase("moons_test_accuracy_on_train.py", "moons", {"moons.baseline"}, keyword="baseline_reaches"),
    WrongCase("compare_ignores_seed.py", "moons", {"moons.deep"}, keyword="comparison_is_reproducible"),
    # the backward pass at logits ~200 runs on the forward pass's cache: its nan spreads to (b)
    WrongCase("softmax_without_max_shift.py", "moons.manual", {"moons.manual-forward", "moons.manual-backward"},
              ("moons.manual-train",), keyword="not snapshots"),
    WrongCase("softmax_ce_sign.py", "moons.manual", {"moons.manual-backward", "moons.manual-train"},
              ("moons.manual-forward",), keyword="not snapshots"),
    WrongCase("backward_by_autograd.py", "moons.manual", {"moons.manual-backward", "moons.manual-train"},
              keyword="not snapshots"),
    WrongCase("xnor_nor_without_bias.py", "dl-a1.q3", {"dl-a1.q3-xnor"}, ("dl-a1.q3-tent",)),
    WrongCase("soft_threshold_ignores_s.py", "dl-a1.q3", {"dl-a1.q3-softthreshold"}, ("dl-a1.q3-xnor",)),
    WrongCase("tent_one_layer_off.py", "dl-a1.q3", {"dl-a1.q3-tent"}, ("dl-a1.q3-xnor",)),
    # the module version is trained by the spec's own loop: only the exercises that use train() fail
    WrongCase("train_accumulates.py", "ex08.linreg", {"ex08.linreg-tensors", "ex08.linreg-nn"},
              ("ex08.linreg-module",)),
    WrongCase("linreg_module_plain_bias.py", "ex08.linreg", {"ex08.linreg-module"}, ("ex08.linreg-tensors",)),
    # the sheet asks train for no return value: the interface's list of losses is a robustness check
    WrongCase("train_loss_after_step.py", "ex08.linreg", set(), fragile={"ex08.linreg-tensors"},
              keyword="not least_squares"),
    WrongCase("lsq_gradient_mean.py", "dl-a1.q5", {"dl-a1.q5a"}, ("dl-a1.q5b",)),
    WrongCase("gd_second_step_stale_gradient.py", "dl-a1.q5", {"dl-a1.q5b"}, ("dl-a1.q5a",)),
    WrongCase("gd_iterate_off_by_one.py", "dl-a1.q5", {"dl-a1.q5c"}, ("dl-a1.q5b",)),
    # steps taken in place on the caller's w0: the iterates are right, a robustness check fails
    WrongCase("gd_overwrites_w0.py", "dl-a1.q5", set(), ("dl-a1.q5a",), fragile={"dl-a1.q5b", "dl-a1.q5c"}),
    WrongCase("sgd_ignores_seed.py", "ps09.2", {"ps09.2-1"}, ("ps09.2-2",)),
    WrongCase("sgd_drop_last.py", "ps09.2", {"ps09.2-1", "ps09.2-2", "ps09.2-5"}, ("ps09.2-3",)),
    WrongCase("val_mse_on_train.py", "ps09.2", {"ps09.2-3"}, ("ps09.2-4",)),
    WrongCase("best_epoch_by_train_loss.py", "ps09.2", {"ps09.2-4"}, ("ps09.2-3",)),
    WrongCase("momentum_dampened.py", "ps09.2", {"ps09.2-5"}, ("ps09.2-2",)),
    WrongCase("my_model_sequential.py", "dl-a1.q4", {"dl-a1.q4a"}, ("dl-a1.q4b",)),
    # its study runs on the wrong init too: the xavier row of (c) is off the spec's run
    WrongCase("xavier_wrong_bound.py", "dl-a1.q4", {"dl-a1.q4b", "dl-a1.q4c"}, ("dl-a1.q4a",)),
    WrongCase("layer_stats_pre_activation.py", "dl-a1.q4", {"dl-a1.q4c"}, keyword="independent_pass"),
    WrongCase("init_study_ignores_seed.py", "dl-a1.q4", {"dl-a1.q4d"}, keyword="each_seed"),
    WrongCase("init_test_accuracy_on_train.py", "dl-a1.q4", {"dl-a1.q4d"}, keyword="measured_on_the_test_split"),
    WrongCase("discussion_first_epoch.py", "dl-a1.q4", {"dl-a1.q4e"}, keyword="own_final"),
    WrongCase("bound_without_x1.py", "ex08.vanishing", {"ex08.vanishing-bound"}, ("a7.sigmoid-factor",)),
    WrongCase("mlp_tanh.py", "ex08.mlp", {"ex08.mlp"}, keyword="linear_nonlinearity"),
    WrongCase("mlp_numpy_init.py", "ex08.mlp", {"ex08.mlp"}, keyword="deterministic"),
]
assert WRONG and PS09_1

#: the corpus members whose mistake is of a class the feedback can name (spec/diagnose.py and the slips
#: the tests declare): what their first failure's "Looks like ..." must say ...
NAMED = {
    "jac_transposed.py": "the transpose", "ps09_trace_untransposed.py": "the transpose",
    "logcosh_sign.py": "the sign flipped", "softmax_ce_sign.py": "the sign flipped",
    "lsq_gradient_mean.py": "a mean over the", "train_accumulates.py": "gradients accumulated",
    "gd_iterate_off_by_one.py": "one step late", "gd_second_step_stale_gradient.py": "gradient at w0 again",
    "ps09_grad_reference.py": "without .clone()", "relu_slope_one_at_zero.py": "ReLU'(0) = 1",
    "backprop_without_slope.py": "without the sigma'(s) factor", "bound_without_x1.py": "without the factor |x_1|",
    "conv_correlation.py": "the kernel not flipped", "cnn_count_without_bias.py": "without the biases",
    "op_count_off_by_one.py": "where there are L - 1", "xavier_wrong_bound.py": "sqrt(6 / n_in)",
    "depth_study_output_first.py": "output side first", "momentum_dampened.py": "a dampened momentum",
    "val_mse_on_train.py": "the training split's MSE", "logreg_c_as_lambda.py": "C taken as the penalty's weight",
}
#: ... and those of a nameable class that no hint names yet (rule breaks, numerical failures, structure,
#: hostile and robustness-only members are of no such class: their messages name the rule or the check)
NAMEABLE_UNNAMED = {"best_epoch_by_train_loss.py", "moons_test_accuracy_on_train.py", "moons_weight_norms.py",
                    "layer_stats_pre_activation.py", "sgd_drop_last.py", "housing_whole_data_statistics.py",
                    "tent_one_layer_off.py", "xnor_nor_without_bias.py", "soft_threshold_ignores_s.py",
                    "autograd_jacobian_of_the_sum.py", "fd_ignores_h_and_scheme.py", "fd_net_gradients_drop_h.py"}


def _check(case: WrongCase, report: dict | None, process, selected: set[str]) -> list[str]:
    """What is wrong with one run of a corpus member: [] when exactly its exercises failed."""
    if report is None:
        return [f"{case}: the spec run wrote no report (exit {process.returncode}):\n{process.stdout[-3000:]}"]
    got = {eid: status for eid, status in statuses(report).items() if eid in selected}
    expected = {eid: ("failed" if eid in case.failing else "passed") for eid in selected}
    problems = []
    if got != expected:
        problems.append(f"{case}: got {got}, but should be {expected}\n{process.stdout[-4000:]}")
    # where it loses the points, a wrong solution may fail robustness checks too, also of an exercise that
    # shares such a check with the one it loses (dl-a1 1(a) and 1(b)'s overflow check); a mistake of the
    # robustness kind alone must fail exactly the robustness checks it names
    fragile = {row["id"] for sheet in report["sheets"].values() for row in sheet["exercises"]
               if row["id"] in selected - case.failing and row["robustness"].get("failed")}
    if not case.failing and fragile != case.fragile:
        problems.append(f"{case}: robustness checks failed in {sorted(fragile)}, but should fail in "
                        f"{sorted(case.fragile)}\n{process.stdout[-4000:]}")
    if process.returncode != 1:
        problems.append(f"{case}: exit code {process.returncode}, but should be 1 (tests failed)")
    if str(IMPLS / case.target) not in process.stdout:
        problems.append(f"{case}: the report header does not name the implementation")
    named = NAMED.get(case.target)
    hints = [line for line in process.stdout.splitlines() if line.startswith("E ") and "Looks like" in line]
    if named and not any(named in line.split("Looks like", 1)[1].split(": got")[0] for line in hints):
        problems.append(f"{case}: its failure should name the mistake ('Looks like ...{named}...'), got {hints[:3]}")
    return problems


# The whole corpus in the default run: each member only on the exercises it breaks and a neighbour,
# long trainings left out by -k, several members per process (forked after one import of torch & co).
BATCHES = 6


@pytest.mark.parametrize("batch", range(BATCHES))
def test_wrong_implementations_fail_exactly_their_exercises(batch):
    cases = WRONG[batch::BATCHES]
    runs = []
    for case in cases:
        chosen = [e for e in load().exercises if e.id in case.quick]
        modules = tuple(sorted({f"spec/test_{e.topic}.py" for e in chosen}))
        args = tuple(a for eid in case.quick for a in ("--exercise", eid))
        args += ("-k", case.keyword) if case.keyword else ()
        runs.append((args, modules, str(IMPLS / case.target)))
    problems = [problem for case, (report, process) in zip(cases, run_spec_batch(runs), strict=True)
                for problem in _check(case, report, process, set(case.quick))]
    assert not problems, "\n\n".join(problems)


# The slow tier runs each member alone on its whole part (every exercise of it, trainings included).
@pytest.mark.slow
@pytest.mark.parametrize("case", WRONG, ids=repr)
def test_wrong_implementation_fails_exactly_its_exercises(case):
    chosen = load().select(case.selection)
    modules = tuple(sorted({f"spec/test_{e.topic}.py" for e in chosen if not e.pending}))  # only those
    report, process = run_spec("--exercise", case.selection, paths=modules, impl=str(IMPLS / case.target))
    problems = _check(case, report, process, {e.id for e in chosen if not e.pending})
    assert not problems, "\n\n".join(problems)


def test_at_least_half_of_the_nameable_mistakes_are_named():
    """Of the corpus members whose mistake is of a nameable class, at least half get a failure that names
    it (each such claim is checked on its own run above)."""
    targets = {case.target for case in WRONG}
    assert set(NAMED) <= targets and NAMEABLE_UNNAMED <= targets and not set(NAMED) & NAMEABLE_UNNAMED
    share = len(NAMED) / (len(NAMED) + len(NAMEABLE_UNNAMED))
    assert share >= 0.5, f"{len(NAMED)} of {len(NAMED) + len(NAMEABLE_UNNAMED)} nameable mistakes named"


def test_every_catalogue_id_has_a_wrong_solution_in_the_default_run():
    """Every exercise is failed by at least one corpus member, on a run the default tier makes."""
    failed_by_default = {eid for case in WRONG for eid in case.failing if eid in case.quick}
    missing = sorted({e.id for e in load().exercises} - failed_by_default)
    assert not missing, f"no wrong solution in the default run fails {missing}"
    assert all(set(case.quick) <= {e.id for e in load().exercises} for case in WRONG), "quick runs name catalogue IDs"
    assert len({case.target for case in WRONG}) == len(WRONG), "each corpus member listed once"


def test_corpus_has_three_wrong_solutions_per_sheet():
    from collections import Counter

    per_sheet = Counter(sheet for case in WRONG for sheet in {e.split(".")[0] for e in case.failing})
    assert all(per_sheet[sheet] >= 3 for sheet in load().sheets), f"wrong solutions per sheet: {dict(per_sheet)}"
    assert all(case.failing or case.fragile for case in WRONG), \
        "every corpus entry names the exercises (or the robustness checks) it must fail"


def test_missing_names_are_reported_by_name():
    _, process = run_spec("--exercise", "ps09.1-3", impl=str(IMPLS / "ps09_partial.py"))
    assert "vector_function_gradients is not defined in" in process.stdout, process.stdout[-3000:]


def test_import_error_is_reported_once_per_test_with_its_cause():
    _, process = run_spec("--exercise", "ps09.1-4", impl=str(IMPLS / "broken_package"))
    assert "could not import" in process.stdout and "does not exist" in process.stdout, \
        process.stdout[-3000:]


def test_nonexistent_implementation_path_fails_with_a_clear_message():
    report, process = run_spec("--exercise", "ps09.1-1", impl="./no/such/solution.py")
    assert "no such file or folder" in process.stdout, process.stdout[-3000:]
    assert statuses(report)["ps09.1-1"] == "failed"


def test_unknown_exercise_selection_is_a_usage_error():
    with pytest.raises(RuntimeError, match="no catalogue ID"):
        run_spec("--exercise", "nosuchsheet")


def test_completeness_check_works_when_run_alone():
    """Run only the catalogue module: it must learn the covered IDs from a separate collection."""
    _, process = run_spec("-rx", paths=("spec/test_catalogue.py",))
    assert process.returncode == 0, process.stdout[-3000:]
    pending = [e.id for e in load().exercises if e.pending]
    for exercise_id in pending:
        assert f"test_exercise_has_tests[{exercise_id}]" in process.stdout
    assert process.stdout.count("XFAIL spec/test_catalogue.py") == len(pending), process.stdout[-2000:]


def test_global_settings_changed_at_import_are_undone():
    """float64 by default, numpy errors raised, grad mode off and 8 threads, all set at import, would
    drop even the reference below full marks; the spec puts them back before the first test."""
    report, process = run_spec("--exercise", "ps09.1", paths=("spec/test_calculus.py",),
                               impl=str(IMPLS / "global_state_at_import.py"))
    got = {eid: status for eid, status in statuses(report).items() if eid.startswith("ps09.1")}
    assert set(got.values()) == {"passed"}, f"{got}\n{process.stdout[-3000:]}"
