"""The transformer stack (model.type: transformer), its layers in model.layers (embedding,
attention, and dense, layernorm and pool on a sequence [T, E]), and the pointer task it is
made to solve: planned, built, initialized, measured and trained like any network."""

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from weightinit_cli.activations import gaussian_moments
from weightinit_cli.cli import app
from weightinit_cli.data import make_dataset
from weightinit_cli.errors import ConfigErrors
from weightinit_cli.loading import config_data, config_hash, config_to_yaml, load_config
from weightinit_cli.models import build_model
from weightinit_cli.session import stats as run_stats
from weightinit_cli.transformer import SelfAttention, TokenEmbedding

runner = CliRunner()

SMALL = ["model.type=transformer", "model.depth=2", "model.width=16", "model.heads=2"]


def config(*sets, command="train"):
    return load_config(None, list(sets), command)


def test_model_type_transformer_brings_the_pointer_task_as_layer_transformer_does():
    by_type = config("model.type=transformer", command="stats")
    by_layer = load_config(None, [], "stats", "transformer")
    assert config_hash(by_type) == config_hash(by_layer)
    m = by_type.model
    assert (by_type.data.name, m.input_shape, m.num_classes) == ("pointer", [16], 8)
    assert (m.depth, m.width, m.heads, m.activation) == (2, 64, 4, "gelu")
    assert m.vocab_size == 16  # the pointer task's: positions 1..15 and classes 0..7
    assert config("model.type=transformer", "model.input_shape=[32]").model.vocab_size == 32


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_a_transformer_stack_is_an_embedding_depth_blocks_of_attention_and_mlp_and_a_head(
    norm_position,
):
    cfg = config(*SMALL, f"model.norm_position={norm_position}")
    plan = cfg.model.plan
    tops = [(layer.name, layer.kind) for layer in plan.layers]
    blocks = [f"residual{i}" for i in range(1, 5)]
    if norm_position == "pre":  # x + F(LN(x)) twice per block, a last LN
        middle = [(name, "residual") for name in blocks] + [("norm", "layernorm")]
        attention = ["layernorm", "attention", "dense"]
        mlp = ["layernorm", "dense", "activation", "dense"]
    else:  # LN(x + F(x))
        middle = [
            item for i, name in enumerate(blocks, 1) for item in
            [(name, "residual"), (f"layernorm{i}", "layernorm")]
        ]  # fmt: skip
        attention, mlp = ["attention", "dense"], ["dense", "activation", "dense"]
    assert tops == [("embedding", "embedding"), *middle, ("readout", "pool"), ("head", "dense")]
    first, second = [layer for layer in plan.layers if layer.kind == "residual"][:2]
    assert [sub.kind for sub in first.branch] == attention
    assert [sub.kind for sub in second.branch] == mlp
    shapes = {layer.name: layer.out_shape for layer in plan.all_layers}
    assert shapes["embedding"] == (16, 16) and shapes["readout"] == (16,)
    assert shapes["residual2.branch.dense1"] == (16, 64)  # mlp_ratio 4, on each position
    assert plan.layers[-1].out_shape == (8,)
    model = build_model(plan)
    assert plan.parameters == sum(p.numel() for p in model.parameters())
    modules = dict(model.named_modules())
    assert all(layer.name in modules for layer in plan.all_layers)
    x = torch.randint(0, 16, (3, 16)).float()  # token ids, float32 as the data pipeline sends them
    assert model(x).shape == (3, 8)


def test_attention_is_torchs_multi_head_attention_without_its_output_projection():
    torch.manual_seed(0)
    width, heads = 12, 3
    ours = SelfAttention(width, heads)
    theirs = torch.nn.MultiheadAttention(width, heads, batch_first=True)
    with torch.no_grad():
        projections = (ours.query, ours.key, ours.value)
        theirs.in_proj_weight.copy_(torch.cat([p.weight for p in projections]))
        theirs.in_proj_bias.copy_(torch.cat([p.bias for p in projections]))
        theirs.out_proj.weight.copy_(torch.eye(width))
        theirs.out_proj.bias.zero_()
        x = torch.randn(4, 7, width)
        expected, _ = theirs(x, x, x, need_weights=False)
        assert torch.allclose(ours(x), expected, atol=1e-6)


def test_the_embedding_adds_a_position_to_each_tokens_vector_and_norms_act_per_position():
    embedding = TokenEmbedding(vocab_size=5, length=3, width=4)
    ids = torch.tensor([[4.0, 0.0, 4.0]])
    out = embedding(ids)
    tokens, positions = embedding.tokens.weight, embedding.positions.weight
    assert torch.equal(out[0], tokens[[4, 0, 4]] + positions)
    model = build_model(config(*SMALL).model.plan)
    modules = dict(model.named_modules())
    norm = modules["residual1.branch.layernorm1"]
    assert isinstance(norm, torch.nn.LayerNorm) and norm.normalized_shape == (16,)
    dense = modules["residual2.branch.dense1"]
    assert (dense.in_features, dense.out_features) == (16, 64)


def test_the_init_draws_embeddings_n01_and_q_k_v_by_the_method_with_fans_e_e():
    cfg = config(*SMALL[:-2], "model.width=64", "init.branch_scale=gpt2", command="stats")
    result = run_stats(cfg).result
    records = {p.name: p for p in result.init.parameters}
    for name in ("embedding.tokens.weight", "embedding.positions.weight"):
        assert records[name].detail == "embedding: normal(0, 1)"
        assert records[name].std == pytest.approx(1.0, rel=0.1)
    for projection in ("query", "key", "value"):
        record = records[f"residual1.branch.attention1.{projection}.weight"]
        assert (record.fan_in, record.fan_out, record.rule) == (64, 64, "method")
        assert record.target_std == pytest.approx(math.sqrt(2 / 64))
        assert record.std == pytest.approx(record.target_std, rel=0.05)
    # the output projection ends the attention branch: GPT-2's scaling reaches it
    projection = records["residual1.branch.dense1.weight"]
    assert "branch_scale" in projection.detail
    assert projection.target_std < math.sqrt(2 / 64)
    assert records["residual2.branch.dense1.weight"].target_std == pytest.approx(math.sqrt(2 / 64))


def test_the_stream_table_predicts_the_mlp_branch_and_the_attention_one():
    """A pre-LN MLP branch sees a unit second moment whatever enters: He makes it
    2·E[gelu(√2 z)²] (layer norm, dense, gelu, dense), over batch, tokens and features.
    The attention branch: 2·ρ̄ under He (value, then output projection), ρ̄ from the
    attention pattern of the same pass."""
    cfg = config(*SMALL[:-2], "model.width=128", "model.depth=3", command="stats")
    blocks = run_stats(cfg).result.blocks
    assert [b.name for b in blocks] == [f"residual{i}" for i in range(1, 7)]
    mlp = 2 * gaussian_moments("gelu", 2.0)[1]
    for attention, feed_forward in zip(blocks[::2], blocks[1::2], strict=True):
        assert attention.branch == pytest.approx(attention.predicted_branch, rel=0.25)
        assert 2 / 16 <= attention.predicted_branch / 2 <= 2  # ρ̄ in [1/T, 1]
        assert feed_forward.predicted_branch == pytest.approx(mlp, rel=1e-9)
        assert feed_forward.branch == pytest.approx(mlp, rel=0.1)
        assert feed_forward.stream_out == pytest.approx(feed_forward.predicted_out, rel=0.1)
    # the first block reads two unit-variance embeddings added: E[x²] = 2
    assert blocks[0].stream_in == pytest.approx(2.0, rel=0.1)


def test_under_gpt2_std_the_attention_branch_is_its_value_path_over_uniform_attention():
    """N(0, 0.02) makes q·k tiny: the attention is uniform, and E[F²] = σ_o²·σ_v²·ρ̄ with
    ρ̄ = E‖mean_t u_t‖²/E; measured within 10% at width 256."""
    from weightinit_cli.residual_stream import attention_mixing

    cfg = config(
        "model.type=transformer", "model.depth=2", "model.width=256", "init.method=normal",
        "init.params={std: 0.02}", command="stats",
    )  # fmt: skip
    blocks = run_stats(cfg).result.blocks
    w2 = 256 * 0.02**2
    for attention in blocks[::2]:
        assert attention.branch == pytest.approx(attention.predicted_branch, rel=0.1)
    u = torch.nn.functional.layer_norm(torch.randn(4, 16, 256), (256,))
    module = SelfAttention(256, 4)
    torch.nn.init.zeros_(module.query.weight)  # uniform attention exactly
    torch.nn.init.zeros_(module.query.bias)
    uniform = attention_mixing(module, u)
    assert uniform == pytest.approx((u.mean(dim=1).pow(2).sum(-1) / 256).mean().item(), rel=1e-5)
    assert blocks[0].predicted_branch < w2 * w2  # ρ̄ < 1: the tokens differ


def test_pointer_labels_are_the_token_at_the_position_the_first_token_names():
    data = make_dataset("pointer", input_shape=[10], num_classes=4, samples=400, seed=3)
    x = np.concatenate([data.x_train, data.x_test]).astype(np.int64)
    y = np.concatenate([data.y_train, data.y_test])
    assert data.x_train.dtype == np.float32 and x.shape == (400, 10)
    assert x[:, 0].min() >= 1 and x[:, 0].max() <= 9  # a position, never itself
    assert x[:, 1:].min() >= 0 and x[:, 1:].max() <= 3  # classes
    assert np.array_equal(y, x[np.arange(400), x[:, 0]])
    assert np.bincount(y).tolist() == [100] * 4
    kept = make_dataset("pointer", input_shape=[10], num_classes=4, samples=400, seed=3,
                        standardize=True)  # fmt: skip
    assert np.array_equal(kept.x_train, data.x_train)  # token ids are never standardized


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (["model.type=transformer", "model.heads=3"], "model.heads: 3 must divide model.width 64"),
        (["model.type=transformer", "model.input_shape=[1, 4, 4]"],
         "model.input_shape: transformer needs [T], its sequence length; got [1, 4, 4]"),
        (["model.type=transformer", "data.name=gaussian"],
         "data.name: a transformer reads token ids, and gaussian is no token dataset"),
        (["data.name=pointer"], "data.name: pointer is a sequence of token ids, which only a"),
        (["model.type=transformer", "model.vocab_size=8"],
         "model.vocab_size: is 8, but data pointer of 16 tokens in 8 classes"),
        (["model.heads=2"], "model.heads: shapes a transformer stack; it needs model.type"),
        # each head's T x T scores count: without them the batch would take 4 GiB, under 8
        (["model.type=transformer", "model.input_shape=[4096]"],
         "train.batch_size: a batch of 128 needs 132.8 GiB for the activations"),
        (["model.type=transformer", "model.norm=layernorm"],
         "model.norm: shapes the residual stacks of dense and conv layers"),
        (["data.name=pointer", "model.layers=[{type: embedding, vocab_size: 8, width: 8},"
          " {type: pool, kind: first}, {type: dense, units: 8}]"],
         "model.layers.0.vocab_size: is 8, but data pointer"),
        (["model.input_shape=[4]", "model.layers=[{type: dense, units: 8}, {type: attention},"
          " {type: dense, units: 3}]"],
         "model.layers.1 (attention, 'attention1'): attention needs a sequence [T, E]"),
        (["model.input_shape=[4]", "model.layers=[{type: dense, units: 8},"
          " {type: embedding, vocab_size: 4, width: 8}, {type: dense, units: 3}]"],
         "model.layers.1 (embedding, 'embedding1'): reads the token ids the network is given"),
        (["data.name=pointer", "model.layers=[{type: embedding, vocab_size: 16, width: 8},"
          " {type: residual, branch: [{type: attention, heads: 3}]}, {type: pool, kind: first},"
          " {type: dense, units: 8}]"],
         "model.layers.1.branch.0 (attention, 'attention1'): heads 3 must divide the width 8"),
        (["data.name=pointer", "model.layers=[{type: embedding, vocab_size: 16, width: 8},"
          " {type: batchnorm}, {type: pool, kind: first}, {type: dense, units: 8}]"],
         "model.layers.1 (batchnorm, 'batchnorm1'): batchnorm normalizes channels over the"),
        (["data.name=pointer", "model.layers=[{type: embedding, vocab_size: 16, width: 8},"
          " {type: pool, kind: avg}, {type: dense, units: 8}]"],
         "model.layers.1 (pool, 'pool1'): a sequence [16, 8] is pooled over all its positions"),
        (["model.input_shape=[4]", "model.layers=[{type: pool, kind: first},"
          " {type: dense, units: 3}]"],
         "model.layers.0 (pool, 'pool1'): kind first reads a sequence's first position"),
        (["data.name=pointer", "model.layers=[{type: embedding, vocab_size: 16, width: 8},"
          " {type: dense, units: 8}]"],
         "the last layer ('dense1') outputs [16, 8]; a classifier must end flat"),
    ],
)  # fmt: skip
def test_a_transformer_that_cannot_be_is_one_error_naming_its_field(sets, expected):
    with pytest.raises(ConfigErrors) as caught:
        config(*sets)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_cli_says_a_bad_transformer_in_one_line_and_exits_2(runs):
    result = runner.invoke(app, ["stats", "--layer", "transformer", "--set", "model.heads=5"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: --set model.heads=5: model.heads: 5 must divide")
    assert not runs.exists()


def test_configs_of_before_save_as_before_and_a_transformer_reads_back_the_same(tmp_path):
    saved = config_data(config())["model"]
    assert not {"heads", "mlp_ratio", "norm_position", "vocab_size"} & set(saved)
    cfg = config(*SMALL, "model.norm_position=post")
    path = tmp_path / "transformer.yaml"
    path.write_text(config_to_yaml(cfg))
    again = load_config(path, [], "train")
    assert config_hash(again) == config_hash(cfg)
    assert config_data(again)["model"]["norm_position"] == "post"


def test_train_compare_and_rerun_a_transformer_through_the_cli(runs):
    args = ["--set", *" --set ".join(SMALL).split(), "--steps", "10"]
    trained = runner.invoke(app, ["train", *args, "--json"])
    assert trained.exit_code == 0, trained.output
    data = json.loads(trained.stdout)
    assert data["status"] == "completed" and data["model"]["type"] == "transformer"
    assert (data["model"]["heads"], data["model"]["vocab_size"]) == (2, 16)
    again = runner.invoke(app, ["rerun", data["run_dir"]])
    assert again.exit_code == 0, again.output
    assert "identical" in again.output
    compared = runner.invoke(app, ["compare", "--methods", "he_normal", "xavier_normal", *args])
    assert compared.exit_code == 0, compared.output


def _accuracy(*sets: str) -> float:
    result = runner.invoke(
        app, ["train", "--set", "train.optimizer=adam", "--set", "train.lr=0.001", "--json",
              *(f"--set={s}" for s in sets)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["final_accuracy"]


NO_ATTENTION = (
    "model.layers=[{type: embedding, vocab_size: 16, width: 64},"
    + " {type: residual, branch: [{type: layernorm}, {type: dense, units: 256},"
    " {type: activation, fn: gelu}, {type: dense, units: 64}]},"
    * 4
    + " {type: layernorm}, {type: pool, kind: avg, global: true}, {type: dense, units: 8}]"
)


@pytest.mark.slow
def test_a_transformer_learns_the_pointer_task_and_a_model_without_attention_does_not(runs):
    """400 Adam steps: a 2-block transformer reads the token the first one points to (95%
    measured); the same embedding and 4 MLP blocks, mean-pooled, see a bag of (token,
    position) features and stay near the 1/4 that guessing among its tokens gets (25%)."""
    assert _accuracy("model.type=transformer") > 0.85
    assert _accuracy(NO_ATTENTION, "data.name=pointer", "model.input_shape=[16]") < 0.4
