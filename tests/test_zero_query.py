"""init.query zero (µP's advice for transformers; mup's examples/Transformer
--query_zero_init): every attention query starts at 0, so each head averages its values
uniformly at init; the rest of the init is untouched and the old configs keep their hash."""

import pytest
import torch
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.errors import ConfigErrors
from weightinit_cli.experiments import initialized, load_dataset
from weightinit_cli.loading import config_data, config_hash, load_config
from weightinit_cli.transformer import SelfAttention

runner = CliRunner()


def built(*sets):
    cfg = load_config(None, ["model.depth=2", *sets], "train", layer="transformer")
    return initialized(cfg, cfg.init.spec, load_dataset(cfg))


def test_zero_queries_make_every_head_attend_uniformly():
    model, report = built("init.query=zero")
    plain, _ = built()
    attentions = [m for m in model.modules() if isinstance(m, SelfAttention)]
    assert len(attentions) == 2
    x = torch.randn(3, 16, 64)
    for attention in attentions:
        assert not attention.query.weight.any() and not attention.query.bias.any()
        assert attention.key.weight.any()
        with torch.no_grad():
            uniform = attention.value(x).mean(dim=1, keepdim=True).expand(-1, 16, -1)
            torch.testing.assert_close(attention(x), uniform)
    details = {p.name: p.detail for p in report.parameters}
    assert details["residual1.branch.attention1.query.weight"] == "zero query"
    for (name, a), (_, b) in zip(model.named_parameters(), plain.named_parameters(), strict=True):
        if ".query." not in name:
            assert torch.equal(a, b), name  # the same draws everywhere else


def test_zero_query_is_refused_without_attention_and_old_hashes_hold():
    with pytest.raises(ConfigErrors, match="init.query: zero sets the queries"):
        load_config(None, ["init.query=zero"], "train")
    cfg = load_config(None, [], "train", layer="transformer")
    assert "query" not in config_data(cfg)["init"]
    zero = load_config(None, ["init.query=zero"], "train", layer="transformer")
    assert config_hash(zero) != config_hash(cfg)


def test_a_mup_transformer_with_zero_queries_passes_the_coordinate_check(tmp_path):
    args = ["coordcheck", "--layer", "transformer", "-p", "mup", "--set", "init.query=zero",
            "--set", "model.depth=1", "--set", "model.base_width=32", "--widths", "64,128,256",
            "--seeds", "2", "--steps", "3", "--json", "--runs-dir", str(tmp_path)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
