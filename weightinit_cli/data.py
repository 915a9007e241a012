"""Datasets for the training runs: generated in code or shipped, never downloaded.

Every dataset is a pure function of its arguments and ``seed``: NumPy only (the
training loop converts to torch), float32 inputs of shape ``(N, *input_shape)``,
int64 class labels in ``[0, num_classes)``, and a deterministic, stratified
train/test split.

Datasets (``DATASETS`` has a one-line description of each):

* ``spirals``: interleaved 2-D spirals, one arm per class, after the CS231n
  "neural networks case study" (https://cs231n.github.io/neural-networks-case-study/),
  generalised to evenly spaced arms. ``noise`` is the std of the Gaussian jitter on
  the angle in radians (CS231n uses 0.2). Not linearly separable.
* ``blobs``: one isotropic Gaussian cluster per class in ``[F]`` dimensions, in the
  manner of ``sklearn.datasets.make_blobs``; centres on the unit circle for F = 2,
  evenly spaced on a line for F = 1, random unit vectors otherwise. ``noise`` is
  the cluster std.
* ``teacher``: N(0, 1) inputs of any shape labelled by the argmax of a fixed random
  teacher MLP (two tanh layers of width 32) on the flattened input: the
  teacher-student setting of Gardner & Derrida (1989) and Saad & Solla (1995). The
  teacher's output biases are set so that classes are about equally frequent;
  ``noise`` is Gaussian noise on its standardized logits (label noise near the
  decision boundaries).
* ``gaussian``: N(0, 1) inputs of any shape with balanced random labels. Nothing to
  learn: for activation/gradient statistics; the loss stays at chance.
* ``shapes2d``: ``[C, H, W]`` images of a filled shape (see ``SHAPES2D_CLASSES``)
  at a random size and position, the same mask in every channel at a random
  per-channel intensity, plus Gaussian pixel noise of std ``noise``.
* ``shapes3d``: ``[C, D, H, W]`` volumes, the same idea with ``SHAPES3D_CLASSES``.
* ``digits``: the real 8x8 handwritten digits bundled with scikit-learn
  (``sklearn.datasets.load_digits``: the test part of the UCI "Optical Recognition
  of Handwritten Digits" set, Alpaydin & Kaynak 1998; 1797 images). Needs the
  optional ``digits`` extra; nothing is downloaded.
* ``npz``: the user's own ``.npz`` file (``data.path``) holding arrays ``x`` and ``y``.

Standardization uses statistics of the train split only, applied to both splits:
per feature for the point clouds (spirals, blobs), one scalar mean/std for the
images and volumes (shapes2d, shapes3d, digits) so their spatial structure is
kept. teacher and gaussian are already N(0, 1) and npz is the user's data, so by
default they are left as they are; ``standardize=True/False`` overrides any of this.

``samples`` is the number of examples generated; for ``digits`` and ``npz`` it is
an upper bound (a seeded random subset is taken when the source holds more).
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import WinitError
from .limits import MAX_ARRAY_BYTES, MAX_ARRAY_VALUES, clip, excerpt, size_text
from .shapes import balanced_labels, require_shape, shapes2d, shapes3d

DATASETS: dict[str, str] = {
    "spirals": "interleaved 2-D spirals, one arm per class (input [2])",
    "blobs": "one Gaussian cluster per class (input [F])",
    "teacher": "N(0,1) inputs labelled by a fixed random tanh MLP (any input shape)",
    "gaussian": "N(0,1) inputs, random labels: nothing to learn (any input shape)",
    "shapes2d": "images of filled shapes (input [C, H, W], H, W >= 8)",
    "shapes3d": "volumes of solid shapes (input [C, D, H, W], each >= 6)",
    "digits": "scikit-learn's bundled 8x8 handwritten digits (input [64] or [1, 8, 8])",
    "npz": "your own file: arrays x and y in the .npz at data.path",
}

DIGITS_AVAILABLE = 1797
_DIGITS_MISSING = "the digits dataset needs scikit-learn: pip install 'weightinit-cli[digits]'"
_TEACHER_WIDTH = 32
_TEACHER_REFERENCE = 2048


@dataclass
class Dataset:
    """A train/test split. Plain data: x float32 ``(N, *input_shape)``, y int64 ``(N,)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str
    input_shape: tuple[int, ...]

    @property
    def input_second_moment(self) -> float:
        """E[x^2] over the train inputs: the input scale that the variance theory starts from."""
        x = self.x_train.astype(np.float64, copy=False)
        return float(np.mean(np.square(x))) if x.size else 0.0

    @property
    def n_train(self) -> int:
        return int(len(self.y_train))

    @property
    def n_test(self) -> int:
        return int(len(self.y_test))


# --------------------------------------------------------------------------- entry point


def make_dataset(
    name: str,
    *,
    input_shape: Sequence[int],
    num_classes: int,
    samples: int = 2048,
    seed: int = 0,
    noise: float = 0.1,
    test_fraction: float = 0.2,
    path: str | os.PathLike[str] | None = None,
    standardize: bool | None = None,
) -> Dataset:
    """Build dataset `name` shaped for a model with `input_shape` and `num_classes`.

    The arguments are a validated config's (config.py checks their types and ranges);
    what only the data can tell (a shape a dataset cannot make, too few samples to split,
    a bad .npz) raises a WinitError naming the config field.
    """
    key, shape, k, n = name, tuple(input_shape), num_classes, samples
    gen_ss, split_ss = np.random.SeedSequence([seed, _name_code(key)]).spawn(2)
    rng = np.random.default_rng(gen_ss)

    if key in ("digits", "npz"):
        if key == "digits":
            x, y = _digits(shape, k)
        else:
            x, y = _load_npz(path, shape, k)
        if len(y) > n:
            keep = np.sort(rng.choice(len(y), size=n, replace=False))
            x, y = x[keep], y[keep]
            source = f"data.samples={n}"
        else:
            source = f"the {'data.path file' if key == 'npz' else 'digits dataset'} has {len(y)}"
        _check_split_size(len(y), k, test_fraction, source=source)
    else:
        _check_split_size(n, k, test_fraction, source=f"data.samples={n}")
        x, y = _GENERATORS[key](rng, n, shape, k, noise, seed)

    train_idx, test_idx = _stratified_split(y, test_fraction, np.random.default_rng(split_ss))
    x_train, x_test = x[train_idx], x[test_idx]

    mode = _STANDARDIZE_DEFAULT[key]
    if standardize is not None:
        fallback = "feature" if len(shape) == 1 else "scalar"
        mode = (mode or fallback) if standardize else None
    if mode is not None:
        x_train, x_test = _standardize(x_train, x_test, per_feature=mode == "feature")

    return Dataset(
        x_train=np.ascontiguousarray(x_train, dtype=np.float32),
        y_train=np.ascontiguousarray(y[train_idx], dtype=np.int64),
        x_test=np.ascontiguousarray(x_test, dtype=np.float32),
        y_test=np.ascontiguousarray(y[test_idx], dtype=np.int64),
        num_classes=k,
        name=key,
        input_shape=shape,
    )


def _check_split_size(n: int, k: int, test_fraction: float, *, source: str) -> None:
    n_test = round(n * test_fraction)
    if n < k:
        raise WinitError(
            f"data.samples: {source} samples, fewer than the {k} classes (model.num_classes)"
        )
    if n_test < 1 or n - n_test < k:
        raise WinitError(
            f"data.samples: {source} samples, too few to split with "
            f"data.test_fraction={test_fraction} into a test set of at least 1 and a "
            f"train set of at least {k} (one per class)"
        )


def _name_code(key: str) -> int:
    # A stable per-dataset stream (Python's hash() is salted per process).
    return sum((i + 1) * ord(c) for i, c in enumerate(key))


def _stratified_split(
    y: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle, group by class, take evenly spaced positions as test: each class is split
    in proportion (to within one sample) and the test set has round(n * fraction)."""
    n = len(y)
    n_test = round(n * test_fraction)
    perm = rng.permutation(n)
    order = perm[np.argsort(y[perm], kind="stable")]
    positions = ((np.arange(n_test) + 0.5) * (n / n_test)).astype(np.int64)
    is_test = np.zeros(n, dtype=bool)
    is_test[positions] = True
    return rng.permutation(order[~is_test]), rng.permutation(order[is_test])


def _standardize(
    x_train: np.ndarray, x_test: np.ndarray, *, per_feature: bool
) -> tuple[np.ndarray, np.ndarray]:
    xt = x_train.astype(np.float64, copy=False)
    if per_feature:
        mean, std = xt.mean(axis=0), xt.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
    else:
        mean, std = xt.mean(), xt.std()
        std = std if std > 1e-12 else 1.0
    scale = (1.0 / std).astype(np.float32) if per_feature else np.float32(1.0 / std)
    mean = np.asarray(mean, dtype=np.float32)
    return (x_train - mean) * scale, (x_test - mean) * scale


# --------------------------------------------------------------------------- generators

_Maker = Callable[
    [np.random.Generator, int, tuple[int, ...], int, float, int], tuple[np.ndarray, np.ndarray]
]


def _spirals(rng, n, shape, k, noise, seed):
    if shape != (2,):
        raise WinitError(
            f"model.input_shape: spirals is 2-D and needs input_shape [2]; got {list(shape)}"
        )
    y = balanced_labels(rng, n, k)
    r = rng.uniform(0.0, 1.0, n)
    # CS231n: t = linspace(4j, 4j + 4) + 0.2 * randn; here the arms start evenly spaced.
    t = 2 * np.pi * y / k + 4.0 * r + noise * rng.standard_normal(n)
    x = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
    return x.astype(np.float32), y


def _blobs(rng, n, shape, k, noise, seed):
    require_shape("blobs", shape, len(shape) == 1, "a flat input [F] with F >= 1")
    f = shape[0]
    if f == 1:
        centres = np.linspace(-1.0, 1.0, k)[:, None]
    elif f == 2:
        angle = 2 * np.pi * np.arange(k) / k + rng.uniform(0, 2 * np.pi)
        centres = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    else:
        centres = rng.standard_normal((k, f))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = balanced_labels(rng, n, k)
    x = centres[y] + noise * rng.standard_normal((n, f))
    return x.astype(np.float32), y


def _teacher(rng, n, shape, k, noise, seed):
    d = math.prod(shape)
    t_rng = np.random.default_rng([seed, _name_code("teacher"), 1])  # the fixed teacher
    w1 = (t_rng.standard_normal((d, _TEACHER_WIDTH)) / math.sqrt(d)).astype(np.float32)
    w2 = t_rng.standard_normal((_TEACHER_WIDTH, _TEACHER_WIDTH)) / math.sqrt(_TEACHER_WIDTH)
    w3 = t_rng.standard_normal((_TEACHER_WIDTH, k)) / math.sqrt(_TEACHER_WIDTH)
    b1, b2 = (
        0.1 * t_rng.standard_normal(_TEACHER_WIDTH),
        0.1 * t_rng.standard_normal(_TEACHER_WIDTH),
    )

    def head(pre: np.ndarray) -> np.ndarray:
        return np.tanh(np.tanh(pre + b1) @ w2 + b2) @ w3

    # Balance the classes on a reference batch that depends on the seed only, so the
    # teacher is one fixed function whatever `samples` is. For x ~ N(0, I), x @ w1 is
    # N(0, C) with C = w1^T w1 = V diag(lam) V^T, which g @ (sqrt(lam) V^T), g ~ N(0, I),
    # samples exactly at a cost that does not grow with the input size.
    lam, v = np.linalg.eigh(w1.T.astype(np.float64) @ w1)
    g = t_rng.standard_normal((_TEACHER_REFERENCE, _TEACHER_WIDTH))
    ref = head(g @ (np.sqrt(np.clip(lam, 0, None))[:, None] * v.T))
    mu, sd = ref.mean(axis=0), ref.std(axis=0) + 1e-12
    ref = (ref - mu) / sd
    # Output biases by gradient ascent on the dual of "every class gets 1/k of the
    # mass" (a concave problem), stopping once within sampling error of balance.
    bias = np.zeros(k)
    target = _TEACHER_REFERENCE / k
    tolerance = max(0.05, 2 / math.sqrt(target))
    for step in range(300):
        counts = np.bincount(np.argmax(ref + bias, axis=1), minlength=k)
        deficit = (target - counts) / target
        if np.abs(deficit).max() <= tolerance:
            break
        bias += 0.1 / math.sqrt(1 + step / 50) * deficit

    x = rng.standard_normal((n, *shape), dtype=np.float32)
    z = (head(x.reshape(n, -1) @ w1) - mu) / sd + bias + noise * rng.standard_normal((n, k))
    return x, np.argmax(z, axis=1).astype(np.int64)


def _gaussian(rng, n, shape, k, noise, seed):
    x = rng.standard_normal((n, *shape), dtype=np.float32)
    return x, balanced_labels(rng, n, k)


def _digits(shape: tuple[int, ...], k: int) -> tuple[np.ndarray, np.ndarray]:
    require_shape("digits", shape, shape in ((64,), (1, 8, 8)), "[64] or [1, 8, 8]")
    if k > 10:
        raise WinitError(f"model.num_classes: digits has 10 classes; got {k}")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise WinitError(_DIGITS_MISSING) from None
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float32) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    keep = y < k
    return x[keep].reshape(-1, *shape), y[keep]


def _load_npz(
    path: str | os.PathLike[str] | None, shape: tuple[int, ...], k: int
) -> tuple[np.ndarray, np.ndarray]:
    if path is None or str(path).strip() == "":
        raise WinitError("data.path: the npz dataset needs data.path, a .npz file with x and y")
    p = os.fspath(path)
    if os.path.isdir(p):
        raise WinitError(f"data.path: {p} is a directory, not a .npz file")
    if not os.path.isfile(p):
        raise WinitError(f"data.path: no such file: {p}")

    def bad(problem: str) -> WinitError:
        return WinitError(f"data.path: {p}: {problem}")

    # np.load reads a whole .npy at once: tell the kinds apart by their first bytes, so
    # that only an archive is opened, and only its headers before the size check
    try:
        with open(p, "rb") as f:
            magic = f.read(6)
    except OSError as err:
        raise bad(f"cannot read it ({err.strerror})") from None
    if magic == b"\x93NUMPY":
        raise bad(
            "not a .npz archive but a single .npy array; save numpy.savez(path, x=..., y=...)"
        )
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise bad("not a NumPy .npz file (save one with numpy.savez(path, x=..., y=...))")
    try:
        archive = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise bad("not a NumPy .npz file (save one with numpy.savez(path, x=..., y=...))") from None
    with archive:
        arrays = {}
        for key in ("x", "y"):
            if key not in archive.files:
                found = clip(", ".join(archive.files) or "nothing")
                raise bad(f"missing array {key!r} (the file holds: {found})")
            _check_array_size(archive, key, bad)
            try:
                arrays[key] = archive[key]
            except (ValueError, OSError, zipfile.BadZipFile) as exc:
                raise bad(f"array {key!r} cannot be read without pickle ({exc})") from None
    x, y = arrays["x"], arrays["y"]

    if y.ndim != 1:
        raise bad(f"y must be 1-D (one label per sample); got shape {list(y.shape)}")
    if x.ndim < 1:
        raise bad("x must have a sample dimension; got a scalar")
    if len(x) != len(y):
        raise bad(f"x and y have different lengths: len(x)={len(x)}, len(y)={len(y)}")
    if x.dtype.kind not in "biuf":
        raise bad(f"x must be numeric; got dtype {x.dtype}")
    if tuple(x.shape[1:]) != shape:
        raise bad(
            f"x has per-sample shape {list(x.shape[1:])} but model.input_shape is {list(shape)}"
        )
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        bad_rows = int((~np.isfinite(x.reshape(len(x), -1))).any(axis=1).sum())
        raise bad(f"x contains NaN or inf (in {bad_rows} samples)")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.array_equal(y, np.round(y)):
            raise bad("y must hold integer class labels; got non-integer values")
    elif y.dtype.kind not in "biu":
        raise bad(f"y must hold integer class labels; got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= k):
        raise bad(
            f"y has labels from {y.min():g} to {y.max():g}, outside [0, {k}) "
            f"for model.num_classes={k}"
        )
    return x, y.astype(np.int64)


def _check_array_size(
    archive: np.lib.npyio.NpzFile, key: str, bad: Callable[[str], WinitError]
) -> None:
    """Refuse an array of the archive whose header claims more than winit will hold, before
    any of it is allocated or unpacked (600 bytes can claim 10^12 values)."""
    try:
        member = archive.zip.getinfo(f"{key}.npy")
        with archive.zip.open(member) as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
    except (KeyError, OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise bad(f"array {key!r} has no readable .npy header") from None
    values = math.prod(shape)
    if values > MAX_ARRAY_VALUES or values * dtype.itemsize > MAX_ARRAY_BYTES:
        raise bad(
            f"array {key!r} has shape {excerpt(list(shape))} ({values:,} values of "
            f"{dtype.itemsize} bytes); the limit is {MAX_ARRAY_VALUES:,} values and "
            f"{size_text(MAX_ARRAY_BYTES)}"
        )
    if member.file_size > values * dtype.itemsize + (1 << 16):  # a header is under 64 KiB
        raise bad(f"array {key!r} unpacks to more bytes than its header says it holds")


_GENERATORS: dict[str, _Maker] = {
    "spirals": _spirals,
    "blobs": _blobs,
    "teacher": _teacher,
    "gaussian": _gaussian,
    "shapes2d": shapes2d,
    "shapes3d": shapes3d,
}

# How each dataset is standardized by default: per feature, one scalar, or not at all.
_STANDARDIZE_DEFAULT: dict[str, str | None] = {
    "spirals": "feature",
    "blobs": "feature",
    "teacher": None,
    "gaussian": None,
    "shapes2d": "scalar",
    "shapes3d": "scalar",
    "digits": "scalar",
    "npz": None,
}
