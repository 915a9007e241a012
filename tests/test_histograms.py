"""histograms.histogram: the buckets NumPy draws, the sums in float64, and what is not a
number counted but left out."""

import numpy as np
import pytest
import torch

from weightinit_cli.histograms import BINS, histogram


@pytest.mark.parametrize("shape", [(64, 64), (410, 64), (16, 8, 3, 3)])
def test_buckets_are_numpys(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    tensor = torch.randn(shape).relu() + torch.randn(shape) * 0.1
    h = histogram(tensor)
    values = tensor.numpy().reshape(-1)
    counts, edges = np.histogram(values, bins=BINS, range=(values.min(), values.max()))
    assert h.counts == counts.tolist() and h.num == values.size
    assert h.limits == pytest.approx(edges[1:].tolist())
    assert (h.min, h.max) == (float(values.min()), float(values.max()))
    assert h.sum == pytest.approx(float(values.astype(np.float64).sum()))
    assert h.sum_squares == pytest.approx(float(np.square(values.astype(np.float64)).sum()))


def test_non_finite_values_are_counted_not_bucketed() -> None:
    h = histogram(torch.tensor([1.0, float("nan"), 3.0, float("inf")]))
    assert h.num == 4 and sum(h.counts) == 2 and (h.min, h.max) == (1.0, 3.0)
    assert h.sum == 4.0 and h.sum_squares == 10.0
    empty = histogram(torch.tensor([float("nan")]))
    assert empty.num == 1 and empty.counts == [0.0]


def test_a_constant_is_one_bucket() -> None:
    h = histogram(torch.zeros(5, 5))
    assert h.counts == [25.0] and h.limits == [0.0] and h.sum_squares == 0.0
