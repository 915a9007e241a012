"""`winit transfer` run: the width x learning-rate sweep through the sweep runner, then the
transfer curves written beside the sweep's own files (apart from session.py, which the
sweep's trials import)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .plots import png_bytes, transfer_figure
from .runs import write_atomic
from .session import Recorded
from .sweep.outputs import run_sweep
from .transfer import transfer_result


def transfer(
    sweep: Any,
    *,
    runs_dir: str | Path | None = None,
    backend: str = "local",
    jobs: int | None = None,
    address: str | None = None,
    fresh: bool = False,
    progress: Any = None,
    command: str = "",
) -> Recorded:
    """`winit transfer`: the width x lr sweep (transfer.transfer_sweep) run, or resumed, by
    the sweep runner; then the transfer curves, written beside the sweep's own files as
    transfer.json and transfer.png. `files` holds nothing; `result` is the TransferResult
    and the SweepResult is at `result.sweep_result`."""
    swept, code = run_sweep(
        sweep,
        runs_dir=runs_dir,
        backend=backend,
        jobs=jobs,
        address=address,
        fresh=fresh,
        progress=progress,
        command=command,
    )
    result = transfer_result(swept)
    result.sweep_result = swept
    run_dir = Path(swept.run_dir)
    write_atomic(run_dir / "transfer.json", json.dumps(result.to_dict(), indent=2) + "\n")
    write_atomic(run_dir / "transfer.png", png_bytes(transfer_figure(result)))
    return Recorded(result, run_dir, code)
