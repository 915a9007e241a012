"""`winit stats`: measurement against theory, the textbook verdicts, and the command end to end."""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.loading import load_config
from weightinit_cli.schema import json_schema
from weightinit_cli.session import stats as run_stats
from weightinit_cli.verdict import per_layer_factor

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def stats_for(*overrides, **kw):
    return run_stats(load_config(None, list(overrides), command="stats", **kw)).result


def invoke(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "150"})


def test_he_follows_the_mean_field_prediction_on_the_default_30_layer_relu_mlp():
    """The default run: within 25% of theory at every hidden layer."""
    result = stats_for("init.method=he_normal")
    hidden = result.layers[:-1]
    assert len(hidden) == 30 and all(layer.activation_fn == "relu" for layer in hidden)
    for layer in hidden:
        assert layer.activation.std == pytest.approx(layer.predicted_activation_std, rel=0.25)
        pre = layer.preactivation.std
        assert pre == pytest.approx(layer.predicted_preactivation_std, rel=0.25)
    assert result.verdict.kind == "stable"


def test_mean_field_predicts_the_mean_over_random_nets():
    """Mean field is the expectation over weights at infinite width. One width-512 draw
    drifts with depth (Hanin 2018: about half of all seeds leave the 25% band somewhere by
    layer 30), but the mean variance over draws stays on the prediction."""
    runs = [stats_for("init.method=he_normal", f"seed={seed}") for seed in range(1, 7)]
    for i, layer in enumerate(runs[0].layers[:-1]):
        mean_var = sum(r.layers[i].preactivation.std ** 2 for r in runs) / len(runs)
        assert mean_var == pytest.approx(layer.predicted_preactivation_std**2, rel=0.2)


def test_xavier_decays_by_root_two_per_layer_as_he_et_al_derive():
    result = stats_for("init.method=xavier_normal")
    hidden = result.layers[:-1]
    measured = per_layer_factor([layer.activation.std for layer in hidden])
    assert measured == pytest.approx(2**-0.5, rel=0.1)
    predicted = per_layer_factor([layer.predicted_activation_std for layer in hidden])
    assert predicted == pytest.approx(2**-0.5, rel=0.01)
    for layer in hidden:
        assert layer.activation.std == pytest.approx(layer.predicted_activation_std, rel=0.25)
    assert result.verdict.kind == "vanishing"
    assert "shrink 1.4" in result.verdict.message and "try he_normal" in result.verdict.message


def test_zero_init_is_symmetric_dead_and_has_no_hidden_gradient():
    result = stats_for("init.method=zeros", "model.depth=5")
    hidden = result.layers[:-1]
    assert all(layer.symmetric_weights for layer in result.layers)
    assert all(layer.grad.norm == 0 and layer.symmetric_grads for layer in hidden)
    assert all(layer.dead_fraction == 1.0 for layer in hidden)
    assert result.loss == pytest.approx(math.log(3), rel=1e-6)
    assert result.verdict.kind == "symmetric"


def test_large_tanh_weights_saturate():
    result = stats_for("init.method=normal", "model.activation=tanh", "model.depth=5")
    assert all(layer.saturated_fraction > 0.5 for layer in result.layers[1:-1])
    sane = stats_for("init.method=xavier_normal", "model.activation=tanh", "model.depth=5")
    assert all(layer.saturated_fraction < 0.05 for layer in sane.layers[:-1])


def test_weight_stats_match_the_target_std():
    result = stats_for("init.method=he_uniform", "model.depth=3")
    for layer in result.layers:
        assert layer.expected_weight_std == pytest.approx(math.sqrt(2 / layer.fan_in))
        assert layer.weight.std == pytest.approx(layer.expected_weight_std, rel=0.1)


@pytest.mark.parametrize("backend", ["scratch", "torch"])
@pytest.mark.parametrize("layer", ["dense", "conv2d", "conv3d"])
def test_json_schema_for_every_layer_type_and_backend(layer, backend):
    result = invoke("stats", "--layer", layer, "--backend", backend, "--depth", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["method"], data["backend"]) == ("he_normal", backend)
    assert data["model"]["type"] == layer and len(data["layers"]) == 4
    keys = {
        "index",
        "name",
        "kind",
        "shape",
        "fan_in",
        "fan_out",
        "weight",
        "expected_weight_std",
        "activation",
        "predicted_activation_std",
        "grad",
        "dead_fraction",
        "saturated_fraction",
    }
    for i, entry in enumerate(data["layers"], start=1):
        assert keys <= set(entry) and entry["index"] == i
        assert set(entry["weight"]) == set(entry["activation"]) == {"mean", "std", "min", "max"}
        assert set(entry["grad"]) == {"mean", "std", "norm"}
    kinds = {"dense": "Linear", "conv2d": "Conv2d", "conv3d": "Conv3d"}
    assert data["layers"][0]["kind"] == kinds[layer] and data["layers"][-1]["kind"] == "Linear"


def test_json_and_table_report_the_same_numbers():
    as_json = json.loads(invoke("stats", "--depth", "4", "--seed", "3", "--json").output)
    table = invoke("stats", "--depth", "4", "--seed", "3").output
    assert f"{as_json['layers'][2]['activation']['std']:.3g}" in table
    assert as_json == json.loads(invoke("stats", "--depth", "4", "--seed", "3", "--json").output)


def test_table_shows_theory_sparklines_and_verdict():
    result = invoke("stats", "--method", "xavier_normal")
    assert result.exit_code == 0
    for text in (
        "theory",
        "target",
        "activation std",
        "gradient std",
        "vanishing",
        "Verdict: activations shrink",
        "starves a relu net; try he_normal",
    ):
        assert text in result.output


def test_zero_init_says_symmetric():
    result = invoke("stats", "--method", "zero", "--depth", "4")
    assert result.exit_code == 0
    assert "symmetric" in result.output and "never breaks the symmetry" in result.output


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_shipped_config_runs(config):
    result = invoke("stats", str(config), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["layers"] and all(math.isfinite(x["activation"]["std"]) for x in data["layers"])


def test_mixed_config_holds_the_seed_model_layers():
    result = invoke("stats", "--config", str(ROOT / "configs/mixed.yaml"), "--json")
    data = json.loads(result.output)
    shapes = [tuple(layer["shape"]) for layer in data["layers"]]
    assert (16, 3, 3, 3) in shapes and (5, 10) in shapes


def test_out_writes_a_complete_run_directory(tmp_path):
    out = tmp_path / "he-run"
    result = invoke("stats", "--depth", "5", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "layers.csv",
        "meta.json",
        "std_vs_depth.png",
        "summary.json",
    ]
    rows = (out / "layers.csv").read_text().splitlines()
    assert len(rows) == 1 + 6 and "activation_std" in rows[0]
    assert (out / "std_vs_depth.png").read_bytes()[:4] == b"\x89PNG"
    reloaded = load_config(out / "config.yaml", command="stats")
    assert reloaded.model.depth == 5 and reloaded.init.method == "he_normal"


def test_out_never_overwrites_and_leaves_nothing_on_error(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = invoke("stats", "--depth", "2", "--out", str(out))
    assert result.exit_code == 2 and "never overwrites" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    fresh = tmp_path / "fresh"
    result = invoke("stats", "--set", "model.depth=-1", "--out", str(fresh))
    assert result.exit_code == 2 and not fresh.exists()
    assert list(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--method", "hee"], "unknown init method 'hee'"),
        (["--set", "model.depht=3"], "model.depht"),
        (["--set", "model.depth"], "KEY=VALUE"),
        (["--layer", "conv4d"], "--layer must be one of"),
        (["--set", "model.type=conv2d"], "model"),
        (["--set", "device=cuda"], "cuda"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    result = invoke("stats", *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_broken_yaml_names_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  depth: [3\n")
    result = invoke("stats", str(bad))
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {bad}:3:") and len(result.output.splitlines()) == 1


def test_schema_command_is_draft7_and_shipped():
    result = invoke("schema")
    data = json.loads(result.output)
    assert data["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert data == json_schema()
    assert json.loads((ROOT / "winit.schema.json").read_text()) == data
    for config in CONFIGS:
        assert config.read_text().startswith("# yaml-language-server: $schema=../winit.schema.json")


def test_readme_config_example_loads(tmp_path):
    import re

    from weightinit_cli.sweep.grid import load_sweep

    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    configs = [b for b in blocks if "grid:" not in b]
    (tmp_path / "readme.yaml").write_text(configs[0])
    cfg = load_config(tmp_path / "readme.yaml")
    assert (cfg.model.depth, cfg.init.method, cfg.train.steps) == (20, "he_normal", 400)
    # the sweep example is the file it names
    (sweep,) = [b for b in blocks if "grid:" in b]
    (tmp_path / "depth_vs_init.yaml").write_text(sweep)
    shown = load_sweep(tmp_path / "depth_vs_init.yaml")
    shipped = load_sweep(ROOT / "configs" / "sweeps" / "depth_vs_init.yaml")
    assert len(shown.trials) == 36 and shown.spec_hash() == shipped.spec_hash()
