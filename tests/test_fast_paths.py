"""What the speed work (benchmarks/) relies on, checked for correctness, never for time:
start-up commands that import no heavy module, the shipped schema, the probe's reductions
against float64, and the training loop's timing record."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from weightinit_cli.apply import plan_module
from weightinit_cli.cli import app
from weightinit_cli.probe import GradSummary, Summary, probe
from weightinit_cli.schema import json_schema

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "numpy", "matplotlib", "scipy", "pydantic")


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--help"], ()),
        # typer coerces every parameter through pydantic (`--version` too), except for
        # eager ones like --help
        (["schema"], ("pydantic",)),
        (["methods"], ("pydantic",)),
        (["methods", "he"], ("pydantic",)),
        (["methods", "--json"], ("pydantic",)),
        (["sweep", "--help"], ("pydantic",)),
    ],
)
def test_light_commands_import_no_heavy_module(args, allowed):
    heavy = tuple(m for m in HEAVY if m not in allowed)
    code = (
        "import sys\n"
        "from weightinit_cli.cli import app\n"
        f"try:\n    app({args!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"heavy = [m for m in {heavy!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_shipped_schema_is_the_generated_one():
    """`winit schema` prints weightinit_cli/schema.json without pydantic; it must be exactly
    what schema.json_schema() generates, and the copy at the root the configs point to.
    Regenerate both with:
    python -c "import json; from weightinit_cli.schema import json_schema;
    print(json.dumps(json_schema(), indent=2))" > weightinit_cli/schema.json"""
    expected = json.dumps(json_schema(), indent=2) + "\n"
    assert (ROOT / "weightinit_cli" / "schema.json").read_text(encoding="utf-8") == expected
    assert json.loads((ROOT / "winit.schema.json").read_text()) == json_schema()
    assert CliRunner().invoke(app, ["schema"]).output == expected


def test_help_gives_each_command_one_whole_line():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1]
    assert "..." not in commands
    for name in ("methods", "stats", "schema", "train", "compare", "rerun"):
        assert f"  {name} " in commands


def _reference(t: torch.Tensor) -> dict[str, float]:
    d = t.double()
    return {
        "mean": d.mean().item(),
        "std": d.std(correction=0).item(),
        "min": d.min().item(),
        "max": d.max().item(),
        "norm": d.norm().item(),
    }


@pytest.mark.parametrize(
    "make",
    [
        lambda g: torch.randn(512, 512, generator=g) * 0.05,  # weights: mean ~ 0
        lambda g: torch.randn(256, 16, 8, 8, generator=g).relu(),  # relu activations
        lambda g: torch.sigmoid(torch.randn(256, 300, generator=g) * 1e-3),  # mean >> std
        lambda g: torch.randn(64, 64, generator=g) * 1e-20 + 3.0,  # all but constant
    ],
    ids=["weights", "relu", "sigmoid", "offset"],
)
def test_summaries_match_float64(make):
    t = make(torch.Generator().manual_seed(0))
    ref = _reference(t)
    summary, grad = Summary.of(t), GradSummary.of(t)
    for value in (summary.mean, grad.mean):
        assert value == pytest.approx(ref["mean"], rel=1e-6, abs=1e-6 * ref["std"] + 1e-30)
    for value in (summary.std, grad.std):
        assert value == pytest.approx(ref["std"], rel=2e-5, abs=1e-7 * abs(ref["mean"]))
    assert (summary.min, summary.max) == (ref["min"], ref["max"])
    assert grad.norm == pytest.approx(ref["norm"], rel=1e-5)


@pytest.mark.parametrize("value", [0.0, 1.0, 0.1, 1 / 3])
def test_a_constant_tensor_has_std_exactly_zero(value):
    assert Summary.of(torch.full((300, 70), value)).std == 0.0


def test_probe_matches_a_plain_float64_computation():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8 * 8, 5)
    )
    x, y = torch.randn(32, 2, 8, 8), torch.randint(0, 5, (32,))
    with torch.no_grad():
        model[0].weight[1].zero_()  # channel 1: no weights and a negative bias, so its
        model[0].bias[1] = -1.0  # output is exactly 0 after the ReLU for every input
    result = probe(model, x, y, plan_module(model))
    pre = model[0](x).detach()
    post = pre.relu()
    conv, head = result.layers
    for got, tensor in ((conv.preactivation, pre), (conv.activation, post)):
        ref = _reference(tensor)
        assert got.mean == pytest.approx(ref["mean"], rel=1e-5, abs=1e-7)
        assert got.std == pytest.approx(ref["std"], rel=1e-5)
        assert (got.min, got.max) == (ref["min"], ref["max"])
    assert conv.dead_fraction == pytest.approx(1 / 6)
    assert result.input_second_moments[0] == pytest.approx(x.double().square().mean().item())
    assert result.input_second_moments[1] == pytest.approx(post.double().square().mean().item())
    ref = _reference(model[3].weight.grad)
    assert head.grad.norm == pytest.approx(ref["norm"], rel=1e-5)
    assert head.grad.std == pytest.approx(ref["std"], rel=1e-5)
    assert not conv.symmetric_weights and not head.symmetric_grads
    assert result.loss == pytest.approx(nn.functional.cross_entropy(model(x), y).item())
    assert not math.isnan(head.activation_grad.norm)


def test_train_records_its_loop_time(runs):
    from weightinit_cli.loading import load_config
    from weightinit_cli.session import train

    cfg = load_config(None, ["train.steps=12", "model.depth=2", "model.width=8"], "train")
    recorded = train(cfg)
    assert recorded.result.history.seconds > 0
    timing = json.loads((recorded.run_dir / "meta.json").read_text())["timing"]
    assert timing["train_loop_seconds"] > 0 and timing["steps_per_second"] > 0
