"""Every parameter accounted for: the rule per module type, the per-projection and per-gate
draws, and the record of every named_parameters() entry (apply.py, parameters.py)."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from weightinit_cli.apply import apply_init, apply_weight_init
from weightinit_cli.initspec import InitSpec
from weightinit_cli.plan import NetworkPlan
from weightinit_cli.render.results import init_notes
from weightinit_cli.scratch import he_normal

METHODS = ("he_normal", "xavier_uniform", "orthogonal")
MIN_VALUES = 4000  # below this a sample std is too noisy for a 5% check (normal: 1.1% s.e.)


class WithParameter(nn.Module):
    """A user's module with a tensor of its own and a PReLU."""

    def __init__(self):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.randn(16, 64))
        self.proj = nn.Linear(64, 64)
        self.act = nn.PReLU()

    def forward(self, x):
        return self.act(self.proj(x + self.pos_embedding))


def mlp():
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU())


def cnn():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def transformer():
    layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=256, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


def lstm():
    return nn.LSTM(64, 64, num_layers=2, bidirectional=True)


def gru():
    return nn.GRU(64, 64)


def embedding():
    return nn.Sequential(nn.Embedding(1000, 64, padding_idx=0), nn.Linear(64, 10))


def attention():
    return nn.MultiheadAttention(128, 4, kdim=48, vdim=80, add_bias_kv=True)


def resnet():
    try:
        from torchvision.models import resnet18
    except Exception:  # beside the CPU torch, importing torchvision raises RuntimeError
        pytest.skip("torchvision does not import")
    return resnet18(num_classes=10)


ZOO = [mlp, cnn, transformer, lstm, gru, embedding, WithParameter, attention, resnet]


def method_std(method, shape):
    """The std `method` (default gain) prescribes for a weight of `shape`, from the papers."""
    fan_in = math.prod(shape[1:])
    fan_out = shape[0] * math.prod(shape[2:])
    if method == "he_normal":
        return math.sqrt(2 / fan_in)
    if method == "xavier_uniform":
        return math.sqrt(2 / (fan_in + fan_out))
    assert method == "orthogonal"
    return 1 / math.sqrt(max(shape[0], fan_in))


def check(model, method, backend="scratch", seed=0):
    """Apply `method` and check every record against the tensor it describes."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    report = apply_weight_init(model, method=method, backend=backend, seed=seed)
    params = dict(model.named_parameters())
    assert [r.name for r in report.parameters] == list(params)  # each once, in order
    for record in report.parameters:
        value = params[record.name].detach()
        assert record.shape == tuple(value.shape)
        assert record.std == pytest.approx(value.double().std(correction=0).item(), abs=1e-6)
        if record.rule == "skipped":
            assert torch.equal(value, before[record.name]) and record.target_std is None
        elif record.detail == "bias: zeros":
            assert not value.any() and record.rule == "method"
        elif record.detail == "norm: ones":
            assert torch.equal(value, torch.ones_like(value)) and record.rule == "default"
        elif record.detail == "norm: zeros":
            assert not value.any() and record.rule == "default"
        elif record.detail.startswith("embedding"):
            assert record.rule == "default" and record.target_std == 1.0
            assert value.std().item() == pytest.approx(1.0, rel=0.05)
        else:
            assert (record.rule, record.detail) == ("method", method), record
            chunks = value.chunk(record.chunks)
            expected = method_std(method, chunks[0].shape)
            assert record.target_std == pytest.approx(expected)
            assert record.fan_in == math.prod(chunks[0].shape[1:])
            for chunk in chunks:
                assert method_std(method, chunk.shape) == pytest.approx(expected)
                if chunk.numel() >= MIN_VALUES:
                    assert chunk.std(correction=0).item() == pytest.approx(expected, rel=0.05)
    return report


# what each model of the zoo leaves as it was: nothing but what winit cannot know
SKIPPED = {"WithParameter": ["pos_embedding", "act.weight"]}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("make", ZOO, ids=lambda make: make.__name__)
def test_every_parameter_gets_its_rule(make, method):
    report = check(make(), method)
    assert report.skipped == SKIPPED.get(make.__name__, [])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("make", [transformer, lstm, attention], ids=lambda m: m.__name__)
def test_the_torch_backend_too(make, method):
    check(make(), method, backend="torch", seed=3)


@pytest.mark.parametrize("backend", ["scratch", "torch"])
def test_in_proj_weight_is_three_projections_with_their_own_fans(backend):
    e = 64
    model = transformer()
    report = check(model, "xavier_uniform", backend=backend)
    record = next(r for r in report.parameters if r.name.endswith("in_proj_weight"))
    assert (record.chunks, record.fan_in, record.fan_out) == (3, e, e)
    for chunk in model.layers[0].self_attn.in_proj_weight.detach().chunk(3):
        # one (E, E) projection: √(2/(E+E)); torch's own default draws the packed (3E, E)
        # weight, √(2/(E+3E)), which is 0.71 of it
        assert chunk.std().item() == pytest.approx(math.sqrt(1 / e), rel=0.05)


def test_orthogonal_makes_each_projection_and_gate_orthogonal():
    model = nn.ModuleDict({"attn": transformer(), "lstm": lstm()})
    apply_weight_init(model, method="orthogonal", seed=1)
    q_k_v = model["attn"].layers[1].self_attn.in_proj_weight.detach().chunk(3)
    gates = model["lstm"].weight_hh_l1_reverse.detach().chunk(4)
    for square in (*q_k_v, *gates):  # (64, 64) each: W Wᵀ = I
        assert torch.allclose(square @ square.T, torch.eye(64), atol=1e-5)


def test_attention_with_its_own_key_and_value_sizes():
    model = attention()
    report = check(model, "he_normal", backend="torch")
    by_name = {r.name: r for r in report.parameters}
    q, k = by_name["q_proj_weight"], by_name["k_proj_weight"]
    assert [(q.fan_in, q.fan_out), (k.fan_in, k.fan_out)] == [(128, 128), (48, 128)]
    assert by_name["v_proj_weight"].target_std == pytest.approx(math.sqrt(2 / 80))
    assert by_name["in_proj_bias"].chunks == 3
    assert not model.bias_k.any() and not model.bias_v.any()
    assert by_name["bias_k"].detail == "bias: zeros"


def test_rnn_biases_and_auto_gain():
    rnn = nn.RNN(64, 64, nonlinearity="relu")
    apply_weight_init(rnn, "xavier_normal", gain="auto", bias="torch_default", seed=0)
    # gain auto: nn.RNN's own nonlinearity, relu (√2)
    assert rnn.weight_ih_l0.std().item() == pytest.approx(math.sqrt(2) / 8, rel=0.05)
    assert rnn.bias_ih_l0.abs().max().item() <= 1 / 8
    lstm_ = nn.LSTM(64, 64)
    report = apply_weight_init(lstm_, "xavier_normal", gain="auto", seed=0)
    assert report.parameters[0].chunks == 4
    assert lstm_.weight_ih_l0.std().item() == pytest.approx(1 / 8, rel=0.05)  # linear: 1


def test_a_custom_parameter_is_skipped_with_its_reason():
    model = nn.Sequential(WithParameter())
    report = apply_weight_init(model, "he_normal", seed=0)
    assert report.skipped == ["0.pos_embedding", "0.act.weight"]
    reasons = {r.name: r.detail for r in report.parameters if r.rule == "skipped"}
    assert reasons["0.pos_embedding"] == "a parameter of WithParameter that winit does not know"
    assert reasons["0.act.weight"] == "a parameter of PReLU that winit does not know"


def test_a_tensor_the_method_cannot_make_is_skipped():
    model = nn.LSTM(8, 16)  # weight_ih gates are (16, 8), not square
    report = apply_weight_init(model, "identity")
    by_name = {r.name: r for r in report.parameters}
    assert by_name["weight_ih_l0"].rule == "skipped"
    assert "identity cannot apply" in by_name["weight_ih_l0"].detail
    assert torch.equal(model.weight_hh_l0.detach(), torch.eye(16).repeat(4, 1))


@pytest.mark.parametrize("backend", ["scratch", "torch"])
def test_same_seed_same_parameters(backend):
    def make():
        return nn.ModuleList([transformer(), lstm(), embedding(), attention()])

    a, b, c = make(), make(), make()
    for model, seed in ((a, 7), (b, 7), (c, 8)):
        apply_weight_init(model, "he_uniform", backend=backend, seed=seed, bias="torch_default")
    for (name, pa), pb, pc in zip(
        a.named_parameters(), b.parameters(), c.parameters(), strict=True
    ):
        assert torch.equal(pa, pb), name
        if pa.std() > 0:
            assert not torch.equal(pa, pc), name


def test_tied_parameters_are_made_and_recorded_once():
    embed, head = nn.Embedding(100, 32), nn.Linear(32, 100, bias=False)
    head.weight = embed.weight  # weight tying, as in language models
    model = nn.Sequential(embed, nn.Linear(32, 32), head)
    report = apply_weight_init(model, "he_normal", seed=0)
    assert [r.name for r in report.parameters] == ["0.weight", "1.weight", "1.bias"]
    # the head is a planned layer: its draw is what the tensor holds, and its record
    assert report.parameters[0].detail == "he_normal"
    assert report.parameters[0].target_std == pytest.approx(math.sqrt(2 / 32))


def test_the_plan_layers_draw_first_as_before():
    model = nn.Sequential(nn.LSTM(4, 4), nn.Linear(10, 5))
    report = apply_weight_init(model, "he_normal", seed=5)
    assert [r.name for r in report.layers] == ["1"]
    expected = he_normal((5, 10), rng=np.random.default_rng(5))
    assert torch.equal(model[1].weight.detach(), torch.from_numpy(expected))


def test_weighted_modules_outside_the_plan_get_the_method_with_a_linear_gain():
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Conv1d(64, 64, 3))
    spec = InitSpec.create("he_normal", gain="auto")
    report = apply_init(model, spec, NetworkPlan(None, ()), seed=0)
    assert report.layers == []
    weights = [r for r in report.parameters if r.name.endswith("weight")]
    assert [(r.rule, r.detail) for r in weights] == [("method", "he_normal")] * 2
    assert weights[0].target_std == pytest.approx(1 / 16)  # gain auto, linear: 1
    assert model[0].weight.std().item() == pytest.approx(1 / 16, rel=0.05)
    assert model[2].weight.std().item() == pytest.approx(1 / math.sqrt(192), rel=0.05)


def test_lsuv_rescales_the_plan_layers_only():
    model = nn.Sequential(nn.Linear(32, 64), nn.LayerNorm(64), nn.ReLU(), nn.Linear(64, 10))
    report = apply_weight_init(model, "lsuv", data=torch.randn(128, 32), seed=0)
    by_name = {r.name: r for r in report.parameters}
    for layer in report.layers:
        assert by_name[f"{layer.name}.weight"].target_std == pytest.approx(layer.target_std)
    assert by_name["1.weight"].detail == "norm: ones"


def test_records_are_plain_json():
    report = apply_weight_init(attention(), "he_normal", seed=0)
    data = json.loads(json.dumps([r.to_dict() for r in report.parameters]))
    assert data[0] == {
        "name": "q_proj_weight",
        "shape": [128, 128],
        "fan_in": 128,
        "fan_out": 128,
        "rule": "method",
        "detail": "he_normal",
        "chunks": 1,
        "target_std": pytest.approx(math.sqrt(2 / 128)),
        "std": pytest.approx(math.sqrt(2 / 128), rel=0.05),
    }


def test_notes_group_what_the_method_did_not_draw():
    model = nn.Sequential(transformer(), WithParameter(), nn.Embedding(10, 4))
    model[1].register_parameter("[red]x", nn.Parameter(torch.zeros(2)))  # not markup
    report = apply_weight_init(model, "he_normal", seed=0)
    lines = [line.plain for line in init_notes(report.parameters)]
    assert lines == [
        "norm: ones/zeros: 0.layers.0.norm1.weight, 0.layers.0.norm1.bias, "
        "0.layers.0.norm2.weight, … (8 tensors)",
        "skipped: 1.pos_embedding, 1.[red]x (a parameter of WithParameter that winit does "
        "not know)",
        "skipped: 1.act.weight (a parameter of PReLU that winit does not know)",
        "embedding: normal(0, 1): 2.weight",
    ]
