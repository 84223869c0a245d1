"""The solutions report (the project's main job): every figure produced and non-empty, every sheet
present, the numbers equal to the implementation's, nothing stale after a rerun, bad options
refused. The quick variant runs in the default spec; the full report in `tox -e slow`."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch

from spec import data as datasets

FIGURES = {
    "ps09": ["ps09_sigmoid.png", "ps09_loss_curve.png", "ps09_train_val.png", "ps09_momentum.png"],
    "ex08": ["ex08_predictions.png", "ex08_bound.png"],
    "moons": ["moons_grad_norms.png", "moons_manual_loss.png", "moons_boundary.png"],
    "a7": ["a7_depth_study.png", "a7_kernels.png", "a7_cnn.png"],
    "dl-a1": ["dl_a1_housing.png", "dl_a1_jacobian_timing.png", "dl_a1_handbuilt.png", "dl_a1_init_before.png",
              "dl_a1_init_after.png", "dl_a1_init_accuracy.png", "dl_a1_gd.png"],
}


def assert_non_empty_png(path):
    __tracebackhide__ = True
    from matplotlib.image import imread

    assert path.is_file(), f"{path.name} was not produced"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    pixels = imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100, f"{path.name} is too small: {pixels.shape}"
    assert float(np.std(pixels[..., :3])) > 0.01, f"{path.name} is blank"


@pytest.fixture(scope="module")
def quick_report(impl, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    return impl.build_report(out, quick=True, stream=io.StringIO())


def check_report(out):
    html = (out / "index.html").read_text(encoding="utf-8")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for sheet, figures in FIGURES.items():
        assert f"id='{sheet}'" in html, f"the HTML report has no section for {sheet}"
        for name in figures:
            assert_non_empty_png(out / name)
            assert name in html and name in markdown, f"{name} is not linked from the report"
    produced = {p.name for p in out.glob("*.png")}
    assert produced == {n for names in FIGURES.values() for n in names}, f"unexpected figures {produced}"
    return html, markdown


def test_quick_report_has_every_figure(quick_report):
    check_report(quick_report)


def test_report_numbers_come_from_the_implementation(impl, quick_report):
    markdown = (quick_report / "report.md").read_text(encoding="utf-8")
    expected = {
        "1.1 f'(2)": impl.derivative(impl.ps09_f, 2.0),
        "1.3 df1/dx": impl.vector_function_gradients()[0, 0],
        "1.5 sigma''(0.173)": impl.sigmoid_derivatives()[2],
    }
    for label, value in expected.items():
        line = next(line for line in markdown.splitlines() if label in line)
        assert line.rstrip(" |").endswith(f"{float(value):.3f}"), f"{line!r} should end with {float(value):.3f}"
    slope = impl.sgd_linear(*datasets.ps09_data()).params[0]
    assert re.search(rf"\| slope \| {float(slope):.3f} \|", markdown), "2.1 slope as the implementation computes it"


def test_rerun_leaves_nothing_stale(impl, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "stale.png").write_bytes(b"old")
    impl.build_report(out, ("ps09",), quick=True, stream=io.StringIO())
    names = {p.name for p in out.iterdir()}
    assert "stale.png" not in names, "a file from an earlier run survived"
    assert names == {"index.html", "report.md", *FIGURES["ps09"]}


@pytest.mark.parametrize("kwargs", [{"sheets": ("ps10",)}, {"sheets": ()}, {"device": "cuda"},
                                    {"data_dir": "/no/such/folder"}], ids=str)
def test_bad_options_are_refused(impl, tmp_path, kwargs):
    if kwargs.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here, so the refusal cannot be observed")
    sheets = kwargs.pop("sheets", ("ps09",))
    with pytest.raises(ValueError):
        impl.build_report(tmp_path / "out", sheets, **kwargs)


def test_command_line_reports_bad_options_without_a_traceback(tmp_path):
    import subprocess
    import sys

    process = subprocess.run([sys.executable, "-m", "impl.report", "--out", str(tmp_path / "r"), "--sheets", "ps10"],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2 and "invalid choice" in process.stderr and "Traceback" not in process.stderr


@pytest.mark.slow
def test_full_report(impl, tmp_path):
    _, markdown = check_report(impl.build_report(tmp_path / "full", stream=io.StringIO()))
    assert "(e) " in markdown and "Xavier" in markdown, "the 4(e) discussion is in the report"
