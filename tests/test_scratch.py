"""The from-scratch (NumPy) formulas on their own: the interface, and each sampler exact in
distribution, the truncated normal in every regime of its window."""

import inspect
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from weightinit_cli import scratch, torch_init
from weightinit_cli.errors import ShapeError
from weightinit_cli.initspec import InitSpec, expected_std
from weightinit_cli.methods import METHODS

LAYOUTS = [(24, 40), (16, 8, 5), (16, 8, 3, 3), (8, 4, 3, 3, 3)]


def shape_for(name, shape):
    return shape[:2] if name == "sparse" else shape


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_has_its_function_in_both_backends(name):
    for module, rng_name in ((scratch, "rng"), (torch_init, "generator")):
        params = inspect.signature(getattr(module, name)).parameters
        assert list(params)[0] == "shape"
        assert params[rng_name].kind is inspect.Parameter.KEYWORD_ONLY
        assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("shape", LAYOUTS, ids=str)
def test_function_init_and_sample_are_one(name, shape):
    shape = shape_for(name, shape)
    a = getattr(scratch, name)(shape, rng=np.random.default_rng(4))
    b = scratch.init(name, shape, rng=np.random.default_rng(4))
    c = scratch.sample(InitSpec.create(name), shape, np.random.default_rng(4))
    assert a.dtype == np.float32 and a.shape == shape and a.flags.c_contiguous
    assert np.isfinite(a).all()
    assert np.array_equal(a, b) and np.array_equal(a, c)


@pytest.mark.parametrize("name", [m.name for m in METHODS.values() if m.random])
def test_one_rng_gives_different_tensors_and_one_state_the_same(name):
    rng = np.random.default_rng(1)
    first = scratch.init(name, (20, 30), rng=rng)
    second = scratch.init(name, (20, 30), rng=rng)
    assert not np.array_equal(first, second)
    assert np.array_equal(first, scratch.init(name, (20, 30), rng=np.random.default_rng(1)))
    assert not np.array_equal(scratch.init(name, (20, 30)), scratch.init(name, (20, 30)))


def test_lsuv_starts_orthogonal_with_its_gain():
    ours = scratch.lsuv((30, 20), rng=np.random.default_rng(2), gain=0.7)
    assert np.array_equal(
        ours, scratch.orthogonal((30, 20), rng=np.random.default_rng(2), gain=0.7)
    )


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (3, 0, 3, 3), (0,)])
def test_empty_weights(shape):
    for name in ("normal", "xavier_uniform", "he_normal", "orthogonal", "torch_default"):
        if len(shape) < 2 and name != "normal":
            continue
        w = scratch.init(name, shape, rng=np.random.default_rng(0))
        assert w.dtype == np.float32 and w.shape == shape


def test_uniform_reaches_the_float32_range():
    """high - low can exceed float32's range; the weights must still be finite and uniform."""
    w = scratch.uniform((20000,), rng=np.random.default_rng(0), a=-3e38, b=3e38)
    assert np.isfinite(w).all()
    assert stats.kstest(w / 3e38, stats.uniform(-1, 2).cdf).pvalue > 1e-3


def test_uniform_and_normal_are_their_distributions():
    u = scratch.uniform((40000,), rng=np.random.default_rng(0), a=-1.0, b=2.0)
    assert u.min() >= -1.0 and u.max() <= 2.0
    assert stats.kstest(u, stats.uniform(-1.0, 3.0).cdf).pvalue > 1e-3
    z = scratch.normal((40000,), rng=np.random.default_rng(0), mean=0.5, std=3.0)
    assert stats.kstest(z, stats.norm(0.5, 3.0).cdf).pvalue > 1e-3


# --------------------------------------------------------------------------- truncated normal

REGIMES = [
    (0.0, 1.0, -2.0, 2.0),  # the default: most of the mass
    (0.5, 2.0, -1.0, 0.75),  # skewed, around the mean
    (0.0, 1.0, 10.0, 11.0),  # narrow, far from the mean
    (0.0, 1e7, -2.0, 2.0),  # narrow against a huge std: nearly uniform
    (1.0, 1.0, 3.0, 1e30),  # one-sided: the upper tail from 2 std out
    (0.0, 1.0, -1e30, -4.0),  # one-sided: the lower tail from 4 std out
    (0.0, 1.0, 2.5, 3.0),  # narrow, in the tail
    (0.0, 1.0, -3.0, -2.5),  # the same, mirrored
    (0.0, 1.0, 0.2, 6.0),  # right of the mean, wide
    (0.0, 1.0, 40.0, 40.5),  # 40 std out, where the normal CDF underflows
    (2.0, 0.01, 1.999, 2.0005),  # narrow around the mean
]


@pytest.mark.parametrize("mean,std,a,b", REGIMES, ids=str)
def test_truncated_normal_is_exact_in_every_regime(mean, std, a, b):
    x = scratch.trunc_normal((20000,), rng=np.random.default_rng(1), mean=mean, std=std, a=a, b=b)
    assert x.dtype == np.float32
    assert x.min() >= np.float32(a) and x.max() <= np.float32(b)
    theory = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    assert stats.kstest(x.astype(np.float64), theory.cdf).pvalue > 1e-3


def test_truncated_normal_far_tail_has_the_tail_mean():
    """Z - c given c <= Z <= c + 1/2, c = 40: mean 1/c - 2/c³ + ... (Mills ratio)."""
    c = 40.0
    x = scratch.trunc_normal((100000,), rng=np.random.default_rng(2), a=c, b=c + 0.5)
    assert (x.astype(np.float64) - c).mean() == pytest.approx(1 / c - 2 / c**3, rel=0.02)


class CountingRng:
    """A numpy Generator that counts the random numbers it hands out."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.drawn = 0

    def __getattr__(self, name):
        method = getattr(self.rng, name)

        def counted(*args, **kwargs):
            out = method(*args, **kwargs)
            self.drawn += np.size(out)
            return out

        return counted


@pytest.mark.parametrize("low", [-50.0, -3.0, -1.0, -0.3, 0.0, 0.4, 1.0, 2.5, 5.0, 12.0, 60.0])
def test_truncated_normal_cost_is_bounded_for_every_window(low):
    """Plain rejection from N(0, 1) would take ~500 draws per value on [2.5, 3] and
    forever on [12, 13]; each proposal here is kept with probability above 1/3."""
    n = 5000
    for width in (1e-6, 0.01, 0.3, 1.0, 3.0, 100.0):
        rng = CountingRng(0)
        x = scratch.trunc_normal((n,), rng=rng, a=low, b=low + width)
        assert x.min() >= np.float32(low) and x.max() <= np.float32(low + width)
        # two numbers per proposal at most, kept with probability > 1/3, and some slack
        assert rng.drawn / n < 6.5, (low, width, rng.drawn / n)


def test_truncated_normal_std_so_small_it_is_a_point():
    w = scratch.trunc_normal((10,), rng=np.random.default_rng(0), mean=5.0, std=1e-300)
    assert (w == 2.0).all()  # all the mass at the end of [-2, 2] nearest the mean


def test_variance_scaling_truncated_normal_is_keras():
    """N(0, s²) cut at ±2s, s = std/0.8796: the same law, scaled, as a standard normal
    cut at ±2."""
    shape = (400, 500)
    w = scratch.variance_scaling(shape, rng=np.random.default_rng(3), scale=2.0)
    std = expected_std("variance_scaling", shape, {"scale": 2.0})
    s = std / 0.87962566103423978
    assert stats.kstest(w.ravel()[::4] / s, stats.truncnorm(-2, 2).cdf).pvalue > 1e-3
    assert w.std() == pytest.approx(std, rel=0.01)


# --------------------------------------------------------------------------- orthogonal


@pytest.mark.parametrize("shape", [(40, 30), (30, 40), (10, 3, 2, 2)], ids=str)
def test_orthogonal_is_haar(shape):
    """The first column (row, when wide) of a Haar Q is uniform on the sphere in R^n: its
    first entry squared is Beta(1/2, (n-1)/2), positive half the time; and so is any
    entry, the last included (a missing sign fix shows there too)."""
    draws = [scratch.orthogonal(shape, rng=np.random.default_rng(s)) for s in range(300)]
    flat = np.stack([d.reshape(shape[0], -1).astype(np.float64) for d in draws])
    n = max(flat.shape[1:])
    law = stats.beta(0.5, (n - 1) / 2)
    for entry in (flat[:, 0, 0], flat[:, -1, -1], flat[:, 3, 1]):
        assert stats.kstest(entry**2, law.cdf).pvalue > 1e-3
        assert abs((entry > 0).mean() - 0.5) < 0.1


def test_orthogonal_first_entries_match_torch():
    ours = [scratch.orthogonal((40, 30), rng=np.random.default_rng(s))[0, 0] for s in range(300)]
    theirs = [
        nn.init.orthogonal_(torch.empty(40, 30), generator=torch.Generator().manual_seed(s))[0, 0]
        for s in range(300)
    ]
    assert stats.ks_2samp(ours, torch.stack(theirs).numpy()).pvalue > 1e-3


def test_orthogonal_gain_and_entries():
    w = scratch.orthogonal((300, 200, 2), rng=np.random.default_rng(0), gain=3.0)
    flat = w.reshape(300, -1).astype(np.float64)
    assert np.abs(flat @ flat.T - 9 * np.eye(300)).max() < 1e-4
    # Entries of a Haar (semi-)orthogonal matrix are close to N(0, 1/max(rows, cols)).
    sample = flat.ravel()[::7] * math.sqrt(400) / 3.0
    assert stats.kstest(sample, "norm").pvalue > 1e-3


def test_delta_orthogonal_is_an_orthogonal_centre_tap():
    shape = (48, 32, 3, 5)
    w = scratch.delta_orthogonal(shape, rng=np.random.default_rng(0), gain=2.0)
    centre = w[:, :, 1, 2].astype(np.float64)
    assert np.abs(centre.T @ centre - 4 * np.eye(32)).max() < 1e-5
    w[:, :, 1, 2] = 0
    assert not w.any()
    wide = scratch.delta_orthogonal((8, 16, 4), rng=np.random.default_rng(0))[:, :, 2]
    assert np.abs(wide @ wide.T - np.eye(8)).max() < 1e-5  # centre of an even kernel: k // 2
    dense = scratch.delta_orthogonal((20, 30), rng=np.random.default_rng(0))
    assert np.array_equal(dense, scratch.orthogonal((20, 30), rng=np.random.default_rng(0)))


# --------------------------------------------------------------------------- identity, sparse


def test_identity_eye_and_dirac():
    assert np.array_equal(scratch.identity((3, 5)), np.eye(3, 5, dtype=np.float32))
    w = scratch.identity((6, 2, 3, 5), groups=3)
    ones = np.argwhere(w == 1)
    assert ones.tolist() == [[g * 2 + i, i, 1, 2] for g in range(3) for i in range(2)]
    assert w.sum() == 6


@pytest.mark.parametrize("sparsity", [0.1, 0.7])
def test_sparse_zero_rows_are_uniform(sparsity):
    rows, cols = 500, 900
    w = scratch.sparse((rows, cols), rng=np.random.default_rng(6), sparsity=sparsity, std=0.5)
    zeros = w == 0
    assert (zeros.sum(axis=0) == math.ceil(sparsity * rows)).all()
    assert stats.chisquare(zeros.sum(axis=1)).pvalue > 1e-3  # no row zeroed more often
    kept = w[~zeros].astype(np.float64)
    assert stats.kstest(kept, stats.norm(0, 0.5).cdf).pvalue > 1e-3


def test_sparse_and_torch_default_shape_errors():
    with pytest.raises(ShapeError, match="Dense \\(2-D\\) weights only"):
        scratch.sparse((4, 4, 3))
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        scratch.torch_default((4,))
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        scratch.torch_default_bias((4,), 4)
