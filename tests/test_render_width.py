"""Every command's tables fit an 80-column terminal and a 200-column one, and never cut a
cell: no ellipsis anywhere, no line wider than the terminal, and the numbers the JSON
holds appear whole in the tables."""

from __future__ import annotations

import json

import pytest
from torch import nn
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.render import fmt

runner = CliRunner()
WIDTHS = [80, 200]
LONG_METHODS = [
    "xavier_uniform",
    "he_uniform",
    "lecun_normal",
    "variance_scaling",
    "delta_orthogonal",
    "orthogonal",
]


def shown(args: list[str], width: int) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.stdout


def assert_whole(text: str, width: int) -> None:
    assert "…" not in text, text
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, too_wide


COMMANDS = {
    "stats": ["stats", "--depth", "6", "--width", "64"],
    "stats-tanh-zeros": ["stats", "--method", "zero", "--activation", "tanh", "--depth", "3"],
    "stats-deep": ["stats", "--depth", "150", "--width", "8"],
    "stats-conv-spp": ["stats", "--layer", "conv2d", "--depth", "3", "--spp"],
    "train": ["train", "--depth", "3", "--width", "16", "--steps", "30"],
    "compare": ["compare", "--depth", "4", "--steps", "30"],
    "compare-six": ["compare", "--methods", *LONG_METHODS, "--depth", "3", "--steps", "20"],
    "compare-deep": ["compare", "--depth", "120", "--width", "8", "--steps", "0"],
    "compare-spp": [
        "compare",
        "--methods",
        "he",
        "xavier",
        "orthogonal",
        "--layer",
        "conv2d",
        "--depth",
        "3",
        "--steps",
        "0",
        "--spp",
    ],
    "sweep": [
        "sweep",
        "--grid",
        "init.method=xavier_normal,he_normal",
        "--grid",
        "model.depth=2,3",
        "--grid",
        "train.lr=0.02,0.005",
        "--seeds",
        "2",
        "--depth",
        "2",
        "--width",
        "8",
        "--steps",
        "20",
    ],
    "methods": ["methods"],
    "methods-he": ["methods", "he"],
    "methods-variance-scaling": ["methods", "variance_scaling"],
    "reproduce-list": ["reproduce", "--list"],
    "reproduce-glorot": ["reproduce", "glorot2010"],
    "reproduce-zero": ["reproduce", "zero_symmetry"],
    "critical": ["critical", "--activation", "tanh", "--weight-var", "2.5"],
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(COMMANDS))
def test_tables_fit_and_cut_nothing(name: str, width: int, runs) -> None:
    assert_whole(shown(COMMANDS[name], width), width)


@pytest.mark.parametrize("width", WIDTHS)
def test_stats_shows_every_number_whole(width: int, runs) -> None:
    args = ["stats", "--method", "xavier_normal", "--depth", "8", "--width", "64"]
    data = json.loads(shown([*args, "--json"], width))
    text = shown(args, width)
    for layer in data["layers"]:
        row = next(line for line in text.splitlines() if f" {layer['name']} " in f" {line} ")
        for value in (
            layer["weight"]["std"],
            layer["activation"]["std"],
            layer["predicted_activation_std"],
            layer["grad"]["std"],
        ):
            assert fmt(value, 3) in row.split(), (fmt(value, 3), row)


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_shows_every_number_whole(width: int, runs) -> None:
    args = ["compare", "--methods", *LONG_METHODS, "--depth", "3", "--steps", "20"]
    data = json.loads(shown([*args, "--json"], width))
    text = shown(args, width)
    words = set(text.split())
    for method in data["methods"]:
        assert method["method"] in text
        for layer in method["layers"]:
            assert fmt(layer["grad"]["std"], 3) in words
            assert fmt(layer["activation"]["std"], 3) in words
        train = method["train"]
        assert {fmt(train["initial_loss"], 3), fmt(train["final_loss"], 3)} <= words
        assert f"{100 * train['final_accuracy']:.0f}%" in words


@pytest.mark.parametrize("width", WIDTHS)
def test_rerun_fits(width: int, runs) -> None:
    shown(["train", "--depth", "2", "--width", "8", "--steps", "10"], width)
    (run,) = runs.iterdir()
    assert_whole(shown(["rerun", str(run)], width), width)


@pytest.mark.parametrize("width", WIDTHS)
def test_weight_stats_of_a_transformer_fit(width: int) -> None:
    from rich.console import Console

    from weightinit_cli import print_weight_stats

    layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    print_weight_stats(model, console)
    text = console.export_text()
    assert_whole(text, width)
    # every name is there whole, if folded over lines: the first column, read down
    column = "".join(line.split("│")[1].strip() for line in text.splitlines() if "│" in line)
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            assert name in column, (name, column)
