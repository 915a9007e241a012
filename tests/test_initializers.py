"""Scratch (NumPy) and torch initializers: against torch.nn.init, against each other,
and against the std each method aims for."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from torch.nn import init as nn_init

from weightinit_cli import initspec, methods, scratch, torch_init
from weightinit_cli.errors import ShapeError, WinitError
from weightinit_cli.fans import VARIANCE_PRESERVING_GAINS
from weightinit_cli.initspec import InitSpec, expected_std
from weightinit_cli.methods import METHODS

SHAPES = {"dense": (256, 512), "conv2d": (64, 32, 3, 3), "conv3d": (16, 8, 3, 3, 3)}
# Parameters that make a method's sample interesting (not the degenerate default).
PARAMS = {
    "trunc_normal": {"std": 0.5, "a": -1.0, "b": 0.75},
    "variance_scaling": {"scale": 2.0, "mode": "fan_avg"},
    "normal": {"mean": 0.1, "std": 0.05},
    "uniform": {"a": -0.2, "b": 0.3},
}
RANDOM = [m.name for m in METHODS.values() if m.random]
CASES = [
    (name, kind) for name in RANDOM for kind in SHAPES if not (name == "sparse" and kind != "dense")
]
POOL = 100_000  # elements pooled per cell: the sampling error of a std is then ~0.3%


def sample_pair(name, shape, seed=0, draws=1, **params):
    """`draws` weights of `shape` from each backend, one seeded stream each, stacked."""
    params = {**PARAMS.get(name, {}), **params}
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    ours = np.stack([scratch.init(name, shape, rng=rng, **params) for _ in range(draws)])
    theirs = torch.stack(
        [torch_init.init(name, shape, generator=gen, **params) for _ in range(draws)]
    )
    return ours, theirs.numpy(), params


@pytest.mark.parametrize("name,kind", CASES)
def test_scratch_and_torch_agree(name, kind):
    """Same distribution (two-sample KS) and the std the method aims for, within 2%, on
    weights of the shape (several weights pooled where one is small)."""
    shape = SHAPES[kind]
    draws = math.ceil(POOL / math.prod(shape))
    ours, theirs, params = sample_pair(name, shape, draws=draws)
    assert ours.dtype == np.float32 and ours.shape == (draws, *shape)
    assert stats.ks_2samp(ours.ravel(), theirs.ravel()).pvalue > 1e-3
    target = expected_std(name, shape, params)
    assert ours.std() == pytest.approx(target, rel=0.02)
    assert theirs.std() == pytest.approx(target, rel=0.02)


@pytest.mark.parametrize("name", RANDOM)
def test_same_seed_same_tensor(name):
    a, ta, _ = sample_pair(name, (32, 48), seed=3)
    b, tb, _ = sample_pair(name, (32, 48), seed=3)
    c, tc, _ = sample_pair(name, (32, 48), seed=4)
    assert np.array_equal(a, b) and np.array_equal(ta, tb)
    assert not np.array_equal(a, c) and not np.array_equal(ta, tc)


TORCH_EQUIVALENTS = [
    ("xavier_uniform", {"gain": 2.0}, lambda t, g: nn_init.xavier_uniform_(t, 2.0, generator=g)),
    ("xavier_normal", {}, lambda t, g: nn_init.xavier_normal_(t, generator=g)),
    ("he_uniform", {}, lambda t, g: nn_init.kaiming_uniform_(t, generator=g)),
    ("he_normal", {}, lambda t, g: nn_init.kaiming_normal_(t, generator=g)),
    (
        "he_normal",
        {"mode": "fan_out", "nonlinearity": "leaky_relu", "a": 0.2},
        lambda t, g: nn_init.kaiming_normal_(t, 0.2, "fan_out", "leaky_relu", generator=g),
    ),
    (
        "he_uniform",
        {"nonlinearity": "identity"},
        lambda t, g: nn_init.kaiming_uniform_(t, nonlinearity="linear", generator=g),
    ),
    (
        "lecun_normal",
        {},
        lambda t, g: nn_init.kaiming_normal_(t, nonlinearity="linear", generator=g),
    ),
    (
        "lecun_uniform",
        {"gain": 2.0},
        lambda t, g: nn_init.kaiming_uniform_(t, nonlinearity="linear", generator=g).mul_(2.0),
    ),
    ("orthogonal", {"gain": 0.5}, lambda t, g: nn_init.orthogonal_(t, 0.5, generator=g)),
    ("lsuv", {"gain": 0.5}, lambda t, g: nn_init.orthogonal_(t, 0.5, generator=g)),
    ("delta_orthogonal", {}, lambda t, g: nn_init.orthogonal_(t, generator=g)),
    ("trunc_normal", {}, lambda t, g: nn_init.trunc_normal_(t, generator=g)),
    ("normal", {"mean": 1.0}, lambda t, g: nn_init.normal_(t, 1.0, generator=g)),
    ("uniform", {"a": -3.0}, lambda t, g: nn_init.uniform_(t, -3.0, generator=g)),
    ("identity", {}, lambda t, g: nn_init.eye_(t)),
    (
        "torch_default",
        {},
        lambda t, g: nn_init.kaiming_uniform_(t, a=math.sqrt(5), generator=g),
    ),
]


@pytest.mark.parametrize("name,params,reference", TORCH_EQUIVALENTS, ids=lambda x: str(x)[:20])
def test_torch_backend_is_torch_nn_init(name, params, reference):
    ours = torch_init.init(name, (24, 40), generator=torch.Generator().manual_seed(7), **params)
    theirs = reference(torch.empty(24, 40), torch.Generator().manual_seed(7))
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("nonlinearity", sorted(VARIANCE_PRESERVING_GAINS))
def test_torch_he_samples_the_gains_torch_lacks(nonlinearity):
    """gelu/elu/silu (and an explicit gain): normal_ with the spec's std, bit for bit."""
    shape = (64, 80)
    std = VARIANCE_PRESERVING_GAINS[nonlinearity] / math.sqrt(80)
    ours = torch_init.he_normal(
        shape, generator=torch.Generator().manual_seed(2), nonlinearity=nonlinearity
    )
    theirs = nn_init.normal_(
        torch.empty(shape), 0.0, std, generator=torch.Generator().manual_seed(2)
    )
    assert torch.equal(ours, theirs)
    explicit = torch_init.he_uniform(shape, generator=torch.Generator().manual_seed(2), gain=3.0)
    bound = math.sqrt(3.0) * 3.0 / math.sqrt(80)
    assert torch.equal(
        explicit,
        nn_init.uniform_(
            torch.empty(shape), -bound, bound, generator=torch.Generator().manual_seed(2)
        ),
    )


def test_torch_dirac_per_group():
    ours = torch_init.identity((6, 2, 3, 3), groups=3)
    assert torch.equal(ours, nn_init.dirac_(torch.empty(6, 2, 3, 3), groups=3))


def test_torch_sparse_is_torch_algorithm_with_seeded_zeros():
    """Same normal draws as torch.nn.init.sparse_; the zeros come from the generator too."""
    ours = torch_init.sparse((30, 20), generator=torch.Generator().manual_seed(5), sparsity=0.3)
    theirs = nn_init.sparse_(torch.empty(30, 20), 0.3, generator=torch.Generator().manual_seed(5))
    both = (ours != 0) & (theirs != 0)
    assert both.sum() > 0.4 * ours.numel()
    assert torch.equal(ours[both], theirs[both])
    again = torch_init.sparse((30, 20), generator=torch.Generator().manual_seed(5), sparsity=0.3)
    assert torch.equal(ours, again)


def test_torch_default_matches_nn_linear_reset():
    torch.manual_seed(11)
    layer = nn.Linear(40, 24)
    torch.manual_seed(11)
    weight = torch_init.init("torch_default", (24, 40))
    bias = torch_init.torch_default_bias_(torch.empty(24), (24, 40))
    assert torch.equal(weight, layer.weight.detach())
    assert torch.equal(bias, layer.bias.detach())


def test_scratch_torch_default_bias():
    b = scratch.torch_default_bias((24, 40, 3), 5000, rng=np.random.default_rng(0))
    bound = 1 / math.sqrt(120)
    assert b.dtype == np.float32 and b.shape == (5000,)
    assert -bound <= b.min() and b.max() <= bound
    assert stats.kstest(b, stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3
    assert not scratch.torch_default_bias((4, 0), 4).any()  # fan_in 0: bound 0


def test_fill_and_sample_read_the_spec_they_get():
    """A spec from for_layer (gain: auto folded in) is drawn as it stands."""
    spec = InitSpec.create("xavier_normal", gain="auto").for_layer("tanh")
    shape = (300, 200)
    ours = torch_init.fill_(torch.empty(shape), spec, generator=torch.Generator().manual_seed(1))
    theirs = nn_init.xavier_normal_(
        torch.empty(shape), gain=5 / 3, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(ours, theirs)
    w = scratch.sample(spec, shape, np.random.default_rng(1))
    assert w.std() == pytest.approx(5 / 3 * math.sqrt(2 / 500), rel=0.02)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_backends_never_resolve_parameters_again(monkeypatch, name):
    spec = InitSpec.create(name, PARAMS.get(name))

    def no(*args, **kwargs):
        raise AssertionError("parameters resolved again")

    monkeypatch.setattr(methods, "resolve_params", no)
    monkeypatch.setattr(initspec, "resolve_params", no)
    shape = (8, 8) if name in ("sparse", "identity") else (8, 4, 3)
    assert scratch.sample(spec, shape, np.random.default_rng(0)).shape == shape
    assert torch_init.fill_(torch.empty(shape), spec).shape == shape


@pytest.mark.parametrize("shape", [(64, 128), (128, 64), (32, 16, 3, 3), (8, 32, 3, 3)])
@pytest.mark.parametrize("backend", ["scratch", "torch"])
def test_orthogonal_is_orthogonal(shape, backend):
    if backend == "scratch":
        w = scratch.orthogonal(shape, rng=np.random.default_rng(0), gain=1.0).astype(np.float64)
    else:
        w = torch_init.orthogonal(shape, generator=torch.Generator().manual_seed(0)).double()
        w = w.numpy()
    flat = w.reshape(shape[0], -1)
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    tol = 1e-5 * math.sqrt(max(flat.shape))
    assert np.abs(gram - np.eye(gram.shape[0])).max() < tol


IDENTITY_LAYERS = {
    "dense": (nn.Linear(8, 8), (5, 8)),
    "conv1d": (nn.Conv1d(4, 4, 3, padding=1), (2, 4, 9)),
    "conv2d": (nn.Conv2d(4, 4, 3, padding=1), (2, 4, 6, 6)),
    "conv2d_k5": (nn.Conv2d(3, 3, 5, padding=2), (2, 3, 7, 7)),
    "grouped": (nn.Conv2d(6, 6, 3, padding=1, groups=3), (2, 6, 5, 5)),
    "conv3d": (nn.Conv3d(2, 2, 3, padding=1), (2, 2, 4, 4, 4)),
}


@pytest.mark.parametrize("kind", IDENTITY_LAYERS)
@pytest.mark.parametrize("backend", ["scratch", "torch"])
def test_identity_is_the_identity_map(kind, backend):
    layer, input_shape = IDENTITY_LAYERS[kind]
    shape, groups = tuple(layer.weight.shape), getattr(layer, "groups", 1)
    if backend == "scratch":
        w = torch.from_numpy(scratch.identity(shape, groups=groups))
    else:
        w = torch_init.init("identity", shape, groups=groups)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.zero_()
        x = torch.randn(input_shape)
        assert torch.equal(layer(x), x)
    assert w.std(unbiased=False).item() == pytest.approx(
        expected_std("identity", shape, groups=groups)
    )


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("backend", ["scratch", "torch"])
def test_sparse_zero_count_per_column(sparsity, backend):
    rows, cols = 37, 50
    if backend == "scratch":
        w = scratch.sparse((rows, cols), rng=np.random.default_rng(1), sparsity=sparsity)
    else:
        w = torch_init.sparse(
            (rows, cols), generator=torch.Generator().manual_seed(1), sparsity=sparsity
        ).numpy()
    zeros_per_column = (w == 0).sum(axis=0)
    assert (zeros_per_column == math.ceil(sparsity * rows)).all()


@pytest.mark.parametrize(
    "name,params,value",
    [("zeros", {}, 0.0), ("ones", {}, 1.0), ("constant", {"value": 0.25}, 0.25)],
)
def test_constants(name, params, value):
    ours = scratch.init(name, (6, 4, 3), **params)
    theirs = torch_init.init(name, (6, 4, 3), **params)
    assert ours.dtype == np.float32 and (ours == value).all() and (theirs.numpy() == value).all()


def test_variance_scaling_special_cases():
    shape = (300, 200)
    assert expected_std("variance_scaling", shape, {"scale": 1.0}) == expected_std(
        "lecun_normal", shape
    )
    assert expected_std("variance_scaling", shape, {"scale": 2.0}) == pytest.approx(
        expected_std("he_normal", shape)
    )
    assert expected_std("variance_scaling", shape, {"mode": "fan_avg"}) == pytest.approx(
        expected_std("xavier_normal", shape)
    )


@pytest.mark.parametrize("distribution", ["normal", "truncated_normal", "uniform"])
@pytest.mark.parametrize("backend", ["scratch", "torch"])
def test_variance_scaling_hits_target_std(distribution, backend):
    """Keras-style truncation: the corrected std is the target std, within sampling error."""
    shape = (512, 512)
    if backend == "scratch":
        w = scratch.variance_scaling(shape, rng=np.random.default_rng(0), distribution=distribution)
    else:
        gen = torch.Generator().manual_seed(0)
        w = torch_init.variance_scaling(shape, generator=gen, distribution=distribution).numpy()
    target = 1 / math.sqrt(512)
    assert w.std() == pytest.approx(target, rel=0.01)
    if distribution == "truncated_normal":
        cut = 2 * target / methods.TRUNCATED_NORMAL_STD_CORRECTION
        assert np.abs(w).max() <= cut * (1 + 1e-6)
        assert np.abs(w).max() > 0.95 * cut  # cut there, not narrower


def test_trunc_normal_uses_absolute_cutoffs_and_no_correction():
    w = scratch.trunc_normal((400, 400), rng=np.random.default_rng(0), std=1.0, a=-0.5, b=2.0)
    assert w.min() >= -0.5 and w.max() <= 2.0
    theory = stats.truncnorm(-0.5, 2.0)
    assert w.std() == pytest.approx(theory.std(), rel=0.01)
    assert w.mean() == pytest.approx(theory.mean(), abs=0.01)


BAD = [
    ("he_normal", (4, 4), {"mode": "fan_sideways"}, WinitError, "mode"),
    ("xavier_normal", (4, 4), {"std": 2}, WinitError, "does not take std"),
    ("normal", (4, 4), {"std": -1}, WinitError, "std must be >= 0"),
    ("trunc_normal", (4, 4), {"a": 1.0, "b": 1.0}, WinitError, "needs a < b"),
    ("sparse", (4, 4), {"sparsity": 1.0}, WinitError, "sparsity must be in"),
    ("nope", (4, 4), {}, WinitError, "unknown init method"),
    ("sparse", (4, 4, 3), {}, ShapeError, "Dense \\(2-D\\) weights only"),
    ("xavier_normal", (4,), {}, ShapeError, "at least 2 dimensions"),
    ("torch_default", (4,), {}, ShapeError, "at least 2 dimensions"),
    ("orthogonal", (4,), {}, ShapeError, "at least 2 dimensions"),
    ("delta_orthogonal", (4,), {}, ShapeError, "at least 2 dimensions"),
    ("lsuv", (4,), {}, ShapeError, "at least 2 dimensions"),
    ("identity", (4,), {}, ShapeError, "2-D to 5-D"),
    ("identity", (2, 2, 2, 2, 2, 2), {}, ShapeError, "2-D to 5-D"),
    ("identity", (4, 2, 3, 3), {"groups": 3}, ShapeError, "do not split into 3 groups"),
]


@pytest.mark.parametrize("name,shape,params,error,message", BAD, ids=lambda x: str(x)[:24])
@pytest.mark.parametrize("backend", ["scratch", "torch"])
def test_bad_arguments_are_clear_errors(backend, name, shape, params, error, message):
    build = scratch.init if backend == "scratch" else torch_init.init
    with pytest.raises(error, match=message):
        build(name, shape, **params)


@pytest.mark.parametrize("module", [scratch, torch_init])
def test_a_parameter_a_method_does_not_take_is_an_error(module):
    with pytest.raises(WinitError, match="he_normal does not take groups"):
        module.he_normal((4, 4), groups=2)


def test_scratch_never_imports_torch():
    code = "import weightinit_cli.scratch, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
