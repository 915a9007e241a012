"""How scratch fills large arrays: chunked, threaded, reproducible whatever the thread count,
and still exact in distribution (across chunk boundaries, in the tails, in place)."""

import math
import multiprocessing
import os

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from weightinit_cli import apply_weight_init, scratch
from weightinit_cli.errors import WinitError

CHUNK = scratch.CHUNK
BIG = (600, 700)  # 420,000 elements: 4 chunks, the last one short
BIG_CONV = (64, 32, 9, 9)  # 165,888 elements: 2 chunks
ODD = (3, 43691)  # CHUNK + 1 elements: one into a second chunk, an odd one
SMALL = (30, 40)  # drawn from rng directly

CASES = [
    ("normal", {"mean": 0.1, "std": 0.05}),
    ("uniform", {"a": -0.2, "b": 0.3}),
    ("trunc_normal", {}),
    ("trunc_normal", {"std": 1.0, "a": 2.5, "b": 3.0}),  # inverse-CDF window
    ("he_uniform", {}),
    ("xavier_normal", {}),
    ("variance_scaling", {"distribution": "truncated_normal"}),
    ("torch_default", {}),
    ("orthogonal", {}),
    ("sparse", {"sparsity": 0.3}),
]


def draw(name, shape, seed=0, **params):
    return scratch.init(name, shape, rng=np.random.default_rng(seed), **params)


@pytest.mark.parametrize("name,params", CASES, ids=lambda x: str(x)[:24])
@pytest.mark.parametrize("shape", [BIG, BIG_CONV, ODD, SMALL], ids=str)
def test_thread_count_never_changes_the_values(monkeypatch, name, params, shape):
    if name == "sparse" and len(shape) != 2:
        return
    results = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv(scratch.THREADS_ENV, threads)
        assert scratch.init_threads() == int(threads)
        results.append(draw(name, shape, seed=5, **params))
    assert all(r.dtype == np.float32 and r.shape == shape for r in results)
    assert all(np.array_equal(results[0], r) for r in results[1:])


@pytest.mark.parametrize("name,params", CASES, ids=lambda x: str(x)[:24])
def test_seeds_make_tensors(name, params):
    a = draw(name, BIG, seed=1, **params)
    b = draw(name, BIG, seed=1, **params)
    c = draw(name, BIG, seed=2, **params)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    rng = np.random.default_rng(1)
    first = scratch.init(name, BIG, rng=rng, **params)
    second = scratch.init(name, BIG, rng=rng, **params)
    assert np.array_equal(first, a)
    assert not np.array_equal(first, second)


def test_chunks_are_independent_and_each_has_the_distribution():
    n_chunks = 8
    x = scratch.normal((n_chunks * CHUNK,), rng=np.random.default_rng(3)).astype(np.float64)
    chunks = x.reshape(n_chunks, CHUNK)
    se_mean = 1 / math.sqrt(CHUNK)
    se_var = math.sqrt(2 / CHUNK)
    assert np.abs(chunks.mean(axis=1)).max() < 5 * se_mean
    assert np.abs(chunks.var(axis=1) - 1).max() < 5 * se_var
    # Neighbouring chunks, and the two Box-Muller halves of a chunk (one shares each
    # radius with the other), are uncorrelated, in the values and in their squares.
    half = CHUNK // 2
    pairs = [(chunks[i], chunks[i + 1]) for i in range(n_chunks - 1)]
    pairs += [(c[:half], c[half:]) for c in chunks]
    for u, v in pairs:
        assert abs(np.corrcoef(u, v)[0, 1]) < 5 / math.sqrt(u.size)
        assert abs(np.corrcoef(u * u, v * v)[0, 1]) < 5 / math.sqrt(u.size)
    assert stats.kstest(x, "norm").pvalue > 1e-3
    # The elements on either side of each chunk boundary behave like any others.
    edges = np.concatenate([chunks[:, :64].ravel(), chunks[:, -64:].ravel()])
    assert stats.kstest(edges, "norm").pvalue > 1e-3


def test_uniform_chunks_have_the_distribution():
    n_chunks = 6
    x = scratch.uniform((n_chunks * CHUNK + 17,), rng=np.random.default_rng(4), a=-1.0, b=2.0)
    assert x.min() >= -1.0 and x.max() < 2.0
    assert stats.kstest(x, stats.uniform(-1.0, 3.0).cdf).pvalue > 1e-3
    chunks = x[: n_chunks * CHUNK].astype(np.float64).reshape(n_chunks, CHUNK)
    assert np.abs(chunks.mean(axis=1) - 0.5).max() < 5 * math.sqrt(0.75 / CHUNK)
    for i in range(n_chunks - 1):
        assert abs(np.corrcoef(chunks[i], chunks[i + 1])[0, 1]) < 5 / math.sqrt(CHUNK)


def test_normal_tails_reach_past_torchs():
    """u1 takes 32 bits: |z| reaches 6.7 std (torch's 24-bit Box-Muller stops at 5.8)."""
    x = scratch.normal((1 << 22,), rng=np.random.default_rng(0)).astype(np.float64)
    assert np.isfinite(x).all()
    beyond = (np.abs(x) > 4.5).sum()
    expected = x.size * 2 * stats.norm.sf(4.5)
    assert abs(beyond - expected) < 5 * math.sqrt(expected)
    assert np.abs(x).max() <= math.sqrt(-2 * math.log(2.0**-33)) + 1e-5


@pytest.mark.parametrize(
    "mean,std,a,b",
    [
        (0.0, 1.0, -2.0, 2.0),  # rejection
        (0.5, 2.0, -1.0, 0.75),  # rejection, skewed window
        (0.0, 1.0, 2.5, 3.0),  # inverse CDF, upper tail (mirrored)
        (0.0, 1.0, -3.0, -2.5),  # inverse CDF, lower tail
        (1.0, 1e4, -2.0, 2.0),  # inverse CDF, narrow window around the mean
        (0.0, 1.0, 10.0, 11.0),  # inverse CDF deep in the tail
    ],
)
def test_truncated_normal_is_exact_in_every_regime(mean, std, a, b):
    x = scratch.trunc_normal(
        (3 * CHUNK + 5,), rng=np.random.default_rng(1), mean=mean, std=std, a=a, b=b
    )
    assert x.min() >= np.float32(a) and x.max() <= np.float32(b)
    theory = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    assert stats.kstest(x.astype(np.float64), theory.cdf).pvalue > 1e-3


def test_truncated_normal_beyond_the_cdf_range():
    """A window 40 std out: exact rejection from an exponential proposal."""
    c, d = 40.0, 40.5
    x = scratch.trunc_normal((2 * CHUNK,), rng=np.random.default_rng(2), a=c, b=d)
    assert x.min() >= c and x.max() <= d
    # Z - c given Z > c is close to Exp(c), with mean a bit under 1/c.
    z = x.astype(np.float64) - c
    assert z.mean() == pytest.approx(1 / c - 1 / c**3, rel=0.02)
    mirrored = scratch.trunc_normal((1000,), rng=np.random.default_rng(2), a=-d, b=-c)
    assert mirrored.max() <= -c and mirrored.min() >= -d


def test_inverse_normal_cdf_matches_the_standard_library():
    from statistics import NormalDist

    p = np.concatenate(
        [np.random.default_rng(0).random(2000), np.logspace(-300, -1, 300), [0.075, 0.925]]
    )
    ours = scratch._ndtri(p)
    reference = np.array([NormalDist().inv_cdf(v) for v in p])
    np.testing.assert_allclose(ours, reference, rtol=1e-14)


@pytest.mark.parametrize("shape", [(700, 1600), (1600, 700), (64, 64, 3, 3), (1200, 1200)])
def test_big_orthogonal_is_orthogonal_and_haar(shape):
    w = scratch.orthogonal(shape, rng=np.random.default_rng(0), gain=1.0)
    flat = w.reshape(shape[0], -1).astype(np.float64)
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    assert np.abs(gram - np.eye(gram.shape[0])).max() < 1e-5
    # Entries of a Haar (semi-)orthogonal matrix are close to N(0, 1/max(rows, cols)).
    n = max(flat.shape)
    assert flat.std() == pytest.approx(1 / math.sqrt(n), rel=0.01)
    sample = flat.ravel()[:: max(1, flat.size // 20000)] * math.sqrt(n)
    assert stats.kstest(sample, "norm").pvalue > 1e-3


def test_orthogonal_signs_are_fair():
    """Without the sign fix Q's first column would lean one way; with it, no lean."""
    firsts = np.array(
        [scratch.orthogonal((40, 30), rng=np.random.default_rng(s))[0, 0] for s in range(400)]
    )
    assert abs((firsts > 0).mean() - 0.5) < 0.1
    theirs = torch.stack(
        [
            nn.init.orthogonal_(torch.empty(40, 30), generator=torch.Generator().manual_seed(s))
            for s in range(400)
        ]
    )
    assert stats.ks_2samp(firsts, theirs[:, 0, 0].numpy()).pvalue > 1e-3


@pytest.mark.parametrize("sparsity", [0.1, 0.7])
def test_big_sparse_zero_rows_are_uniform(sparsity):
    rows, cols = 500, 900
    w = scratch.sparse((rows, cols), rng=np.random.default_rng(6), sparsity=sparsity)
    zeros = w == 0
    assert (zeros.sum(axis=0) == math.ceil(sparsity * rows)).all()
    per_row = zeros.sum(axis=1)
    assert stats.chisquare(per_row).pvalue > 1e-3
    kept = w[~zeros].astype(np.float64)
    assert stats.kstest(kept, stats.norm(0, 0.01).cdf).pvalue > 1e-3


@pytest.mark.parametrize("name,params", CASES + [("identity", {}), ("zeros", {})])
@pytest.mark.parametrize("shape", [BIG, SMALL], ids=str)
def test_out_writes_in_place_the_same_values(name, params, shape):
    out = np.full(shape, np.nan, dtype=np.float32)
    result = scratch.init(name, shape, rng=np.random.default_rng(8), out=out, **params)
    assert result is out
    assert np.array_equal(out, draw(name, shape, seed=8, **params))


@pytest.mark.parametrize(
    "out",
    [
        np.empty((3, 4), dtype=np.float64),
        np.empty((4, 3), dtype=np.float32),
        np.empty((4, 6), dtype=np.float32)[:, ::2],
        [[0.0] * 4] * 3,
    ],
    ids=["dtype", "shape", "strided", "list"],
)
def test_out_must_fit(out):
    with pytest.raises(ValueError, match="out must be"):
        scratch.normal((3, 4), out=out)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_thread_count_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(scratch.THREADS_ENV, value)
    with pytest.raises(WinitError, match=scratch.THREADS_ENV):
        scratch.normal(BIG)


def test_default_thread_count(monkeypatch):
    monkeypatch.delenv(scratch.THREADS_ENV, raising=False)
    assert scratch.init_threads() >= 1
    monkeypatch.setenv(scratch.THREADS_ENV, "auto")
    assert scratch.init_threads() >= 1


def _child_fills(queue):
    queue.put(scratch.normal(BIG, rng=np.random.default_rng(9)).sum())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_wait_on_the_parents_threads(monkeypatch):
    monkeypatch.setenv(scratch.THREADS_ENV, "2")
    expected = scratch.normal(BIG, rng=np.random.default_rng(9)).sum()  # parent's pool exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_fills, args=(queue,))
    child.start()
    child.join(timeout=120)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung on the inherited thread pool")
    assert child.exitcode == 0 and queue.get(timeout=10) == expected


def _model():
    return nn.Sequential(
        nn.Conv2d(16, 64, 5), nn.ReLU(), nn.Flatten(), nn.Linear(600, 700), nn.Linear(700, 10)
    )


@pytest.mark.parametrize("method", ["he_normal", "orthogonal", "trunc_normal"])
def test_apply_writes_scratch_weights_in_place(method):
    """Into the parameter's memory when it can, by a copy otherwise: same values."""
    model = _model()
    expected_rng = np.random.default_rng(11)
    expected = [
        scratch.init(method, tuple(m.weight.shape), rng=expected_rng)
        for m in model
        if hasattr(m, "weight")
    ]
    plain = _model()
    before = [m.weight._version for m in plain if hasattr(m, "weight")]
    apply_weight_init(plain, method, seed=11)
    weights = [m.weight for m in plain if hasattr(m, "weight")]
    for w, want, version in zip(weights, expected, before, strict=True):
        assert np.array_equal(w.detach().numpy(), want)
        assert w._version > version  # autograd saw the write
    channels_last = _model().to(memory_format=torch.channels_last)
    apply_weight_init(channels_last, method, seed=11)
    conv = channels_last[0].weight
    assert not conv.is_contiguous()
    assert np.array_equal(conv.detach().contiguous().numpy(), expected[0])


def test_delta_orthogonal_is_an_orthogonal_centre_tap():
    shape = (48, 32, 3, 5)
    w = scratch.delta_orthogonal(shape, rng=np.random.default_rng(0), gain=2.0)
    centre = w[:, :, 1, 2].astype(np.float64)
    assert np.abs(centre.T @ centre - 4 * np.eye(32)).max() < 1e-5
    w[:, :, 1, 2] = 0
    assert not w.any()
    dense = scratch.delta_orthogonal((20, 30), rng=np.random.default_rng(0))
    assert np.array_equal(dense, scratch.orthogonal((20, 30), rng=np.random.default_rng(0)))
