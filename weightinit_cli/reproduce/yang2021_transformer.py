"""Yang et al. 2021, Tensor Programs V, for the transformer (their Fig. 1 and 4: a
transformer's optimal learning rate shifts with width under SP and is stable under µP):
winit's pre-LN transformer on the pointer task (data.py: token 0 names a position, the
class is the token found there), trained by Adam over widths 32 ... 256 and learning rates
2^-12 ... 2^-4, under SP and under µP (readout multiplier, Adam lr / width_mult for the
hidden matrices, attention logits Q·K / d_head with the heads fixed).

The grid and the verdict are yang2021's (yang2021.py): SP's optimum must move at least two
grid steps over the 8x widths, µP's at most one, both inside the grid, and under µP the
widest must beat the narrowest at its tuned lr. Its own reproduction, apart from the MLP's,
because it takes minutes where the MLP's fast version takes seconds.

Both versions train 50 steps (the full one on 3 seeds, the fast on 1): by 100 steps the wide
nets' losses fall to 1e-3 and below at several learning rates, and the optimum among such
losses says little (the full version at 100 steps put µP's optima at 2^-7, -6, -6, -5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .finding import Finding, Reproduction
from .yang2021 import transfer_finding

if TYPE_CHECKING:
    from ..config import Config

WIDTHS = (32, 64, 128, 256)  # 8x; d_head 8 ... 64 with the 4 heads fixed


def run(cfg: Config, fast: bool) -> Finding:
    return transfer_finding(REPRODUCTION, cfg, fast, "transformer", WIDTHS)


REPRODUCTION = Reproduction(
    "yang2021_transformer",
    "Yang et al. 2021",
    "Tensor Programs V: with Adam, a transformer's optimal learning rate moves with width "
    "under SP (at least two log2 grid steps over 8x the width) and stays within one step "
    "under µP (attention logits / d_head), where the widest net beats the narrowest at its "
    "tuned lr",
    run,
)
