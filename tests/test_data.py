"""Datasets: deterministic, shaped for the model, split and scaled, learnable where they
should be, and every user mistake a WinitError naming the field."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from weightinit_cli.data import Dataset, _stratified_split, make_dataset
from weightinit_cli.errors import WinitError
from weightinit_cli.shapes import SHAPES2D_CLASSES, SHAPES3D_CLASSES

# (name, input_shape, num_classes) for every generated dataset, several shapes each.
GENERATED = [
    ("spirals", [2], 3),
    ("spirals", [2], 5),
    ("blobs", [2], 4),
    ("blobs", [1], 3),
    ("blobs", [7], 6),
    ("teacher", [10], 3),
    ("teacher", [3, 8, 8], 4),
    ("teacher", [1, 6, 6, 6], 2),
    ("gaussian", [5], 10),
    ("gaussian", [2, 8, 8], 3),
    ("gaussian", [1, 6, 6, 6], 4),
    ("shapes2d", [1, 8, 8], len(SHAPES2D_CLASSES)),
    ("shapes2d", [3, 16, 12], 4),
    ("shapes3d", [1, 6, 6, 6], len(SHAPES3D_CLASSES)),
    ("shapes3d", [2, 8, 10, 6], 3),
]
IDS = [f"{n}-{'x'.join(map(str, s))}-k{k}" for n, s, k in GENERATED]


def make(name, shape, k, **kw):
    kw.setdefault("samples", 600)
    return make_dataset(name, input_shape=shape, num_classes=k, **kw)


def flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1).astype(np.float64)


def nearest_centroid_accuracy(d: Dataset) -> float:
    xtr, xte = flat(d.x_train), flat(d.x_test)
    centroids = np.stack([xtr[d.y_train == c].mean(axis=0) for c in range(d.num_classes)])
    dist = ((xte[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    return float((dist.argmin(axis=1) == d.y_test).mean())


def linear_least_squares_accuracy(d: Dataset) -> float:
    xtr = np.c_[flat(d.x_train), np.ones(d.n_train)]
    xte = np.c_[flat(d.x_test), np.ones(d.n_test)]
    w, *_ = np.linalg.lstsq(xtr, np.eye(d.num_classes)[d.y_train], rcond=None)
    return float(((xte @ w).argmax(axis=1) == d.y_test).mean())


def rows(x: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in x.reshape(len(x), -1)}


# --------------------------------------------------------------------------- basics


@pytest.mark.parametrize(("name", "shape", "k"), GENERATED, ids=IDS)
def test_shapes_dtypes_split_sizes_and_labels(name, shape, k):
    d = make(name, shape, k, samples=500, test_fraction=0.2)
    assert isinstance(d, Dataset)
    assert d.name == name and d.num_classes == k and d.input_shape == tuple(shape)
    assert d.x_train.shape == (400, *shape) and d.x_test.shape == (100, *shape)
    assert d.y_train.shape == (400,) and d.y_test.shape == (100,)
    assert d.x_train.dtype == np.float32 and d.x_test.dtype == np.float32
    assert d.y_train.dtype == np.int64 and d.y_test.dtype == np.int64
    assert np.isfinite(d.x_train).all() and np.isfinite(d.x_test).all()
    assert set(np.unique(d.y_train)) == set(range(k))
    assert d.y_test.min() >= 0 and d.y_test.max() < k
    # Train and test are different samples (continuous data: no row repeats by chance).
    assert not rows(d.x_train) & rows(d.x_test)


@pytest.mark.parametrize(("name", "shape", "k"), GENERATED, ids=IDS)
def test_same_seed_same_data_other_seed_other_data(name, shape, k):
    a, b = make(name, shape, k, seed=3), make(name, shape, k, seed=3)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    c = make(name, shape, k, seed=4)
    assert not np.array_equal(a.x_train, c.x_train)


@pytest.mark.parametrize(("n", "fraction"), [(2048, 0.2), (1000, 0.25), (37, 0.1), (10, 0.5)])
def test_split_is_a_disjoint_stratified_partition(n, fraction):
    y = np.random.default_rng(0).permutation(np.arange(n) % 3)
    train, test = _stratified_split(y, fraction, np.random.default_rng(1))
    assert len(test) == round(n * fraction) and len(train) == n - len(test)
    assert not set(train) & set(test)
    assert sorted([*train, *test]) == list(range(n))
    for c in range(3):  # each class is split in proportion, to within one sample
        assert abs((y[test] == c).sum() - (y == c).sum() * fraction) <= 1


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.33])
def test_test_fraction_sets_the_split(fraction):
    d = make("blobs", [2], 3, samples=1000, test_fraction=fraction)
    assert d.n_test == round(1000 * fraction) and d.n_train + d.n_test == 1000


@pytest.mark.parametrize(
    ("name", "shape", "k"),
    [("spirals", [2], 3), ("blobs", [2], 5), ("shapes2d", [1, 8, 8], 10), ("gaussian", [4], 7)],
)
def test_classes_are_balanced(name, shape, k):
    d = make(name, shape, k, samples=2048)
    counts = np.bincount(np.r_[d.y_train, d.y_test], minlength=k)
    assert counts.max() - counts.min() <= 1
    train_counts = np.bincount(d.y_train, minlength=k)
    assert train_counts.max() - train_counts.min() <= 2


def test_shapes3d_classes_are_balanced():
    d = make("shapes3d", [1, 8, 8, 8], len(SHAPES3D_CLASSES), samples=800)
    counts = np.bincount(np.r_[d.y_train, d.y_test])
    assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("shape", [[10], [3, 8, 8], [1, 8, 8, 8]])
def test_teacher_labels_are_spread_over_every_class(shape):
    k = 5
    d = make("teacher", shape, k, samples=2048)
    frac = np.bincount(np.r_[d.y_train, d.y_test], minlength=k) / 2048
    assert frac.min() > 0.5 / k and frac.max() < 2.0 / k


# --------------------------------------------------------------------------- scale


@pytest.mark.parametrize(("name", "shape", "k"), [("spirals", [2], 3), ("blobs", [3], 4)])
def test_point_clouds_are_standardized_per_feature(name, shape, k):
    d = make(name, shape, k, samples=1000)
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(axis=0), 1, atol=1e-4)
    assert abs(d.x_test.mean()) < 0.2 and abs(d.x_test.std() - 1) < 0.2  # train statistics
    assert d.input_second_moment == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("name", "shape", "k"), [("shapes2d", [3, 8, 8], 5), ("shapes3d", [2, 6, 6, 6], 4)]
)
def test_images_are_standardized_with_one_scalar(name, shape, k):
    d = make(name, shape, k, samples=400)
    assert abs(float(d.x_train.mean())) < 1e-5
    assert float(d.x_train.std()) == pytest.approx(1.0, abs=1e-4)
    assert d.input_second_moment == pytest.approx(1.0, abs=1e-4)
    # One scalar: pixels keep their relative means (the border is darker than the centre).
    pixel_mean = d.x_train.mean(axis=(0, 1))
    assert pixel_mean.std() > 0.05


@pytest.mark.parametrize(("name", "shape"), [("gaussian", [3, 8, 8]), ("teacher", [20])])
def test_unit_gaussian_inputs(name, shape):
    d = make(name, shape, 3, samples=2000)
    assert abs(float(d.x_train.mean())) < 0.02
    assert float(d.x_train.std()) == pytest.approx(1.0, abs=0.02)
    assert d.input_second_moment == pytest.approx(float(np.mean(d.x_train.astype(float) ** 2)))


def test_standardize_keyword_overrides_the_default():
    raw = make("shapes2d", [1, 8, 8], 3, standardize=False)
    assert raw.x_train.mean() > 0.05  # shapes on a zero background
    scaled = make("gaussian", [4], 3, standardize=True)
    np.testing.assert_allclose(scaled.x_train.mean(axis=0), 0, atol=1e-5)


def test_noise_is_the_pixel_noise_of_shapes():
    clean = make("shapes2d", [1, 8, 8], 3, noise=0.0, standardize=False)
    values = np.unique(clean.x_train)
    assert values.min() == 0.0 and values.max() <= 1.0  # background exactly zero
    assert (clean.x_train == 0).mean() > 0.3


# --------------------------------------------------------------------------- learnability


@pytest.mark.parametrize(
    ("name", "shape", "k"),
    [
        ("shapes2d", [1, 8, 8], len(SHAPES2D_CLASSES)),
        ("shapes2d", [2, 16, 16], 5),
        ("shapes3d", [1, 8, 8, 8], len(SHAPES3D_CLASSES)),
    ],
)
def test_shapes_are_learnable(name, shape, k):
    d = make(name, shape, k, samples=1500)
    assert nearest_centroid_accuracy(d) > 2.5 / k  # chance is 1 / k


def test_blobs_and_teacher_are_learnable_gaussian_is_not():
    assert nearest_centroid_accuracy(make("blobs", [2], 4)) > 0.95
    assert linear_least_squares_accuracy(make("teacher", [10], 3, samples=2000)) > 0.6
    assert linear_least_squares_accuracy(make("gaussian", [10], 4, samples=2000)) < 0.4


@pytest.mark.parametrize("k", [2, 3, 5])
def test_spirals_are_not_linearly_separable(k):
    d = make("spirals", [2], k, samples=2048, noise=0.0)
    assert linear_least_squares_accuracy(d) < 0.8  # 3 arms: about 0.55


# --------------------------------------------------------------------------- user errors


@pytest.mark.parametrize("shape", [[3], [1, 2], [2, 8, 8]])
def test_spirals_need_two_features(shape):
    with pytest.raises(WinitError, match=r"model\.input_shape.*2-D"):
        make("spirals", shape, 3)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("blobs", [1, 8, 8]),
        ("shapes2d", [8, 8]),
        ("shapes2d", [1, 7, 8]),
        ("shapes3d", [1, 8, 8]),
        ("shapes3d", [1, 6, 5, 6]),
        ("digits", [8, 8]),
    ],
)
def test_impossible_input_shapes_name_the_field(name, shape):
    with pytest.raises(WinitError, match=r"model\.input_shape"):
        make(name, shape, 3)


@pytest.mark.parametrize(
    ("name", "shape", "classes"),
    [("shapes2d", [1, 8, 8], SHAPES2D_CLASSES), ("shapes3d", [1, 6, 6, 6], SHAPES3D_CLASSES)],
)
def test_too_many_shape_classes(name, shape, classes):
    make(name, shape, len(classes), samples=100)
    with pytest.raises(WinitError, match=rf"model\.num_classes.*{len(classes)} shape classes"):
        make(name, shape, len(classes) + 1)


@pytest.mark.parametrize(
    ("samples", "k", "fraction"), [(2, 3, 0.2), (4, 3, 0.5), (3, 3, 0.5), (20, 2, 0.01)]
)
def test_too_few_samples_names_data_samples(samples, k, fraction):
    with pytest.raises(WinitError, match=r"data\.samples"):
        make("blobs", [2], k, samples=samples, test_fraction=fraction)


# --------------------------------------------------------------------------- npz


def save(tmp_path, **arrays):
    p = tmp_path / "data.npz"
    np.savez(p, **arrays)
    return p


def test_npz_loads_the_users_arrays_as_they_are(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, (200, 3, 4)).astype(np.float64)
    y = np.arange(200) % 4
    d = make("npz", [3, 4], 4, path=save(tmp_path, x=x, y=y.astype(np.int32)))
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.n_train + d.n_test == 200 and d.x_train.shape[1:] == (3, 4)
    allx = np.concatenate([d.x_train, d.x_test])
    ally = np.concatenate([d.y_train, d.y_test])
    order = np.lexsort(flat(allx).T[::-1])
    expected = np.lexsort(x.reshape(200, -1).T[::-1])
    np.testing.assert_allclose(allx[order], x[expected].astype(np.float32))
    np.testing.assert_array_equal(ally[order], y[expected])
    assert allx.mean() == pytest.approx(5.0, abs=0.5)  # not standardized by default
    scaled = make("npz", [3, 4], 4, path=save(tmp_path, x=x, y=y), standardize=True)
    assert abs(float(scaled.x_train.mean())) < 1e-5  # one scalar for non-flat inputs
    assert float(scaled.x_train.std()) == pytest.approx(1.0, abs=1e-4)
    flat_in = make("npz", [12], 4, path=save(tmp_path, x=x.reshape(200, 12), y=y), standardize=True)
    np.testing.assert_allclose(flat_in.x_train.mean(axis=0), 0, atol=1e-5)  # per feature


def test_npz_accepts_float_integer_labels_and_caps_at_samples(tmp_path):
    x = np.random.default_rng(0).normal(size=(300, 2))
    y = (np.arange(300) % 3).astype(np.float32)
    d = make("npz", [2], 3, path=save(tmp_path, x=x, y=y), samples=100)
    assert d.n_train + d.n_test == 100
    assert set(np.unique(d.y_train)) == {0, 1, 2}


def npz_error(tmp_path, k=3, shape=(2,), **arrays):
    with pytest.raises(WinitError) as info:
        make("npz", list(shape), k, path=save(tmp_path, **arrays))
    message = str(info.value)
    assert "data.path" in message
    return message


X = np.zeros((10, 2))
Y = np.arange(10) % 3


def test_npz_missing_path_and_missing_file(tmp_path):
    with pytest.raises(WinitError, match=r"data\.path"):
        make("npz", [2], 3)
    with pytest.raises(WinitError, match=r"data\.path.*no such file"):
        make("npz", [2], 3, path=tmp_path / "nope.npz")


def test_npz_not_an_npz(tmp_path):
    text = tmp_path / "data.npz"
    text.write_text("x,y\n1,2\n")
    with pytest.raises(WinitError, match=r"data\.path.*not a NumPy \.npz"):
        make("npz", [2], 3, path=text)
    npy = tmp_path / "data.npy"
    np.save(npy, X)
    with pytest.raises(WinitError, match=r"data\.path.*not a \.npz archive"):
        make("npz", [2], 3, path=npy)


def test_npz_missing_arrays(tmp_path):
    assert "missing array 'x'" in npz_error(tmp_path, features=X, y=Y)
    message = npz_error(tmp_path, x=X, labels=Y)
    assert "missing array 'y'" in message and "labels" in message


def test_npz_length_mismatch(tmp_path):
    assert "len(x)=10, len(y)=9" in npz_error(tmp_path, x=X, y=Y[:9])


def test_npz_x_not_numeric(tmp_path):
    assert "x must be numeric" in npz_error(tmp_path, x=np.array([["a", "b"]] * 10), y=Y)
    assert "pickle" in npz_error(tmp_path, x=np.array([{}] * 10, dtype=object), y=Y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_npz_x_not_finite(tmp_path, bad):
    x = X.copy()
    x[3, 1] = bad
    assert "NaN or inf" in npz_error(tmp_path, x=x, y=Y)


def test_npz_y_not_integer(tmp_path):
    assert "integer class labels" in npz_error(tmp_path, x=X, y=Y + 0.5)
    assert "integer class labels" in npz_error(tmp_path, x=X, y=np.array(list("abcdefghij")))
    assert "1-D" in npz_error(tmp_path, x=X, y=Y[:, None])


@pytest.mark.parametrize("y", [Y - 1, Y + 1])
def test_npz_y_out_of_range(tmp_path, y):
    message = npz_error(tmp_path, x=X, y=y)
    assert "outside [0, 3)" in message and "model.num_classes=3" in message


def test_npz_shape_mismatch_says_both_shapes(tmp_path):
    message = npz_error(tmp_path, shape=(3, 4), x=np.zeros((10, 4, 3)), y=Y)
    assert "[4, 3]" in message and "[3, 4]" in message and "model.input_shape" in message


def test_npz_too_few_rows(tmp_path):
    with pytest.raises(WinitError, match=r"data\.samples.*data\.path file has 2"):
        make("npz", [2], 3, path=save(tmp_path, x=X[:2], y=Y[:2]))


# --------------------------------------------------------------------------- digits


@pytest.mark.parametrize(("shape", "k"), [([64], 10), ([1, 8, 8], 10), ([64], 4)])
def test_digits(shape, k):
    datasets = pytest.importorskip("sklearn.datasets")
    d = make("digits", shape, k, samples=5000)
    assert d.n_train + d.n_test == int((datasets.load_digits().target < k).sum())
    assert d.x_train.shape[1:] == tuple(shape)
    assert set(np.unique(d.y_train)) == set(range(k))
    assert abs(float(d.x_train.mean())) < 1e-5
    assert float(d.x_train.std()) == pytest.approx(1.0, abs=1e-4)
    assert nearest_centroid_accuracy(d) > 0.85


def test_digits_samples_caps_and_num_classes_limits():
    pytest.importorskip("sklearn")
    d = make("digits", [64], 10, samples=500)
    assert d.n_train + d.n_test == 500
    with pytest.raises(WinitError, match=r"model\.num_classes.*10"):
        make("digits", [64], 11)


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(WinitError) as info:
        make("digits", [64], 10)
    assert str(info.value) == (
        "the digits dataset needs scikit-learn: pip install 'weightinit-cli[digits]'"
    )


# --------------------------------------------------------------------------- speed


def test_no_torch_import():
    import subprocess

    code = "import sys, weightinit_cli.data; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
