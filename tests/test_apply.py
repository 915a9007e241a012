"""apply_weight_init and print_weight_stats on real models."""

import math

import pytest
import torch
from torch import nn
from torch.nn import init as nn_init

from weightinit_cli import apply_weight_init, print_weight_stats
from weightinit_cli.errors import ShapeError, WinitError
from weightinit_cli.probe import weight_stats


def seed_model():
    return nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Conv2d(3, 16, kernel_size=3, padding=1))


def test_seed_example_runs_as_written(capsys):
    model = seed_model()
    apply_weight_init(model, method="he")
    print_weight_stats(model)
    out = capsys.readouterr().out
    for header in ("layer", "mean", "std", "min", "max", "Linear", "Conv2d", "16×3×3×3"):
        assert header in out


@pytest.mark.parametrize("backend", ["scratch", "torch"])
def test_he_gives_sqrt_two_over_fan_in_on_every_layer(backend):
    model = nn.Sequential(
        nn.Linear(512, 400), nn.ReLU(), nn.Linear(400, 300), nn.ReLU(), nn.Conv2d(64, 64, 3)
    )
    report = apply_weight_init(model, method="he", backend=backend, seed=0)
    for record, stat in zip(report, weight_stats(model), strict=True):
        assert record.target_std == pytest.approx(math.sqrt(2 / record.fan_in))
        assert record.gain == pytest.approx(math.sqrt(2))
        assert stat.weight.std == pytest.approx(record.target_std, rel=0.03)
    assert all((m.bias == 0).all() for m in model if isinstance(m, (nn.Linear, nn.Conv2d)))


def test_report_records_what_was_applied():
    model = nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.BatchNorm1d(4), nn.Linear(4, 2))
    report = apply_weight_init(model, "xavier_normal", gain="auto", seed=1)
    assert [r.name for r in report] == ["0", "3"]
    assert report.skipped == []  # the BatchNorm1d's parameters get the norm rule
    norm = [p.detail for p in report.parameters if p.name.startswith("2.")]
    assert norm == ["norm: ones", "norm: zeros"]
    first, last = report
    assert (first.shape, first.fan_in, first.fan_out) == ((4, 6), 6, 4)
    assert first.method == "xavier_normal" and first.activation == "tanh"
    assert first.gain == pytest.approx(5 / 3)
    assert first.target_std == pytest.approx(5 / 3 * math.sqrt(2 / 10))
    assert last.activation == "linear" and last.gain == 1.0


@pytest.mark.parametrize(
    "act,gain",
    [
        (nn.ReLU(), math.sqrt(2)),
        (nn.LeakyReLU(0.2), math.sqrt(2 / 1.04)),
        (nn.Tanh(), 5 / 3),
        (nn.Sigmoid(), 1.0),
        (nn.SELU(), 0.75),
        (nn.GELU(), 1.5335304411955362),
    ],
)
def test_auto_gain_follows_the_activation_past_dropout_and_norm(act, gain):
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Dropout(0.1), act, nn.Linear(8, 2))
    for method in ("he_normal", "xavier_uniform", "orthogonal"):
        report = apply_weight_init(model, method, gain="auto", seed=0)
        assert report[0].gain == pytest.approx(gain)
        assert report[0].activation_source == "module"


def test_auto_gain_cannot_tell_a_custom_module():
    class Custom(nn.Module):
        def forward(self, x):
            return torch.relu(x)

    report = apply_weight_init(
        nn.Sequential(nn.Linear(4, 4), Custom()), "xavier_normal", gain="auto"
    )
    assert (report[0].activation, report[0].activation_source, report[0].gain) == (
        "linear",
        "assumed",
        1.0,
    )


def test_numeric_gain():
    model = nn.Sequential(nn.Linear(100, 100))
    report = apply_weight_init(model, "he_normal", gain=3.0, seed=0)
    assert report[0].target_std == pytest.approx(0.3)
    with pytest.raises(WinitError, match="sparse takes no gain"):
        apply_weight_init(model, "sparse", gain=3.0)


@pytest.mark.parametrize("backend", ["scratch", "torch"])
def test_same_seed_same_weights(backend):
    a, b, c = seed_model(), seed_model(), seed_model()
    apply_weight_init(a, "orthogonal", backend=backend, seed=42, bias="torch_default")
    apply_weight_init(b, "orthogonal", backend=backend, seed=42, bias="torch_default")
    apply_weight_init(c, "orthogonal", backend=backend, seed=43, bias="torch_default")
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_torch_backend_equals_torch_nn_init_layer_by_layer():
    model = seed_model()
    apply_weight_init(model, "xavier_uniform", backend="torch", seed=5)
    g = torch.Generator().manual_seed(5)
    expected = [
        nn_init.xavier_uniform_(torch.empty(5, 10), generator=g),
        nn_init.xavier_uniform_(torch.empty(16, 3, 3, 3), generator=g),
    ]
    assert torch.equal(model[0].weight, expected[0]) and torch.equal(model[2].weight, expected[1])


@pytest.mark.parametrize("backend", ["scratch", "torch"])
def test_torch_default_bias(backend):
    model = nn.Sequential(nn.Linear(64, 256))
    apply_weight_init(model, "torch_default", backend=backend, seed=0)
    bias = model[0].bias
    assert bias.abs().max() <= 1 / 8 and bias.std().item() == pytest.approx(
        1 / 8 / math.sqrt(3), rel=0.15
    )


def test_identity_needs_square_layers():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    with pytest.raises(ShapeError, match="identity cannot apply to layer '2'.*4 inputs to 3"):
        apply_weight_init(model, "identity")
    conv = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=2))
    apply_weight_init(conv, "identity")
    x = torch.randn(1, 4, 5, 5)
    assert torch.equal(conv(x), x)


def test_conv_transpose_and_conv1d_are_initialized():
    model = nn.Sequential(nn.Conv1d(3, 6, 3), nn.ConvTranspose2d(6, 4, 2))
    report = apply_weight_init(model, "he_normal", seed=0)
    assert [r.kind for r in report] == ["Conv1d", "ConvTranspose2d"]
    assert report[1].fan_in == 4 * 4 and report[1].fan_out == 6 * 4


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"method": "glorious"}, "unknown init method 'glorious'"),
        ({"method": "he", "backend": "jax"}, "backend must be"),
        ({"method": "he", "gain": "big"}, "gain must be default, auto or a number"),
        ({"method": "he", "bias": "ones"}, "bias must be"),
        ({"method": "he", "sparsity": 0.2}, "he_normal does not take sparsity"),
    ],
)
def test_bad_calls(kwargs, message):
    with pytest.raises(WinitError, match=message):
        apply_weight_init(seed_model(), **kwargs)
