"""`--model FILE.py:NAME`: a network winit did not build, through every command.

The models live in tests/user_models.py, a file of the user's kind (winit runs its code).
"""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.errors import ConfigErrors
from weightinit_cli.loading import config_to_yaml, load_config
from weightinit_cli.session import stats as run_stats

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
MODELS = "tests/user_models.py"


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the specs name tests/user_models.py relative to the root


def invoke(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "150"})


def stats_of(*overrides, command="stats"):
    return run_stats(load_config(None, list(overrides), command=command)).result


def test_a_module_from_a_file_gives_the_numbers_of_the_same_built_stack():
    """TinyMLP is the dense stack of depth 4, width 64: the same init draws, the same
    statistics and theory, layer for layer, under its own module names."""
    mine = stats_of(f"model.module={MODELS}:TinyMLP", "data.name=spirals", command="train")
    built = stats_of("model.depth=4", "model.width=64", "data.name=spirals", command="train")
    assert [layer.name for layer in mine.layers] == [
        "body.0", "body.2", "body.4", "body.6", "head",
    ]  # fmt: skip
    assert len(mine.layers) == len(built.layers)
    for a, b in zip(mine.layers, built.layers, strict=True):
        assert a.weight.std == b.weight.std
        assert a.activation.std == pytest.approx(b.activation.std, rel=1e-6)
        assert a.predicted_activation_std == pytest.approx(b.predicted_activation_std, rel=1e-9)
        assert a.activation_fn == b.activation_fn == ("relu" if a.name != "head" else "linear")
    assert mine.model["type"] == "module" and mine.model["parameters"] == 12867
    assert mine.verdict.kind == built.verdict.kind


def test_theory_through_a_batchnorm_predicts_the_normalized_activation():
    result = stats_of(
        f"model.module={MODELS}:ResNet",
        "model.args.width=32",
        "model.input_shape=[3, 32, 32]",
        "data.name=shapes2d",
    )
    by_name = {layer.name: layer for layer in result.layers}
    # conv -> batchnorm -> relu: relu of N(0, 1), whatever the conv gave: √(1/2 - 1/2π)
    relu_of_normal = math.sqrt(0.5 - 1 / (2 * math.pi))
    for name in ("conv1", "layer1.0.conv1", "layer4.1.conv1"):
        assert by_name[name].activation_fn == "relu"
        assert by_name[name].predicted_activation_std == pytest.approx(relu_of_normal, rel=1e-6)
        assert by_name[name].activation.std == pytest.approx(relu_of_normal, rel=0.1)
    # each output itself is fan_in·Var(W)·E[x²] of the input it was measured to get, with
    # the taps that read zero padding left out (all but the centre tap, in layer4's 1x1)
    for layer in result.layers:
        assert layer.predicted_preactivation_std is not None
        assert layer.preactivation.std == pytest.approx(layer.predicted_preactivation_std, rel=0.3)
    assert by_name["layer4.1.conv2"].predicted_preactivation_std < 0.4  # 1/3 of unpadded
    assert by_name["fc"].predicted_activation_std is not None


def test_theory_says_n_a_where_a_dropout_sits_before_the_activation(runs):
    result = stats_of(f"model.module={MODELS}:DropoutMLP", "data.name=spirals")
    assert result.layers[0].predicted_activation_std is None
    assert result.layers[0].predicted_preactivation_std is not None
    shown = invoke("stats", "--model", f"{MODELS}:DropoutMLP", "--data", "spirals")
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.output.splitlines() if " fc " in line)
    assert "n/a" in row


def test_a_functional_residual_sum_restarts_the_prediction_from_the_measured_input():
    result = stats_of(f"model.module={MODELS}:ResidualMLP", "data.name=spirals", "init.method=he")
    plan = load_config(None, [f"model.module={MODELS}:ResidualMLP"], command="train").model.plan
    chained = {layer.name: layer.chained for layer in plan.weighted}
    # blocks.0 reads the stem's output itself; blocks.1 reads x + relu(blocks.0(x))
    assert chained == {
        "stem": False, "blocks.0": True, "blocks.1": False, "blocks.2": False, "head": False,
    }  # fmt: skip
    for layer in result.layers:  # the relu is functional: winit measures the layer's output
        assert layer.activation_fn == "linear"
        assert layer.activation.std == pytest.approx(layer.predicted_activation_std, rel=0.3)


def test_stats_on_a_transformer_names_layers_by_module_path(runs):
    result = invoke(
        "stats", "--model", f"{MODELS}:TransformerClassifier", "--input-shape", "8,16", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    names = [layer["name"] for layer in data["layers"]]
    assert names[:3] == ["embed", "encoder.layers.0.linear1", "encoder.layers.0.linear2"]
    assert names[-1] == "head"
    assert data["model"]["type"] == "module"
    assert data["model"]["module"] == f"{MODELS}:TransformerClassifier"
    assert data["model"]["input_shape"] == [8, 16]
    for layer in data["layers"]:
        assert math.isfinite(layer["activation"]["std"])


def test_the_title_names_the_module(runs):
    result = invoke(
        "stats", "--model", f"{MODELS}:ResNet", "--model-arg", "width=8",
        "--input-shape", "3,32,32", "--data", "shapes2d",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "on tests/user_models.py:ResNet (21 weighted layers" in result.output
    assert "norm: ones/zeros:" in result.output  # the batchnorms, listed under the table


def test_train_compare_and_rerun_work_on_a_module(runs):
    model = ["--model", f"{MODELS}:make_mlp", "--model-arg", "width=16", "--data", "spirals"]
    result = invoke("train", *model, "--steps", "20")
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    saved = (run_dir / "config.yaml").read_text()
    assert f"module: {MODELS}:make_mlp" in saved and "width: 16" in saved
    assert "depth:" not in saved  # the stack's fields are not the module's
    rerun = invoke("rerun", str(run_dir))
    assert rerun.exit_code == 0, rerun.output
    assert "identical: the rerun reproduced every number" in rerun.output
    compare = invoke("compare", *model, "--methods", "he", "xavier", "--steps", "20")
    assert compare.exit_code == 0, compare.output
    assert "body.0" in compare.output


def test_a_sweep_grids_over_the_module_arguments(runs):
    result = invoke(
        "sweep", "--model", f"{MODELS}:make_mlp", "--data", "spirals", "--steps", "10",
        "--grid", "model.args.width=8,16", "--jobs", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (sweep_dir,) = runs.iterdir()
    trials = sorted(p.name for p in (sweep_dir / "trials").iterdir())
    assert len(trials) == 2 and all("width" in name for name in trials), trials
    results = (sweep_dir / "results.csv").read_text().splitlines()
    assert len(results) == 3 and "width" in results[0]


def test_same_seed_same_numbers_on_a_module():
    first = stats_of(f"model.module={MODELS}:TransformerClassifier", "model.input_shape=[8,16]")
    again = stats_of(f"model.module={MODELS}:TransformerClassifier", "model.input_shape=[8,16]")
    assert [x.activation.std for x in first.layers] == [x.activation.std for x in again.layers]
    assert first.loss == again.loss


def test_the_input_shape_and_classes_come_from_a_shipped_dataset():
    sets = [f"model.module={MODELS}:ResNet", "model.args.channels=1", "data.name=digits"]
    cfg = load_config(None, sets, command="stats")  # not stats' own [16] and gaussian
    assert cfg.model.input_shape == [1, 8, 8] and cfg.model.num_classes == 10
    assert cfg.data.samples == 2048  # the default, which takes all 1,797: configs hash as before
    assert load_config(None, ["data.name=mnist"], command="train").data.samples == 5000
    assert "input_shape: [1, 8, 8]" in config_to_yaml(cfg)
    # a built stack takes the dataset's flat or image shape by its type, and its classes
    dense = load_config(None, ["data.name=digits"], command="stats")
    assert dense.model.input_shape == [64] and dense.model.num_classes == 10
    conv = load_config(None, ["data.name=digits"], command="train", layer="conv2d")
    assert conv.model.input_shape == [1, 8, 8]


def test_help_says_a_model_file_runs_code():
    result = invoke("stats", "--help")
    assert "RUNS ITS CODE" in " ".join(result.output.split())


def _broken_file(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import torch\nraise ValueError('no GPU named banana')\n")
    return path


ERRORS = [
    (["--model", "nowhere/missing.py:Net"], "model.module: no such file: 'nowhere/missing.py'"),
    (["--model", f"{MODELS}:Nope"], "has no 'Nope' (it defines: "),
    (["--model", f"{MODELS}:not_a_module"], "not_a_module gave a int, not an nn.Module"),
    (["--model", "BROKEN:Net"], "failed: ValueError: no GPU named banana"),
    (
        ["--model", f"{MODELS}:BadForward"],
        "the forward of BadForward failed in fc2 (Linear) on an input of [2, 64]",
    ),
    (["--model", f"{MODELS}:NoWeights"], "NoWeights has no weights (no parameters)"),
    (["--model", f"{MODELS}:KeywordInput"], "fc (Linear) is called with its input as a keyword"),
    (
        ["--model", f"{MODELS}:TinyMLP", "--model-arg", "colour=3"],
        "model.args: calling TinyMLP(...) failed: TypeError",
    ),
    (["--model", "not_a_package_anywhere:Net"], "no module named 'not_a_package_anywhere'"),
    (["--model", "tests/user_models.py"], "needs path/to/file.py:NAME or package.module:NAME"),
    (["--model", f"{MODELS}:TinyMLP", "--depth", "3"], "model.depth: describes a stack"),
    (["--model", f"{MODELS}:TinyMLP", "--layer", "conv2d"], "--layer builds a stack"),
    (
        [
            "--model",
            f"{MODELS}:make_mlp",
            "--model-arg",
            "features=64",
            "--input-shape",
            "64",
            "--data",
            "digits",
        ],
        "the module outputs 3 values but data digits has 10 classes",
    ),  # fmt: skip
    (
        ["--model", f"{MODELS}:TinyMLP", "--data", "gaussian"],
        "model.input_shape: data gaussian takes any shape",
    ),
    (["--model", f"{MODELS}:TinyMLP", "--model-arg", "oops"], "--model-arg: needs KEY=VALUE"),
]


@pytest.mark.parametrize(("args", "expected"), ERRORS, ids=[e for _, e in ERRORS])
@pytest.mark.parametrize("command", ["train", "stats"])
def test_a_bad_model_is_one_error_line_and_no_run_directory(
    runs, tmp_path, command, args, expected
):
    args = [a.replace("BROKEN", str(_broken_file(tmp_path))) for a in args]
    result = invoke(
        command, "--data", "spirals", *args, "--steps" if command == "train" else "--seed", "1"
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert expected in lines[0]
    assert "Traceback" not in result.output
    assert not runs.exists() or not any(runs.iterdir())


def _torchvision():
    try:
        import torchvision.models  # noqa: F401
    except Exception:  # beside the CPU torch wheel, PyPI's torchvision fails to import
        return False
    return True


@pytest.mark.skipif(not _torchvision(), reason="torchvision does not import here")
def test_torchvision_resnet18_without_weights(runs):
    result = invoke(
        "stats", "--model", "torchvision.models:resnet18", "--model-arg", "num_classes=10",
        "--input-shape", "3,64,64", "--data", "gaussian", "--batch-size", "8", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["layers"][0]["name"] == "conv1" and data["layers"][-1]["name"] == "fc"
    assert data["model"]["parameters"] == 11181642


ODD = """
import torch
from torch import nn
from sibling import WIDTH  # a file beside it, as `python file.py` finds it
print("printed at import")


class LSTMClf(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(16, WIDTH, batch_first=True)
        self.fc = nn.Linear(WIDTH, 3)

    def forward(self, x):
        print("printed in forward")
        return self.fc(self.lstm(x)[0][:, -1])


class PairsOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        if len(x) != 2:
            raise ValueError("only pairs")
        return self.fc(x)


class IntOut(PairsOnly):
    def forward(self, x):
        return self.fc(x).long()
"""


@pytest.fixture
def odd_models(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "sibling.py").write_text("WIDTH = 32\n")
    (folder / "odd.py").write_text(ODD)
    return folder / "odd.py"


def test_an_lstm_is_drawn_and_said_so_and_prints_stay_off_json(runs, odd_models):
    shown = invoke("stats", "--model", f"{odd_models}:LSTMClf", "--input-shape", "8,16")
    assert shown.exit_code == 0, shown.output
    assert "drawn by he_normal, not in the table: lstm.weight_ih_l0, lstm.weight_hh_l0" in (
        " ".join(shown.output.split())
    )
    as_json = runner.invoke(
        app, ["stats", "--model", f"{odd_models}:LSTMClf", "--input-shape", "8,16", "--json"]
    )
    assert as_json.exit_code == 0
    data = json.loads(as_json.stdout)  # the module's prints went to stderr
    gates = [p for p in data["parameters"] if p["name"] == "lstm.weight_ih_l0"]
    assert gates[0]["chunks"] == 4 and gates[0]["fan_in"] == 16 and gates[0]["fan_out"] == 32


@pytest.mark.parametrize(
    ("name", "command", "expected"),
    [
        ("PairsOnly", "stats", "PairsOnly failed while measuring: ValueError: only pairs"),
        ("IntOut", "stats", "IntOut outputs int64 values; a classifier outputs float logits"),
    ],
)
def test_a_module_that_fails_after_its_trace_is_one_line(runs, odd_models, name, command, expected):
    result = invoke(command, "--model", f"{odd_models}:{name}", "--input-shape", "2")
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1 and expected in error[0], result.output
    assert "Traceback" not in result.output


def test_model_args_without_a_module_are_refused(runs):
    result = invoke("stats", "--model-arg", "width=3")
    assert result.exit_code == 2
    assert "model.args: are the arguments of a model.module" in result.output


def test_a_sweep_over_datasets_gives_each_point_its_dataset_s_shape_and_classes():
    from weightinit_cli.sweep.grid import load_sweep

    sweep = load_sweep(None, ["data.name=spirals,wine,digits"], ["model.depth=2"])
    shapes = {
        t.config.data.name: (t.config.model.input_shape, t.config.model.num_classes)
        for t in sweep.trials
    }
    assert shapes == {"spirals": ([2], 3), "wine": ([13], 3), "digits": ([64], 10)}
    samples = {t.config.data.name: t.config.data.samples for t in sweep.trials}
    assert samples == {"spirals": 2048, "wine": 2048, "digits": 2048}  # each taken whole
    # what the user gave stays, on every point
    fixed = load_sweep(
        None,
        ["data.name=digits,gaussian"],
        ["model.input_shape=[1, 8, 8]", "model.layers=[{type: flatten}, {type: dense, units: 10}]"],
    )
    assert {tuple(t.config.model.input_shape) for t in fixed.trials} == {(1, 8, 8)}
    # a module: the base is checked on the first dataset, not the default spirals
    mine = load_sweep(
        None, ["data.name=wine"],
        [f"model.module={MODELS}:TinyMLP", "model.args.features=13"],
    )  # fmt: skip
    assert [t.config.model.input_shape for t in mine.trials] == [[13]]


def test_rerun_says_when_the_model_file_changed_since_the_run(runs, tmp_path):
    model = tmp_path / "net.py"
    model.write_text(
        "from torch import nn\n\n"
        "def net():\n    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))\n"
    )
    result = invoke("train", "--model", f"{model}:net", "--data", "spirals", "--steps", "5")
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["model_file"]["path"] == str(model.resolve())
    same = invoke("rerun", str(run_dir), "--json")
    assert json.loads(same.stdout)["files"]["model file"] == "identical"
    model.write_text(model.read_text().replace("16", "32"))
    changed = invoke("rerun", str(run_dir), "--json")
    assert changed.exit_code == 1
    files = json.loads(changed.stdout)["files"]
    assert files["model file"].startswith("changed since the run: sha256 ")


def test_the_verdict_never_suggests_the_method_in_use():
    from weightinit_cli.verdict import diagnose

    growing = diagnose([1, 2, 4, 8], [None] * 4, [False] * 4, [0.0] * 4, "relu", "he_normal")
    assert growing.kind == "growing" and "try he_normal" not in growing.message
    assert "try a smaller gain (init.gain)" in growing.message
    shrinking = diagnose([8, 4, 2, 1], [None] * 4, [False] * 4, [0.0] * 4, "relu", "xavier_normal")
    assert "try he_normal" in shrinking.message


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # torch's, for Linear(0, 4)
def test_apply_weight_init_records_lazy_and_empty_layers_as_skipped():
    from torch import nn

    from weightinit_cli.apply import apply_weight_init

    lazy = apply_weight_init(nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.Linear(4, 2)), "he")
    rules = [(p.name, p.rule) for p in lazy.parameters]
    assert rules == [
        ("0.weight", "skipped"), ("0.bias", "skipped"), ("2.weight", "method"), ("2.bias", "method")
    ]  # fmt: skip
    assert lazy.parameters[0].detail == "not materialized yet (a lazy module)"
    empty = apply_weight_init(nn.Sequential(nn.Linear(0, 4), nn.Linear(4, 2)), "he")
    assert empty.parameters[0].detail == "empty: it has no values"
    assert [r.name for r in empty.layers] == ["1"]


def test_rerun_from_elsewhere_of_a_relative_model_path_says_where_it_was(
    runs, tmp_path, monkeypatch
):
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "net.py").write_text(
        "from torch import nn\n\ndef net():\n    return nn.Sequential(nn.Linear(2, 3))\n"
    )
    monkeypatch.chdir(tmp_path / "here")
    result = invoke("train", "--model", "net.py:net", "--data", "spirals", "--steps", "2")
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    monkeypatch.chdir(tmp_path)
    again = invoke("rerun", str(run_dir))
    assert again.exit_code == 2
    assert "no such file: 'net.py'" in again.output
    assert f"the run's model file was {tmp_path / 'here' / 'net.py'}" in again.output


def test_a_config_file_names_the_module_and_its_arguments(runs, tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text(
        f"model:\n  module: {MODELS}:make_mlp\n  args:\n    width: 16\n"
        "data:\n  name: spirals\ntrain:\n  steps: 3\n"
    )
    result = invoke("train", str(config), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model"]["module"] == f"{MODELS}:make_mlp"
    assert data["model"]["args"] == {"width": 16}
    assert data["model"]["weighted_layers"] == 3 and data["steps"] == 3
    (run_dir,) = runs.iterdir()
    layers = (run_dir / "layers.csv").read_text().splitlines()
    assert [row.split(",")[2] for row in layers[1:4]] == ["body.0", "body.2", "head"]


def test_a_weight_norm_layer_is_recorded_as_skipped_with_why():
    from torch import nn
    from torch.nn.utils.parametrizations import weight_norm

    from weightinit_cli.apply import apply_weight_init

    report = apply_weight_init(nn.Sequential(weight_norm(nn.Linear(4, 4)), nn.Linear(4, 2)), "he")
    skipped = [p for p in report.parameters if p.rule == "skipped"]
    assert [p.name for p in skipped] == [
        "0.parametrizations.weight.original0", "0.parametrizations.weight.original1",
    ]  # fmt: skip
    assert all("does not draw through parametrizations" in p.detail for p in skipped)


def _plan_and_stats(name):
    sets = [f"model.module={MODELS}:{name}", "model.input_shape=[16]", "data.name=gaussian"]
    cfg = load_config(None, sets, command="stats")
    return {p.name: p for p in cfg.model.plan.weighted}, {x.name: x for x in stats_of(*sets).layers}


def test_an_in_place_op_between_modules_hides_the_flow_instead_of_misleading_it():
    plan, _ = _plan_and_stats("InplaceResidual")  # out = fc1(x); out += x; act(out)
    assert plan["fc1"].activation_layer is None and plan["fc1"].activation_source == "assumed"
    assert not plan["head"].chained
    plan, measured = _plan_and_stats("InplaceTanh")  # h = fc1(x); h.tanh_(); fc2(h)
    assert not plan["fc2"].chained  # its input is measured after the tanh, not predicted
    fc2 = measured["fc2"]
    assert fc2.preactivation.std == pytest.approx(fc2.predicted_preactivation_std, rel=0.15)


def test_a_shared_activation_module_is_found_after_each_layer():
    plan, measured = _plan_and_stats("SharedTanh")
    assert plan["fc1"].activation_layer == plan["fc2"].activation_layer == "act"
    assert plan["fc2"].chained and plan["head"].chained
    for name in ("fc1", "fc2"):
        assert measured[name].activation_fn == "tanh"
        assert measured[name].saturated_fraction is not None
        assert measured[name].activation.std == pytest.approx(
            measured[name].predicted_activation_std, rel=0.1
        )
    assert measured["fc1"].activation.std != measured["fc2"].activation.std


def test_a_batchnorm_in_eval_mode_is_not_predicted_as_normalizing():
    plan, measured = _plan_and_stats("eval_mode_bn")
    assert plan["0"].through == ("batchnorm",)
    assert measured["0"].predicted_activation_std is None


@pytest.mark.parametrize(
    "sets",
    [
        ["model.type=[]"],
        ["model.type=[]", "data.name=mnist"],
        ["model.layers=[{type: {a: 1}}]", "data.name=spirals"],
    ],
)
def test_dataset_defaults_leave_odd_values_for_validation_to_name(sets):
    from weightinit_cli.errors import ConfigErrors

    with pytest.raises(ConfigErrors) as caught:  # found by test_fuzz_config: a TypeError
        load_config(None, sets, command="train")
    assert str(caught.value).startswith(f"--set {sets[0]}: model.")


@pytest.mark.parametrize(
    "command",
    [
        ["compare", "--methods", "he", "xavier", "--steps", "2", "--jobs", "1"],
        ["sweep", "--grid", "seed=1,2", "--steps", "2", "--jobs", "1"],
    ],
    ids=["compare", "sweep"],
)
def test_what_a_module_prints_stays_off_every_json(runs, odd_models, command):
    args = [*command, "--model", f"{odd_models}:LSTMClf", "--input-shape", "8,16", "--data"]
    args += ["gaussian", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)


@pytest.mark.parametrize(
    ("field", "value", "got"),
    [
        ("train.lr", "1e308", "got 1e+308"),
        ("init.gain", "1" + "0" * 350, "got a number of 351 digits"),
    ],
)
def test_a_number_past_float32_is_shown_as_the_user_wrote_it(field, value, got):
    with pytest.raises(ConfigErrors) as caught:
        load_config(None, [f"{field}={value}"], command="train")
    assert str(caught.value).endswith(f"the range of float32, which torch computes in; {got}")
