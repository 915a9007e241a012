"""`winit reproduce brock2021_spp`: the signal propagation plot of a BN-ReLU-Conv ResNet
(Brock et al. 2021), fast by default; the full one runs in test_reproduce's slow test."""

import math

import pytest

from weightinit_cli.plots import SPP_PANELS, chart_figures, png_bytes
from weightinit_cli.reproduce import REPRODUCTIONS
from weightinit_cli.reproduce.brock2021 import shortened, stages


def run_reproduction(fast=True):
    repro = REPRODUCTIONS["brock2021_spp"]
    return repro.run(repro.config(), fast)


def test_brock2021_spp():
    finding = run_reproduction()
    assert finding.agree
    rows = {(r["stage"], r["block"]): r for r in finding.rows}
    assert sorted(rows) == [(s, b) for s in (1, 2, 3) for b in (1, 2, 3, 4)]
    # block k of a stage: (k + 1)(1 − 1/π), the skip's share and one per branch
    for (_, block), row in rows.items():
        assert row["channel variance"] == pytest.approx((block + 1) * (1 - 1 / math.pi), rel=0.1)
        assert row["branch variance"] == pytest.approx(1 - 1 / math.pi, rel=0.15)
    # reset at each transition: from the stage's top back to about 2(1 − 1/π)
    for stage in (2, 3):
        assert rows[(stage, 1)]["channel variance"] < 0.5 * rows[(stage - 1, 4)]["channel variance"]
    assert "theory 1 − 1/π = 0.682" in finding.measured
    (figure,) = chart_figures(finding.charts).values()
    assert [ax.get_title() for ax in figure.axes] == list(SPP_PANELS.values())
    assert png_bytes(figure)[:4] == b"\x89PNG"


def test_the_fast_network_keeps_each_stage_s_transition():
    cfg = REPRODUCTIONS["brock2021_spp"].config()
    assert stages(cfg) == [1] * 12 + [2] * 12 + [3] * 12
    fast = shortened(cfg, 2, [3, 8, 8], 16)
    assert stages(fast) == [1, 1, 2, 2, 3, 3]
    blocks = [layer for layer in fast.model.plan.layers if layer.kind == "residual"]
    assert [block.skip is not None for block in blocks] == [True, False] * 3
    assert blocks[-1].out_shape == (256, 2, 2)
