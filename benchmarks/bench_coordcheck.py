"""winit's coordinate check beside mup's `get_coord_data` on the same setup (issue 16,
"Speed"): an MLP 64 -> w -> w -> 10, widths 64 ... 2048, 4 Adam steps at lr 1e-2,
3 seeds, one fixed batch of 128 Gaussian inputs; both after their imports.

    python benchmarks/bench_coordcheck.py [--repeats 3] [--jobs N] [--json]

winit runs its 18 networks in this process (jobs=1, one torch thread) and on `--jobs`
forked workers (default: winit's, one per core). Both after a warm-up in this process,
which has imported torch's compiler stack (the first torch.optim optimizer does), so the
workers forked from it do not pay that second again: the whole command pays it
(benchmarks/README.md).

mup (`pip install --no-deps mup==1.0.0` plus pandas) is optional: without it only
winit's time is reported. The ratio printed is fc2's (winit: dense2) mean |x| at width
2048 over width 512 at each step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

WIDTHS = (64, 128, 256, 512, 1024, 2048)
STEPS, SEEDS, LR = 4, 3, 1e-2
SETS = [
    "model.depth=2",
    "model.input_shape=[64]",
    "model.num_classes=10",
    "data.name=gaussian",
    "train.optimizer=adam",
    f"train.lr={LR}",
    "train.batch_size=128",
]


def winit_run(jobs: int | None) -> tuple[float, list[float]]:
    from weightinit_cli.coordcheck import coordcheck
    from weightinit_cli.experiments import load_dataset
    from weightinit_cli.loading import load_config

    cfg = load_config(None, SETS, "coordcheck")
    data = load_dataset(cfg)
    start = time.perf_counter()
    result = coordcheck(cfg, data, "cpu", WIDTHS, STEPS, SEEDS, jobs=jobs)
    seconds = time.perf_counter() - start
    dense2 = next(m for m in result.modules if m.name == "dense2")
    i512, i2048 = WIDTHS.index(512), WIDTHS.index(2048)
    return seconds, [row[i2048] / row[i512] for row in dense2.sizes]


def mup_run() -> tuple[float, list[float]] | None:
    try:
        from mup.coord_check import get_coord_data
    except ImportError:
        return None
    import torch
    from torch import nn

    from weightinit_cli.experiments import first_batch, load_dataset
    from weightinit_cli.loading import load_config

    cfg = load_config(None, SETS, "coordcheck")
    batch = first_batch(load_dataset(cfg), 128, "cpu")

    class MLP(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(64, width), nn.Linear(width, width)
            self.readout = nn.Linear(width, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.readout(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    models = {w: (lambda w=w: MLP(w)) for w in WIDTHS}
    start = time.perf_counter()
    df = get_coord_data(
        models, [batch], optimizer="adam", lr=LR, mup=False, nsteps=STEPS, nseeds=SEEDS,
        cuda=False, show_progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    fc2 = df[df.module == "fc2"].groupby(["t", "width"]).l1.mean()
    return seconds, [float(fc2[t, 2048] / fc2[t, 512]) for t in range(1, STEPS + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="winit's workers (default: its)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from weightinit_cli.coordcheck import default_coord_jobs

    jobs = default_coord_jobs(len(WIDTHS) * SEEDS) if args.jobs is None else args.jobs
    # warm: imports, torch's first Adam (it imports torch._dynamo)
    winit_run(1), winit_run(jobs), mup_run()
    ours, ours_here, theirs = [], [], []
    for _ in range(args.repeats):  # interleaved, so a slow spell of the machine hits all three
        ours_here.append(winit_run(1))
        ours.append(winit_run(jobs))
        theirs.append(mup_run())
    out = {
        "winit_jobs": jobs,
        "winit_seconds": statistics.median(s for s, _ in ours),
        "winit_seconds_jobs1": statistics.median(s for s, _ in ours_here),
        "winit_dense2_2048_over_512": [round(r, 3) for r in ours[0][1]],
    }
    assert ours[0][1] == ours_here[0][1], "jobs changed winit's coordinates"
    if theirs[0] is not None:
        out["mup_seconds"] = statistics.median(s for s, _ in theirs)  # type: ignore[misc]
        out["mup_fc2_2048_over_512"] = [round(r, 3) for r in theirs[0][1]]  # type: ignore[index]
        out["winit_over_mup"] = round(out["winit_seconds"] / out["mup_seconds"], 3)
        out["winit_jobs1_over_mup"] = round(out["winit_seconds_jobs1"] / out["mup_seconds"], 3)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for key, value in out.items():
            print(f"{key:28} {value}")


if __name__ == "__main__":
    main()
