"""init.parametrization mup and ntk on a user's `--model` module: winit rebuilds it with
its width argument (model.width_arg, default `width`) at model.base_width and twice that,
tells input, hidden and output weights apart from the shapes, and finds the readout (or
takes model.readout); what it cannot tell is one error line."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.experiments import first_batch, initialized, load_dataset
from weightinit_cli.loading import load_config
from weightinit_cli.models import Readout
from weightinit_cli.mup_shapes import parametrization_of
from weightinit_cli.parametrization import width_multipliers_table
from weightinit_cli.train import make_optimizer
from weightinit_cli.transfer import transfer_sweep

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
MODELS = "tests/user_models.py"
MUP = ["init.parametrization=mup", "model.base_width=64"]


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def trained(cfg, steps=3):
    """The network at init and after `steps` steps of its optimizer on one batch."""
    data = load_dataset(cfg)
    model, _ = initialized(cfg, cfg.init.spec, data)
    start = [p.detach().clone() for p in model.parameters()]
    x, y = first_batch(data, 64, "cpu")
    opt = make_optimizer(model, cfg.train)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, start


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_module_under_mup_takes_the_steps_of_the_same_built_stack(optimizer):
    sets = [*MUP, "data.name=spirals", f"train.optimizer={optimizer}", "train.lr=0.01"]
    mine = load_config(None, [f"model.module={MODELS}:TinyMLP", "model.args.width=256", *sets],
                       "train")  # fmt: skip
    stack = load_config(None, ["model.depth=4", "model.width=256", *sets], "train")
    scaling = parametrization_of(mine)
    assert scaling.readout == "head" and scaling.readout_multiplier == 0.25
    a, a0 = trained(mine)
    b, b0 = trained(stack)
    assert isinstance(a.head, Readout)
    assert all(torch.equal(x, y) for x, y in zip(a0, b0, strict=True))
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_a_conv_module_s_roles_come_from_its_shapes():
    cfg = load_config(None, [f"model.module={MODELS}:ResNet", "model.args.width=32",
                             "model.args.num_classes=4", "model.input_shape=[3, 32, 32]",
                             "data.name=shapes2d", "init.parametrization=mup",
                             "model.base_width=16"], "train")  # fmt: skip
    rows = {r["name"]: r for r in width_multipliers_table(parametrization_of(cfg))}
    assert parametrization_of(cfg).readout == "fc"
    assert rows["conv1.weight"]["role"] == "input"
    assert rows["layer2.0.conv1.weight"]["role"] == "hidden"
    assert rows["layer2.0.conv1.weight"]["adam_lr_mult"] == 0.5  # fan_in 32 = 2 x 16
    assert rows["fc.weight"]["role"] == "output" and rows["fc.bias"]["kind"] == "fixed"


def test_model_readout_names_the_readout_where_winit_cannot_tell():
    base = [f"model.module={MODELS}:TwoHeads", "model.args.width=128", *MUP]
    with pytest.raises(Exception, match="finds 2 \\(head_a, head_b\\); name it with model.rea"):
        load_config(None, base, "train")
    cfg = load_config(None, [*base, "model.readout=head_b"], "train")
    assert parametrization_of(cfg).readout == "head_b"
    model, _ = initialized(cfg, cfg.init.spec, load_dataset(cfg))
    assert isinstance(model.head_b, Readout) and not isinstance(model.head_a, Readout)


def invoke(*args):
    return runner.invoke(app, ["train", *args], env={"COLUMNS": "120"})


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--model", f"{MODELS}:TinyMLP", "--set", "init.parametrization=mup"],
            "init.parametrization: mup varies a model.module's width through one of model.args: "
            "pass it (--model-arg width=64), and name it with model.width_arg where it is not "
            "`width`",
        ),
        (
            [
                "--model",
                f"{MODELS}:TinyMLP",
                "--model-arg",
                "width=128",
                "--set",
                "model.width_arg=depth",
                "--set",
                "init.parametrization=ntk",
            ],
            "model.width_arg: 'depth' is not in model.args; pass it (--model-arg depth=64)",
        ),
        (
            [
                "--model",
                f"{MODELS}:TinyMLP",
                "--model-arg",
                "width=128",
                "--model-arg",
                "depth=2",
                "--set",
                "model.width_arg=depth",
                "--set",
                "init.parametrization=ntk",
            ],
            "model.width_arg: model.args.depth = 2 and = 4 change which parameters the module "
            "has, not only their shapes; it is no width",
        ),
        (
            [
                "--model",
                f"{MODELS}:TinyMLP",
                "--model-arg",
                "width=128",
                "--set",
                "model.readout=nope",
                "--set",
                "init.parametrization=mup",
            ],
            "model.readout: 'nope' is no weighted layer of model.module; its weighted "
            "layers: body.0, body.2, body.4, body.6, head",
        ),
        (
            [
                "--model",
                f"{MODELS}:TinyMLP",
                "--model-arg",
                "width=128",
                "--set",
                "model.readout=body.0",
                "--set",
                "init.parametrization=mup",
            ],
            "model.readout: body.0 is no readout: a readout is a Linear whose fan_in grows with "
            "the width and whose fan_out does not",
        ),
        (
            ["--set", "model.readout=head"],
            "model.readout: belongs to a model.module (--model); a stack's width is "
            "model.width and its readout its last layer",
        ),
    ],
)
def test_what_winit_cannot_scale_is_one_error_line(args, expected, tmp_path):
    result = invoke(*args, "--runs-dir", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and expected in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_a_zero_readout_on_a_module_zeroes_its_last_layer_or_the_one_named():
    sets = [f"model.module={MODELS}:TwoHeads", "init.readout=zero", "data.name=spirals"]
    cfg = load_config(None, sets, "train")
    model, _ = initialized(cfg, cfg.init.spec, load_dataset(cfg))
    assert not model.head_b.weight.any() and model.head_a.weight.any()
    cfg = load_config(None, [*sets, "model.readout=head_a"], "train")
    model, _ = initialized(cfg, cfg.init.spec, load_dataset(cfg))
    assert not model.head_a.weight.any() and model.head_b.weight.any()


def test_transfer_grids_over_the_module_s_width_argument():
    sweep = transfer_sweep(None, [64, 128], [0.01, 0.1], [
        "model.module=tests/user_models.py:TinyMLP", "model.args.width=64",
        "init.parametrization=mup", "data.name=spirals"])  # fmt: skip
    assert sweep.axes[0].key == "model.args.width"
    assert sweep.base.model.base_width == 64
    widths = sorted({t.config.model.args["width"] for t in sweep.trials})
    assert widths == [64, 128]


@pytest.mark.parametrize(("parametrization", "code"), [("sp", 1), ("mup", 0)])
def test_coordcheck_on_a_module_fails_under_sp_passes_under_mup(parametrization, code, tmp_path):
    args = ["coordcheck", "--model", f"{MODELS}:TinyMLP", "--model-arg", "width=64",
            "--model-arg", "features=64", "--model-arg", "num_classes=10", "--input-shape", "64",
            "--set",
            f"init.parametrization={parametrization}", "--widths", "64,256,1024", "--seeds", "1",
            "--json", "--runs-dir", str(tmp_path)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    data = json.loads(result.output)
    assert data["widths"] == [64, 256, 1024]
    failed = set(data["failed"])
    assert failed == set() if code == 0 else "head" in failed


def test_a_raw_parameter_keeps_its_lr_under_ntk_and_ntk_needs_no_readout():
    """TransformerClassifier's `position` (tokens, d_model) is no layer's weight: it has no
    fan_in to divide by. TwoHeads has no single readout, which NTK does not need."""
    cfg = load_config(None, [f"model.module={MODELS}:TransformerClassifier",
                             "model.args.d_model=64", "model.width_arg=d_model",
                             "model.input_shape=[128]", "data.name=gaussian",
                             "init.parametrization=ntk", "model.base_width=32"],
                      "train")  # fmt: skip
    rows = {r["name"]: r for r in width_multipliers_table(parametrization_of(cfg))}
    assert rows["position"]["role"] == "parameter"
    assert (rows["position"]["adam_lr_mult"], rows["position"]["sgd_lr_mult"]) == (1.0, 1.0)
    assert rows["head.weight"]["role"] == "output" and rows["head.weight"]["sgd_lr_mult"] == 0.5
    cfg = load_config(None, [f"model.module={MODELS}:TwoHeads", "model.args.width=128",
                             "data.name=spirals", "init.parametrization=ntk",
                             "model.base_width=64"], "train")  # fmt: skip
    scaling = parametrization_of(cfg)
    assert scaling.readout is None
    assert scaling.lr("head_a.weight", "sgd", 1.0) == 0.5


def test_the_scaling_is_read_once_per_network():
    sets = [f"model.module={MODELS}:TinyMLP", "model.args.width=128", "data.name=spirals", *MUP]
    a = load_config(None, [*sets, "train.lr=0.1", "seed=3"], "train")
    b = load_config(None, [*sets, "train.lr=0.2"], "train")
    c = load_config(None, [*sets, "model.args.depth=2"], "train")
    assert parametrization_of(a) is parametrization_of(b)
    assert parametrization_of(c) is not parametrization_of(a)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Tied", "model.readout: head is reached under more than one name in the module"),
        ("ScaledHead", "model.readout: head is not a plain nn.Linear"),
        ("EvenWidth", "model.base_width: the module at model.args.width = 33 (model.base_width"),
    ],
)
def test_a_readout_mup_cannot_replace_and_a_base_it_cannot_build_are_one_line(
    name, expected, tmp_path
):
    base = "33" if name == "EvenWidth" else "64"
    result = invoke("--model", f"{MODELS}:{name}", "--model-arg", "width=128", "--set",
                    "init.parametrization=mup", "--set", f"model.base_width={base}", "--set",
                    "data.name=spirals", "--runs-dir", str(tmp_path))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert expected in result.output and len(result.output.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
