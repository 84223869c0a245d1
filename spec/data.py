"""The data the spec trains and tests on: the sheets' own small arrays, generated sets and bundled ones
(scikit-learn's digits and moons), never downloaded at run time, and the loaders of the real files
(MNIST IDX, X.pt/y.pt) for runs that are given them. The spec owns its data: a submission provides
only what the sheet asks it to write. The reference solutions' report uses the same module."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    """Tensors of a train/test split: x float32 (N x D features, or N x 1 x H x W images), y int64
    class labels (N,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def two_moons(n_samples: int = 1000, noise: float = 0.15, seed: int = 0, test_size: float = 0.25) -> Split:
    """The two-moons data set (scikit-learn's make_moons) with a fixed noise and seed, split
    train/test with a stratified split of the same seed."""
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split

    if not isinstance(n_samples, int) or n_samples < 8:
        raise ValueError(f"n_samples must be an integer >= 8, got {n_samples!r}")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must lie in (0, 1), got {test_size!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    as_x = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)
    as_y = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.int64)
    return Split(as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test))


# ------------------------------------------------------------------------------ ex08 data sets
#: ex08's 15 training points, as the course's notebook ships them (x_train, y_train)
EX08_X = [3.3, 4.4, 5.5, 6.71, 6.93, 4.168, 9.779, 6.182, 7.59, 2.167, 7.042, 10.791, 5.313, 7.997, 3.1]
EX08_Y = [1.7, 2.76, 2.09, 3.19, 1.694, 1.573, 3.366, 2.596, 2.53, 1.221, 2.827, 3.465, 1.65, 2.904, 1.3]


def ex08_linear_data() -> tuple[np.ndarray, np.ndarray]:
    """The sheet's 15 points as the template hands them to ``train``: float32 arrays of shape (15, 1)."""
    return (np.array(EX08_X, dtype=np.float32)[:, None], np.array(EX08_Y, dtype=np.float32)[:, None])


def ex08_nonlinear_data(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A non-linear 1-D data set: y = sin(2x) + x^2 / 4 + N(0, 0.1^2) on x in [-3, 3], float32 (n, 1)."""
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-3, 3, n))
    y = np.sin(2 * x) + x**2 / 4 + rng.normal(scale=0.1, size=n)
    return x.astype(np.float32)[:, None], y.astype(np.float32)[:, None]


# ------------------------------------------------------------------------------ ps09 part 2
def ps09_data(folder=None, *, n: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """ps09 part 2's X and y: ``X.pt`` and ``y.pt`` from ``folder`` when given, else an embedded
    generated set (y = 2.5 x - 1 + N(0, 0.5^2), x ~ U(-2, 2)). Returns 1-D float32 tensors."""
    from pathlib import Path

    if folder is None:
        rng = np.random.default_rng(seed)
        x = rng.uniform(-2, 2, n)
        y = 2.5 * x - 1 + rng.normal(scale=0.5, size=n)
        return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    folder = Path(folder)
    tensors = []
    for name in ("X.pt", "y.pt"):
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ps09 part 2 needs X.pt and y.pt in {folder}")
        try:
            value = torch.load(path, weights_only=True)
        except Exception as exc:
            raise ValueError(f"{path} is not a tensor saved with torch.save: {exc}") from exc
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise ValueError(f"{path} must hold a floating-point tensor, got {type(value).__name__}")
        tensors.append(value.reshape(-1) if value.ndim == 2 and 1 in value.shape else value)
    x, y = tensors
    if x.ndim != 1 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"X.pt and y.pt must hold one value per sample, as many of each; got shapes "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    return x.float(), y.float()


# ------------------------------------------------------------------------------ MNIST / digits
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path) -> np.ndarray:
    """An IDX file (the MNIST format: magic 0x0000 <dtype> <ndim>, big-endian sizes, data), plain or
    gzip-compressed. Truncated files and wrong magic numbers give a ValueError naming the file."""
    import gzip
    from pathlib import Path

    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: broken gzip stream ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic number {raw[:4].hex() or 'missing'}; expected "
                         f"00 00 <type in {sorted(IDX_DTYPES)}> <ndim>)")
    dtype, ndim = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} of {header} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: {len(raw)} bytes, but shape {shape} of {dtype} needs {expected} (truncated?)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(folder, stem):
    from pathlib import Path

    folder = Path(folder)
    for base in (folder, folder / "MNIST" / "raw", folder / "raw"):
        for name in (stem, stem + ".gz"):
            if (base / name).is_file():
                return base / name
    raise FileNotFoundError(f"{folder}: no {stem}[.gz] (looked in ., MNIST/raw and raw)")


def load_mnist(folder) -> Split:
    """Real MNIST from the standard IDX files in ``folder`` (or torchvision's ``MNIST/raw`` layout),
    gzip or not: x as N x 784 floats in [0, 1], y as labels."""
    parts = {}
    for split, (images, labels) in MNIST_FILES.items():
        x = read_idx(_find_idx(folder, images))
        y = read_idx(_find_idx(folder, labels))
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{folder}: {split} images {x.shape} and labels {y.shape} do not match")
        parts[split] = (torch.tensor(x.reshape(len(x), -1), dtype=torch.float32) / 255.0,
                        torch.tensor(y.astype(np.int64)))
    return Split(parts["train"][0], parts["train"][1], parts["test"][0], parts["test"][1])


def digits_784(seed: int = 0, test_size: float = 0.25) -> Split:
    """The embedded stand-in for MNIST: scikit-learn's bundled 8 x 8 digits (1797 images), each
    scaled up to 28 x 28 by bilinear interpolation and to [0, 1], flattened to 784 inputs."""
    from sklearn.model_selection import train_test_split

    x, target = _digits_784_arrays()
    x_tr, x_te, y_tr, y_te = train_test_split(x, target, test_size=test_size, random_state=seed, stratify=target)
    return Split(torch.tensor(x_tr), torch.tensor(y_tr, dtype=torch.int64),
                 torch.tensor(x_te), torch.tensor(y_te, dtype=torch.int64))


@functools.lru_cache(maxsize=1)
def _digits_784_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digits at 28 x 28, flattened, and their labels: computed once per process, read-only
    (each split copies its parts into tensors of its own)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    big = torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False)
    x, target = big.reshape(len(big), -1).clamp(0, 1).numpy(), np.array(digits.target)
    x.setflags(write=False), target.setflags(write=False)
    return x, target


def digits_images(seed: int = 0, test_size: float = 0.25) -> Split:
    """scikit-learn's bundled digits as 1 x 8 x 8 images in [0, 1] (for the CNN of a7)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target, test_size=test_size, random_state=seed,
                                              stratify=digits.target)
    return Split(torch.tensor(x_tr), torch.tensor(y_tr, dtype=torch.int64),
                 torch.tensor(x_te), torch.tensor(y_te, dtype=torch.int64))


# ------------------------------------------------------------------------- housing (dl-a1 1(d))
BOSTON_TARGETS = ("medv", "MEDV", "target", "PRICE", "price")


def load_boston_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """Features and target from a Boston housing CSV (header row, numeric cells, target column
    named medv / MEDV / target / price, or else the last column)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such CSV file")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 3:
        raise ValueError(f"{path}: expected a header and at least two data rows")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    target = next((header.index(t) for t in BOSTON_TARGETS if t in header), len(header) - 1)
    try:
        table = np.array([[float(cell) for cell in row] for row in body])
    except ValueError as exc:
        raise ValueError(f"{path}: every cell must be a number ({exc})") from None
    if table.ndim != 2 or table.shape[1] != len(header):
        raise ValueError(f"{path}: every row must have {len(header)} cells")
    return np.delete(table, target, axis=1), table[:, target]


def load_boston_openml(data_home) -> tuple[np.ndarray, np.ndarray]:
    """Boston housing (OpenML data set 531, "boston") from scikit-learn's OpenML cache folder."""
    from sklearn.datasets import fetch_openml

    if not Path(data_home).is_dir():
        raise FileNotFoundError(f"{data_home}: no such OpenML cache folder")
    bunch = fetch_openml(name="boston", version=1, data_home=str(data_home), as_frame=False, parser="liac-arff")
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.float64)


def housing_data(csv_path=None, openml_home=None):
    """(x, y): Boston from a CSV or OpenML cache when given, else the bundled diabetes table."""
    if csv_path is not None:
        return load_boston_csv(csv_path)
    if openml_home is not None:
        return load_boston_openml(openml_home)
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)


# ----------------------------------------------------------------------- a7 logistic regression
def breast_cancer_data(dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The embedded data set: scikit-learn's bundled breast-cancer table, standardised columns,
    labels 0/1 (569 x 30)."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    return torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype)


TITANIC_FEATURES = ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare")


def load_titanic_csv(path) -> tuple[torch.Tensor, torch.Tensor]:
    """The Titanic table (Kaggle's train.csv columns): features Pclass, Sex (male = 1), Age (missing
    ages get the median), SibSp, Parch, Fare; target Survived."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such Titanic CSV file")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path}: the CSV file has no data rows")
    missing = [c for c in (*TITANIC_FEATURES, "Survived") if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    ages = [float(r["Age"]) for r in rows if r["Age"].strip()]
    median_age = float(np.median(ages)) if ages else 0.0
    features, target = [], []
    for line, row in enumerate(rows, start=2):
        try:
            features.append([float(row["Pclass"]), 1.0 if row["Sex"].strip().lower() == "male" else 0.0,
                             float(row["Age"]) if row["Age"].strip() else median_age, float(row["SibSp"]),
                             float(row["Parch"]), float(row["Fare"] or 0.0)])
            target.append(float(row["Survived"]))
        except ValueError as exc:
            raise ValueError(f"{path}, line {line}: {exc}") from None
    return torch.tensor(features, dtype=torch.float64), torch.tensor(target, dtype=torch.float64)
