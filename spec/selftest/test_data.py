"""The spec's own data (spec/data.py): the generated and bundled sets it trains on, and the loaders of
real files a run may be given (MNIST IDX, X.pt/y.pt, Boston housing CSV or OpenML cache, Titanic CSV),
tested on small files the tests write. These are checks of the spec, not of a submission: no points."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from spec import data as datasets
from spec.asserts import assert_close, assert_equal, assert_tensor
from spec.test_linear import BOSTON_HEADER

TITANIC = """PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked
1,0,3,"Braund, Mr. Owen Harris",male,22,1,0,A/5 21171,7.25,,S
2,1,1,"Cumings, Mrs. John Bradley",female,38,1,0,PC 17599,71.2833,C85,C
3,1,3,"Heikkinen, Miss. Laina",female,,0,0,STON/O2. 3101282,7.925,,S
4,0,2,"Doe, Mr. John",male,40,0,2,12345,13.0,,S
"""


def write_idx(path, array: np.ndarray, type_code: int = 0x08, compress: bool = False):
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    payload = header + array.astype(">u1" if type_code == 0x08 else ">i4").tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def test_boston_from_an_openml_cache(tmp_path, monkeypatch):
    import sklearn.datasets
    from sklearn.utils import Bunch

    calls = []

    def fake_fetch_openml(**kwargs):
        calls.append(kwargs)
        return Bunch(data=np.arange(26.0).reshape(2, 13), target=np.array([24.0, 21.6]))

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fake_fetch_openml)
    x, y = datasets.load_boston_openml(tmp_path)
    assert calls and calls[0]["data_home"] == str(tmp_path) and calls[0]["name"] == "boston"
    assert_close(y, [24.0, 21.6], "target from the cache")
    assert_equal(x.shape, (2, 13), "features from the cache")
    with pytest.raises(FileNotFoundError):
        datasets.load_boston_openml(tmp_path / "nope")


def test_boston_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.load_boston_csv(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text(BOSTON_HEADER + "\n" + ",".join(["x"] * 14) + "\n" + ",".join(["1"] * 14) + "\n")
    with pytest.raises(ValueError):
        datasets.load_boston_csv(tmp_path / "bad.csv")


def test_titanic_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.load_titanic_csv(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("PassengerId,Name\n1,x\n")
    with pytest.raises(ValueError):
        datasets.load_titanic_csv(tmp_path / "bad.csv")


def test_titanic_csv_loads(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(TITANIC)
    x, y = datasets.load_titanic_csv(path)
    assert_tensor(x, "Titanic features", shape=(4, 6))
    assert_close(y, [0, 1, 1, 0], "Survived")
    assert_close(x[:, 1], [1, 0, 0, 1], "Sex (male = 1)")
    assert_close(x[2, 2], np.median([22, 38, 40]), "a missing Age gets the median age")
    assert_close(x[:, 5], [7.25, 71.2833, 7.925, 13.0], "Fare")


def test_bad_pt_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.ps09_data(tmp_path)
    torch.save(torch.ones(5), tmp_path / "X.pt")
    torch.save(torch.ones(4), tmp_path / "y.pt")
    with pytest.raises(ValueError):
        datasets.ps09_data(tmp_path)
    (tmp_path / "y.pt").write_bytes(b"not a tensor")
    with pytest.raises(ValueError):
        datasets.ps09_data(tmp_path)


def test_x_pt_and_y_pt_are_loaded_when_given(tmp_path):
    x = torch.linspace(-1, 1, 50)
    torch.save(x, tmp_path / "X.pt")
    torch.save((3 * x + 0.5)[:, None], tmp_path / "y.pt")            # an N x 1 column is accepted
    got_x, got_y = datasets.ps09_data(tmp_path)
    assert_close(got_x, x, "X.pt", dtype=torch.float32)
    assert_close(got_y, 3 * x + 0.5, "y.pt", dtype=torch.float32)


def test_embedded_digits_stand_in():
    from sklearn.datasets import load_digits

    data = datasets.digits_784(seed=0)
    assert_equal(data.x_train.shape[1], 784, "784 inputs")
    assert_equal(len(data.y_train) + len(data.y_test), len(load_digits().target), "every bundled digit once")
    assert float(data.x_train.min()) >= 0 and float(data.x_train.max()) <= 1, "pixels in [0, 1]"
    assert set(data.y_test.tolist()) == set(range(10)), "all ten classes in the test split"


@pytest.mark.parametrize("damage", ["truncated", "wrong magic", "missing"])
def test_mnist_idx_loader_rejects_broken_files(tmp_path, damage):
    rng = np.random.default_rng(1)
    for s, n in (("train", 4), ("t10k", 2)):
        write_idx(tmp_path / f"{s}-images-idx3-ubyte", rng.integers(0, 256, size=(n, 28, 28)))
        write_idx(tmp_path / f"{s}-labels-idx1-ubyte", rng.integers(0, 10, size=n))
    target = tmp_path / "train-images-idx3-ubyte"
    if damage == "truncated":
        target.write_bytes(target.read_bytes()[:-10])
    elif damage == "wrong magic":
        target.write_bytes(b"\x08\x03" + target.read_bytes()[2:])
    else:
        target.unlink()
    error = FileNotFoundError if damage == "missing" else ValueError
    with pytest.raises(error, match="train-images"):
        datasets.load_mnist(tmp_path)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_mnist_idx_loader(tmp_path, compress, layout):
    rng = np.random.default_rng(0)
    folder = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    images = {s: rng.integers(0, 256, size=(n, 28, 28)) for s, n in (("train", 6), ("t10k", 3))}
    labels = {s: rng.integers(0, 10, size=len(images[s])) for s in images}
    for s in images:
        write_idx(folder / f"{s}-images-idx3-ubyte{suffix}", images[s], compress=compress)
        write_idx(folder / f"{s}-labels-idx1-ubyte{suffix}", labels[s], compress=compress)
    data = datasets.load_mnist(tmp_path)
    assert_tensor(data.x_train, "train images", shape=(6, 784))
    assert_close(data.x_train, images["train"].reshape(6, -1) / 255, "pixels scaled to [0, 1]", dtype=torch.float32)
    assert_equal(data.y_test.tolist(), labels["t10k"].tolist(), "test labels")


@pytest.mark.parametrize("kwargs", [{"n_samples": 3}, {"test_size": 1.5}, {"noise": -0.1}], ids=str)
def test_two_moons_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        datasets.two_moons(**kwargs)


@pytest.mark.parametrize("seed_", [0, 1, 2])
@pytest.mark.parametrize("noise", [0.1, 0.2])
def test_embedded_two_moons_is_make_moons(seed_, noise):
    from sklearn.datasets import make_moons

    data = datasets.two_moons(seed=seed_, noise=noise)
    n = len(data.y_train) + len(data.y_test)
    assert_equal(n, 1000, "samples in train + test")
    assert_equal(len(data.y_test), 250, "test samples (25 %)")
    x, y = make_moons(n_samples=1000, noise=noise, random_state=seed_)
    ours = torch.cat([data.x_train, data.x_test]).double().numpy()
    labels = torch.cat([data.y_train, data.y_test]).numpy()
    distance = np.abs(ours[:, None, :] - x[None, :, :]).max(-1)
    nearest = distance.argmin(1)
    assert (distance[np.arange(n), nearest] < 1e-6).all(), "samples that make_moons did not draw"
    assert sorted(nearest) == list(range(n)), "every make_moons sample exactly once"
    assert (y[nearest] == labels).all(), "labels as make_moons gave them"
    assert abs(float(data.y_test.float().mean()) - 0.5) < 0.01, "stratified: classes balanced in test"
    assert torch.equal(datasets.two_moons(seed=seed_, noise=noise).x_train, data.x_train), "same seed, same data"
