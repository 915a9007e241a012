"""The plain-PyTorch baseline that `winit train configs/deep_relu.yaml` is measured against.

The same model (30 hidden Linear(256)+ReLU layers on 2-D input, a Linear head to 3
classes, He-normal weights and zero biases), the same data (winit's own spirals
generator: 2048 samples, seed 0, noise 0.1, a 20% held-out split), the same optimizer
(SGD, lr 0.01, momentum 0.9), the same 400 steps of shuffled mini-batches of 128, and
the same logging cadence: at step 0 and every 10 steps, the mean training loss since the
last log, the held-out loss and accuracy and the global gradient norm, written to a CSV
and flushed. Before the loop, one plain forward and backward pass (winit makes one with
statistics at init), so that both loops start warm. No progress display, statistics,
plots or run directory.

    python benchmarks/baseline_train.py [--steps N] [--out metrics.csv]

prints one JSON line: {"steps", "loop_seconds", "steps_per_second", "total_seconds"}.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

from weightinit_cli.data import make_dataset  # noqa: E402  (NumPy only: the same arrays)

# configs/deep_relu.yaml, resolved (its values and the config defaults it leaves alone).
DEPTH, WIDTH, INPUTS, CLASSES = 30, 256, 2, 3
SAMPLES, SEED, NOISE, TEST_FRACTION = 2048, 0, 0.1, 0.2
STEPS, BATCH, LR, MOMENTUM, LOG_EVERY = 400, 128, 0.01, 0.9, 10


def build_model() -> nn.Sequential:
    layers: list[nn.Module] = []
    fan_in = INPUTS
    for _ in range(DEPTH):
        layers += [nn.Linear(fan_in, WIDTH), nn.ReLU()]
        fan_in = WIDTH
    layers.append(nn.Linear(fan_in, CLASSES))
    model = nn.Sequential(*layers)
    for module in model:
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--out", default=None, help="metrics CSV (default: a temp file)")
    args = parser.parse_args()

    data = make_dataset(
        "spirals",
        input_shape=[INPUTS],
        num_classes=CLASSES,
        samples=SAMPLES,
        seed=SEED,
        noise=NOISE,
        test_fraction=TEST_FRACTION,
    )
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_test, y_test = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    torch.manual_seed(SEED)
    model = build_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    generator = torch.Generator().manual_seed(SEED)

    def batches():
        while True:
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y) - BATCH + 1, BATCH):
                yield order[start : start + BATCH]

    out = args.out or os.path.join(tempfile.mkdtemp(prefix="winit-baseline-"), "metrics.csv")
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "loss", "accuracy", "test_loss", "grad_norm"])

        def log(step: int, loss: float) -> None:
            model.eval()
            with torch.no_grad():
                logits = model(x_test)
            model.train()
            test_loss = nn.functional.cross_entropy(logits, y_test).item()
            accuracy = (logits.argmax(dim=1) == y_test).float().mean().item()
            norms = [p.grad.norm() for p in model.parameters() if p.grad is not None]
            grad_norm = torch.stack(norms).norm().item()
            writer.writerow([step, loss, accuracy, test_loss, grad_norm])
            handle.flush()

        model.train()
        # One forward and backward pass before the loop, as winit's statistics at init do,
        # so that both loops start warm (the first pass of a process pays one-time setup).
        nn.functional.cross_entropy(model(x[:BATCH]), y[:BATCH]).backward()
        model.zero_grad(set_to_none=True)
        loss_sum, since_log = 0.0, 0
        loop_start = time.perf_counter()
        stream = batches()
        for step in range(args.steps):
            index = next(stream)
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x[index]), y[index])
            loss.backward()
            if step == 0:
                log(0, loss.item())
            optimizer.step()
            loss_sum += loss.item()
            since_log += 1
            if (step + 1) % LOG_EVERY == 0 or step + 1 == args.steps:
                log(step + 1, loss_sum / since_log)
                loss_sum, since_log = 0.0, 0
        loop_seconds = time.perf_counter() - loop_start
    print(
        json.dumps(
            {
                "steps": args.steps,
                "loop_seconds": loop_seconds,
                "steps_per_second": args.steps / loop_seconds,
                "total_seconds": time.perf_counter() - START,
            }
        )
    )


if __name__ == "__main__":
    main()
