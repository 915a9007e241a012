"""The entry point, help, version and `winit methods`, end to end."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from weightinit_cli import __version__
from weightinit_cli.cli import app
from weightinit_cli.methods import ALIASES, METHODS

runner = CliRunner()


def test_help_lists_commands_without_importing_torch():
    code = (
        "import sys\n"
        "from weightinit_cli.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'numpy', 'matplotlib', 'scipy', 'tensorboard', 'mlflow')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "methods" in out.stdout


def test_methods_does_not_import_torch():
    code = (
        "import sys\nfrom weightinit_cli.cli import app\n"
        "try:\n    app(['methods', '--json'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_python_dash_m_and_version():
    out = subprocess.run(
        [sys.executable, "-m", "weightinit_cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Usage" in out.stdout and "methods" in out.stdout
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"winit {__version__}"


def test_methods_table_lists_every_method():
    result = runner.invoke(app, ["methods"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    for name in METHODS:
        assert name in result.output
    assert "N(0, gain²·2/(fan_in+fan_out))" in result.output
    assert "Glorot & Bengio 2010" in result.output


def test_methods_json_is_the_catalogue():
    result = runner.invoke(app, ["methods", "--json"])
    data = json.loads(result.output)
    assert [m["name"] for m in data] == list(METHODS)
    aliases = {a: m["name"] for m in data for a in m["aliases"]}
    assert aliases == ALIASES
    he = next(m for m in data if m["name"] == "he_normal")
    assert {p["name"]: p["default"] for p in he["params"]} == {
        "mode": "fan_in",
        "nonlinearity": "leaky_relu",
        "a": 0.0,
        "gain": None,
    }


@pytest.mark.parametrize(
    "alias,canonical",
    [
        ("he", "he_normal"),
        ("xavier", "xavier_uniform"),
        ("glorot_normal", "xavier_normal"),
        ("zero", "zeros"),
        ("Kaiming-Uniform", "he_uniform"),
    ],
)
def test_one_method_in_detail(alias, canonical):
    result = runner.invoke(app, ["methods", alias], env={"COLUMNS": "120"})
    assert result.exit_code == 0 and canonical in result.output
    data = json.loads(runner.invoke(app, ["methods", alias, "--json"]).output)
    assert data["name"] == canonical


def test_truncation_note_is_shown():
    result = runner.invoke(app, ["methods", "variance_scaling"], env={"COLUMNS": "200"})
    assert "0.8796256610342398" in result.output and "Keras" in result.output


def test_unknown_method_is_one_line_exit_2():
    result = runner.invoke(app, ["methods", "kaiming_normall"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: unknown init method 'kaiming_normall'; did you mean kaiming_normal, "
        "kaiming_uniform? `winit methods` lists them all"
    ]
