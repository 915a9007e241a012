"""The plain-PyTorch script that `winit train configs/deep_relu.yaml` is measured against:
the same training, and the same files, written by hand.

The same model (30 hidden Linear(256)+ReLU layers on 2-D input, a Linear head to 3
classes, He-normal weights and zero biases), the same data (winit's own spirals
generator: 2048 samples, seed 0, noise 0.1, a 20% held-out split), the same optimizer
(SGD, lr 0.01, momentum 0.9), the same 400 steps of shuffled mini-batches of 128 and the
same logging: at step 0 and every 10 steps the mean training loss since the last log,
the held-out loss and accuracy, the global gradient norm and each layer's gradient std,
a row of metrics.csv flushed each time. Like winit, it measures every layer (weights,
outputs, activations, gradients, dead units) in one forward and backward pass at init
and again after training, and writes the run's directory: config.yaml, meta.json,
metrics.csv, layers.csv, summary.json and loss.png (the same two panels). No config
validation, progress display, theory or verdict.

    python benchmarks/baseline_train.py [--steps N] [--out DIR]

prints one JSON line: {"steps", "loop_seconds", "steps_per_second", "total_seconds"}.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402

import torch  # noqa: E402
import yaml  # noqa: E402
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


def summary(t: torch.Tensor, prefix: str) -> dict[str, float]:
    t = t.detach()
    return {
        f"{prefix}_mean": t.mean().item(),
        f"{prefix}_std": t.std(correction=0).item(),
        f"{prefix}_min": t.min().item(),
        f"{prefix}_max": t.max().item(),
    }


def layer_rows(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, when: str) -> list[dict]:
    """Per Linear layer, from one forward and backward pass with hooks: the weight, its
    output, the ReLU after it, the weight's and the output's gradient, dead units."""
    linears = [(i, m) for i, m in enumerate(model) if isinstance(m, nn.Linear)]
    rows: dict[int, dict] = {}
    handles = []
    for n, (i, linear) in enumerate(linears, start=1):
        rows[i] = {
            "when": when,
            "index": n,
            "name": f"dense{n}",
            "shape": "x".join(map(str, linear.weight.shape)),
        }

        def on_output(module, inputs, output, i=i):
            rows[i].update(summary(output, "preactivation"))
            output.register_hook(
                lambda g, i=i: rows[i].update(
                    activation_grad_mean=g.mean().item(),
                    activation_grad_std=g.std(correction=0).item(),
                    activation_grad_norm=g.norm().item(),
                )
            )

        handles.append(linear.register_forward_hook(on_output))
        if i + 1 < len(model):

            def on_activation(module, inputs, output, i=i):
                rows[i].update(summary(output, "activation"))
                rows[i]["dead_fraction"] = (output.amax(dim=0) == 0).float().mean().item()

            handles.append(model[i + 1].register_forward_hook(on_activation))
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    for handle in handles:
        handle.remove()
    for i, linear in linears:
        rows[i].update(summary(linear.weight, "weight"))
        grad = linear.weight.grad
        rows[i].update(
            grad_mean=grad.mean().item(),
            grad_std=grad.std(correction=0).item(),
            grad_norm=grad.norm().item(),
        )
    model.zero_grad(set_to_none=True)
    return list(rows.values())


def loss_png(history: list[dict], path: str) -> None:
    """Training loss (log scale) and held-out accuracy against step, as winit draws them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.14, top=0.86, wspace=0.28)
    FigureCanvasAgg(fig)
    loss_ax, acc_ax = fig.subplots(1, 2)
    steps = [p["step"] for p in history]
    loss_ax.plot(steps, [p["loss"] for p in history], color="C0", label="he_normal")
    acc_ax.plot(steps, [p["accuracy"] for p in history], color="C0", label="he_normal")
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss")
    acc_ax.set_ylabel("held-out accuracy")
    acc_ax.set_ylim(0, 1.02)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("deep_relu")
    fig.savefig(path, format="png", dpi=110)


def write_json(path: str, data: object) -> None:
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--out", default=None, help="run directory (default: a temp one)")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="winit-baseline-")
    os.makedirs(out, exist_ok=True)
    config = {
        "seed": SEED,
        "model": {"depth": DEPTH, "width": WIDTH, "input_shape": [INPUTS], "activation": "relu"},
        "init": {"method": "he_normal"},
        "data": {"name": "spirals", "samples": SAMPLES, "noise": NOISE},
        "train": {"steps": args.steps, "batch_size": BATCH, "lr": LR, "momentum": MOMENTUM},
    }
    with open(os.path.join(out, "config.yaml"), "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    meta = {
        "status": "running",
        "seed": SEED,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    write_json(os.path.join(out, "meta.json"), meta)

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
    linears = [m for m in model if isinstance(m, nn.Linear)]
    layers = layer_rows(model, x[:BATCH], y[:BATCH], "init")
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    generator = torch.Generator().manual_seed(SEED)

    def batches():
        while True:
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y) - BATCH + 1, BATCH):
                yield order[start : start + BATCH]

    history: list[dict] = []
    names = [f"dense{n}" for n in range(1, len(linears) + 1)]
    with open(os.path.join(out, "metrics.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "step",
                "loss",
                "accuracy",
                "test_loss",
                "grad_norm",
                *(f"grad_std_{n}" for n in names),
            ]
        )

        def log(step: int, loss: float) -> None:
            model.eval()
            with torch.no_grad():
                logits = model(x_test)
            model.train()
            test_loss = nn.functional.cross_entropy(logits, y_test).item()
            accuracy = (logits.argmax(dim=1) == y_test).float().mean().item()
            norms = [p.grad.norm() for p in model.parameters() if p.grad is not None]
            grad_norm = torch.stack(norms).norm().item()
            stds = [m.weight.grad.std(correction=0).item() for m in linears]
            writer.writerow([step, loss, accuracy, test_loss, grad_norm, *stds])
            handle.flush()
            history.append({"step": step, "loss": loss, "accuracy": accuracy})

        model.train()
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

    layers += layer_rows(model, x[:BATCH], y[:BATCH], "final")
    with open(os.path.join(out, "layers.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(layers[0]))
        writer.writeheader()
        writer.writerows(layers)
    result = {
        "steps": args.steps,
        "initial_loss": history[0]["loss"],
        "final_loss": history[-1]["loss"],
        "final_accuracy": history[-1]["accuracy"],
        "history": history,
    }
    write_json(os.path.join(out, "summary.json"), result)
    loss_png(history, os.path.join(out, "loss.png"))
    meta.update(status="completed", timing={"train_loop_seconds": loop_seconds})
    write_json(os.path.join(out, "meta.json"), meta)
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
