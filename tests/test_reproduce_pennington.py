"""`winit reproduce pennington2017` (Pennington, Schoenholz & Ganguli 2017): orthogonal tanh
at criticality stays near isometry, Gaussian weights spread as depth, ReLU cannot be
isometric, and the isometric 100-layer tanh net trains where the Gaussian one does not
yet. The fast version through the CLI; the full one with the other full versions."""

import json

from typer.testing import CliRunner

from weightinit_cli.cli import app

runner = CliRunner()


def test_pennington2017_through_the_cli(runs):
    result = runner.invoke(app, ["reproduce", "pennington2017", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["agree"], data["measured"]
    rows = {(r["arm"], r["depth"]): r for r in data["rows"]}
    orthogonal, gaussian = rows[("tanh orthogonal", 64)], rows[("tanh Gaussian", 64)]
    assert orthogonal["σ²/m1²"] < 1.5 < 50 < gaussian["σ²/m1²"]
    assert abs(orthogonal["σ²/m1²"] - orthogonal["theory"]) < 0.05  # theory: 1.36
    assert rows[("relu orthogonal", 64)]["σ²/m1²"] > 0.8 * 64
    trained = rows[("train orthogonal", 100)]["steps to target"]
    assert trained is not None and trained < 400
    run = runs / data["run_dir"].split("/")[-1]
    assert "pennington2017_tanh_orthogonal.png" in {p.name for p in run.iterdir()}
