"""µP for the transformer: attention logits 1/d_head (SP's 1/√d_head kept exactly), the
embeddings as input weights, the coordinate check at small widths (µP passes, SP flags
growth), and `winit parametrizations` end to end."""

import json
import math
import subprocess
import sys

import torch
from torch.nn import functional
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.coordcheck import coordcheck
from weightinit_cli.experiments import initialized, load_dataset
from weightinit_cli.loading import load_config
from weightinit_cli.mup_shapes import parametrization_of
from weightinit_cli.parametrization import width_multipliers_table
from weightinit_cli.render.results import network_text
from weightinit_cli.transformer import SelfAttention

runner = CliRunner()


def transformer(*sets, command="train"):
    return load_config(None, ["model.depth=1", *sets], command, layer="transformer")


def by_hand(attention: SelfAttention, x: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(scale · Q_h K_hᵀ) V_h per head, concatenated, written out."""
    b, t, e = x.shape
    h, d = attention.heads, e // attention.heads

    def split(p):
        return p(x).view(b, t, h, d).transpose(1, 2)

    q, k, v = split(attention.query), split(attention.key), split(attention.value)
    weights = torch.softmax(scale * q @ k.transpose(-1, -2), dim=-1)
    return (weights @ v).transpose(1, 2).reshape(b, t, e)


def attention_of(model):
    return next(m for m in model.modules() if isinstance(m, SelfAttention))


def test_mup_scales_attention_logits_by_one_over_d_head_and_sp_is_unchanged():
    x = torch.randn(3, 16, 128)
    for parametrization, scale in (("mup", 1 / 32), ("sp", 1 / math.sqrt(32))):
        sets = ["model.width=128", "model.heads=4", "model.base_width=32"]
        cfg = transformer(*sets, f"init.parametrization={parametrization}")
        model, _ = initialized(cfg, cfg.init.spec, load_dataset(cfg))
        attention = attention_of(model)
        assert attention.scale == (1 / 32 if parametrization == "mup" else None)
        with torch.no_grad():
            torch.testing.assert_close(attention(x), by_hand(attention, x, scale))
    with torch.no_grad():  # SP is torch's own attention, exactly as before (no scale passed)
        q, k, v = (p(x).view(3, 16, 4, 32).transpose(1, 2) for p in
                   (attention.query, attention.key, attention.value))  # fmt: skip
        plain = functional.scaled_dot_product_attention(q, k, v)
        assert torch.equal(attention(x), plain.transpose(1, 2).reshape(3, 16, 128))


def test_the_transformers_table_embeddings_are_input_weights_attention_is_hidden():
    cfg = transformer("model.width=128", "model.base_width=32", "init.parametrization=mup")
    rows = {r["name"]: r for r in width_multipliers_table(parametrization_of(cfg))}
    tokens = rows["embedding.tokens.weight"]
    assert (tokens["role"], tokens["kind"], tokens["adam_lr_mult"], tokens["sgd_lr_mult"]) == (
        "input", "vector", 1.0, 4.0,
    )  # fmt: skip
    assert rows["embedding.positions.weight"]["role"] == "input"
    query = rows["residual1.branch.attention1.query.weight"]
    assert (query["role"], query["kind"], query["adam_lr_mult"]) == ("hidden", "matrix", 0.25)
    assert rows["residual1.branch.attention1.query.bias"]["init_mult"] == 2.0  # √4
    head = rows["head.weight"]
    assert (head["role"], head["init_mult"], head["forward_mult"]) == ("output", 2.0, 0.25)


def small_check(parametrization):
    sets = ["model.base_width=32", f"init.parametrization={parametrization}"]
    cfg = transformer(*sets, command="coordcheck")
    return coordcheck(cfg, load_dataset(cfg), "cpu", widths=[64, 128, 256], steps=3, seeds=2)


def test_coordcheck_passes_under_mup_and_flags_growth_under_sp():
    mup = small_check("mup")
    assert mup.passed, [(m.name, m.ratios) for m in mup.modules]
    head = next(m for m in mup.modules if m.name == "head")
    assert head.sizes[0] == [0.0, 0.0, 0.0]  # the zero readout, at every width
    sp = small_check("sp")
    assert "head" in sp.failed and "residual1.branch.attention1" in sp.failed
    grown = next(m for m in sp.modules if m.name == "head")
    assert grown.ratios[-1] > 1.5  # Adam's update of an SP readout grows with width


def test_parametrizations_prints_table_3_and_a_configs_parameters():
    result = runner.invoke(app, ["parametrizations"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "Table 3" in result.output and "1/fan_in²" in result.output
    assert "Q·K / d_head" in result.output and "1/√fan_in" in result.output  # NTK's Adam lr
    assert all(len(line) <= 80 for line in result.output.splitlines())
    sets = ["--set", "init.parametrization=mup", "--set", "model.base_width=32"]
    result = runner.invoke(app, ["parametrizations", "--layer", "transformer", *sets, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {role: cells["mup"] for role, cells in data["table"]["Adam lr"].items()} == {
        "input weights & all biases": "1", "output weights": "1/fan_in",
        "hidden weights": "1/fan_in",
    }  # fmt: skip
    assert {cells["sp"] for cells in data["table"]["Adam lr"].values()} == {"1"}
    rows = {r["name"]: r for r in data["parameters"]}
    assert rows["residual1.branch.attention1.key.weight"]["adam_lr_mult"] == 0.5  # 64 / 32


def test_parametrizations_under_sp_is_one_error_line_and_needs_no_torch():
    result = runner.invoke(app, ["parametrizations", "--set", "model.width=64"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: init.parametrization: the per-parameter table is NTK")
    code = (
        "import sys; from typer.testing import CliRunner; from weightinit_cli.cli import app; "
        "r = CliRunner().invoke(app, ['parametrizations']); "
        "assert r.exit_code == 0 and 'torch' not in sys.modules, r.output"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_stats_title_names_mup_and_its_base_width():
    model = {"type": "dense", "depth": 2, "width": 256, "activation": "relu", "input_shape": [64]}
    assert network_text(model) == "a 2×256 dense relu net, input [64]"
    mup = dict(model, parametrization="mup", base_width=64)
    assert network_text(mup) == "a 2×256 dense relu net, input [64], µP (base width 64)"
