"""`winit reproduce yang2021_transformer` (Yang et al. 2021, Tensor Programs V, for the
transformer): on the pointer task the optimal Adam lr moves with width under SP and stays
put under µP (attention logits / d_head), where wider is better. It trains 72 networks for
minutes, so its runs are marked slow; its verdict is yang2021's (test_reproduce_yang.py)."""

import json

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.reproduce import REPRODUCTIONS
from weightinit_cli.reproduce.yang2021 import LOG2_LRS
from weightinit_cli.reproduce.yang2021_transformer import WIDTHS

runner = CliRunner()


def test_the_network_is_an_adam_transformer_on_the_pointer_task():
    cfg = REPRODUCTIONS["yang2021_transformer"].config()
    assert (cfg.model.type, cfg.data.name) == ("transformer", "pointer")
    assert cfg.train.optimizer == "adam"
    assert cfg.model.base_width == WIDTHS[0] and WIDTHS[-1] / WIDTHS[0] == 8
    assert all(width % cfg.model.heads == 0 for width in WIDTHS)
    assert cfg.model.norm_position == "pre"


def check_claim(rows):
    def optima(init):
        mine = [row for row in rows if row["init"] == init]
        assert [row["width"] for row in mine] == list(WIDTHS)
        return [row["optimal log2 lr"] for row in mine], [row["optimal loss"] for row in mine]

    sp, _ = optima("sp")
    mup, mup_loss = optima("mup")
    for best in sp + mup:
        assert LOG2_LRS[0] < best < LOG2_LRS[-1]
    assert max(sp) - min(sp) >= 2 and sp[-1] < sp[0]
    assert max(mup) - min(mup) <= 1
    assert mup_loss[-1] < mup_loss[0]


@pytest.mark.slow
def test_yang2021_transformer_through_the_cli(runs):
    result = runner.invoke(app, ["reproduce", "yang2021_transformer", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["agree"], data["measured"]
    assert data["measured"].startswith("transformer of depth 2, adam for 50 steps on pointer")
    check_claim(data["rows"])
