"""winit's benchmarks: start-up, training overhead, statistics overhead and scaling.

    python benchmarks/run.py                    # everything (several minutes)
    python benchmarks/run.py --quick            # fewer repeats and sizes (a minute or two)
    python benchmarks/run.py --only startup     # one part: startup | train | stats | scaling

Every number is a ratio against a plain baseline measured in the same run, interleaved
with it, so a busy machine slows both. Prints Markdown tables and writes
benchmarks/results.json (or --json PATH). benchmarks/README.md explains each measure.
Nothing here is a test: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable

# The targets, as ratios to the baseline (at most): winit --help against importing typer
# and rich, winit train against a plain script that does the same training and writes the
# same files, the statistics probe against a plain forward and backward pass.
TARGETS = {
    "startup": 2.0,
    "train_wall": 1.10,
    "train_loop": 1.05,
    "stats_time": 1.25,
    "stats_memory": 1.2,
}

HEAVY = ("torch", "numpy", "matplotlib", "scipy", "pydantic")


def child_env() -> dict[str, str]:
    """The environment for the processes measured: as a user's shell has it, except that
    Python may cache bytecode (a sandbox's PYTHONDONTWRITEBYTECODE would otherwise make
    every start recompile whatever was edited last) and the console is wide enough."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("COLUMNS", "120")
    if THREADS:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(THREADS)
    return env


THREADS: int | None = None  # --threads: torch's intra-op threads, here and in every child


def cpu_seconds() -> float:
    """User + system CPU time of the children waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio_cell(value: float, target: float | None) -> str:
    if target is None:
        return f"{value:.2f}x"
    return f"{value:.2f}x ({'met' if value <= target else 'NOT met'}, ≤ {target:g}x)"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def wall(argv: Sequence[str], env: dict[str, str], cwd: Path = ROOT) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )
    return time.perf_counter() - start


def run_in_pty(argv: Sequence[str], env: dict[str, str], cwd: Path = ROOT) -> float:
    """Wall time of a command whose stdout and stderr are a terminal (as a user's are,
    so Rich draws its live progress display); what it prints is read and dropped."""
    master, slave = pty.openpty()
    drained = threading.Thread(target=_drain, args=(master,), daemon=True)
    drained.start()
    start = time.perf_counter()
    try:
        code = subprocess.run(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave
        ).returncode
    finally:
        os.close(slave)
    elapsed = time.perf_counter() - start
    drained.join(timeout=5)
    os.close(master)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {code}")
    return elapsed


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


# --------------------------------------------------------------------------- start-up

IMPORTS_PROBE = """
import json, sys
sys.argv = ["winit", *sys.argv[1:]]
from weightinit_cli.cli import app
try:
    app()
except SystemExit:
    pass
heavy = [m for m in {heavy!r} if m in sys.modules]
with open({path!r}, "w") as handle:
    json.dump(heavy, handle)
"""


def console_script() -> Path | None:
    """The `winit` entry-point script beside this interpreter, if it is a Python script."""
    script = Path(PY).parent / "winit"
    try:
        first = script.read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return None
    return script if first.startswith("#!") and "python" in first else None


def bench_startup(quick: bool) -> dict[str, Any]:
    env = child_env()
    repeats = 7 if quick else 21
    commands: dict[str, list[str]] = {"baseline": [PY, "-c", "import typer, rich"]}
    script = console_script()
    for args in (["--help"], ["methods"], ["schema"]):
        label = " ".join(args)
        commands[f"python -m weightinit_cli {label}"] = [PY, "-m", "weightinit_cli", *args]
        if script is not None:
            commands[f"winit {label} (script)"] = [PY, str(script), *args]
    for argv in commands.values():  # warm the OS file cache and the bytecode caches
        wall(argv, env)
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(repeats):  # interleaved: a busy moment slows every command alike
        for label, argv in commands.items():
            times[label].append(wall(argv, env))
    base = median(times["baseline"])
    imports: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for args in (["--help"], ["methods"], ["schema"]):
            path = os.path.join(tmp, "heavy.json")
            code = IMPORTS_PROBE.format(heavy=HEAVY, path=path)
            subprocess.run(
                [PY, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, check=True
            )
            imports[" ".join(args)] = json.loads(Path(path).read_text())
    rows, results = [], {}
    for label, values in times.items():
        ms, ratio = 1000 * median(values), median(values) / base
        command = next((a for a in imports if label.endswith(a) or f" {a} " in label), None)
        heavy = imports.get(command or "", []) if label != "baseline" else []
        results[label] = {"median_s": median(values), "ratio": ratio, "runs": values}
        if label != "baseline":
            results[label]["heavy_imports"] = heavy
        rows.append(
            [
                f"`{label}`",
                f"{ms:.0f}",
                "1.00x"
                if label == "baseline"
                else ratio_cell(ratio, TARGETS["startup"] if "--help" in label else None),
                ", ".join(heavy) or "none" if label != "baseline" else "",
            ]
        )
    print(f"\n### Start-up (median of {repeats} runs, ms)\n")
    print(table(["command", "ms", "ratio to `import typer, rich`", "heavy imports"], rows))
    return {"repeats": repeats, "commands": results, "console_script": str(script)}


# --------------------------------------------------------------------------- training


def bench_train(quick: bool) -> dict[str, Any]:
    """Whole process to whole process: benchmarks/baseline_train.py against `winit train
    configs/deep_relu.yaml --set train.weight_spectra=false` on a terminal (progress display
    on) and with --json (no display); and steps per second inside the training loop of
    each."""
    env = child_env()
    repeats = 1 if quick else 5
    config = ROOT / "configs" / "deep_relu.yaml"
    tmp = Path(tempfile.mkdtemp(prefix="winit-bench-train-"))
    labels = ["baseline", "winit train (terminal)", "winit train --json"]
    results: dict[str, list[dict[str, float]]] = {label: [] for label in labels}

    def baseline() -> dict[str, float]:
        argv = [PY, str(HERE / "baseline_train.py"), "--out", str(tmp / "baseline")]
        cpu, start = cpu_seconds(), time.perf_counter()
        out = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
        elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        data = json.loads(out.stdout.strip().splitlines()[-1])
        return {"wall_s": elapsed, "cpu_s": cpu, "loop_s": data["loop_seconds"], "steps": 400}

    def winit(as_json: bool) -> dict[str, float]:
        runs = tmp / ("runs-json" if as_json else "runs")
        argv = [PY, "-m", "weightinit_cli", "train", str(config), "--runs-dir", str(runs)]
        # like for like: the baseline logs no weight spectra (bench_train_spectra.py has those)
        argv += ["--set", "train.weight_spectra=false"]
        cpu = cpu_seconds()
        if as_json:
            start = time.perf_counter()
            subprocess.run(
                [*argv, "--json"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, check=True
            )
            elapsed = time.perf_counter() - start
        else:
            elapsed = run_in_pty(argv, env)
        cpu = cpu_seconds() - cpu
        latest = max(runs.iterdir(), key=lambda p: p.stat().st_mtime)
        meta = json.loads((latest / "meta.json").read_text())
        shutil.rmtree(latest)
        loop = (meta.get("timing") or {}).get("train_loop_seconds", float("nan"))
        return {"wall_s": elapsed, "cpu_s": cpu, "loop_s": loop, "steps": 400}

    runners = {labels[0]: baseline, labels[1]: lambda: winit(False), labels[2]: lambda: winit(True)}
    try:
        baseline()  # warm-up: file caches, bytecode
        for _ in range(repeats):  # interleaved: a busy moment slows all three alike
            for label, runner in runners.items():
                results[label].append(runner())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(label: str, key: str) -> float:
        return median([r[key] for r in results[label]])

    base = {key: med("baseline", key) for key in ("wall_s", "cpu_s", "loop_s")}
    rows, summary = [], {}
    for label in labels:
        wall_s, cpu_s, loop_s = med(label, "wall_s"), med(label, "cpu_s"), med(label, "loop_s")
        summary[label] = {
            "wall_s": wall_s,
            "cpu_s": cpu_s,
            "loop_s": loop_s,
            "steps_per_s": 400 / loop_s,
            "wall_ratio": wall_s / base["wall_s"],
            "cpu_ratio": cpu_s / base["cpu_s"],
            "loop_ratio": loop_s / base["loop_s"],
            "runs": results[label],
        }
        is_base = label == "baseline"
        rows.append(
            [
                "plain PyTorch (`benchmarks/baseline_train.py`)" if is_base else f"`{label}`",
                f"{wall_s:.2f}",
                "1.00x" if is_base else ratio_cell(wall_s / base["wall_s"], TARGETS["train_wall"]),
                f"{cpu_s:.2f}",
                "1.00x" if is_base else f"{cpu_s / base['cpu_s']:.2f}x",
                f"{400 / loop_s:.1f}",
                "1.00x" if is_base else ratio_cell(loop_s / base["loop_s"], TARGETS["train_loop"]),
            ]
        )
    print(f"\n### Training: configs/deep_relu.yaml, 400 steps (median of {repeats})\n")
    print(
        table(
            [
                "process",
                "wall s",
                "wall ratio",
                "CPU s",
                "CPU ratio",
                "steps/s in the loop",
                "loop time ratio",
            ],
            rows,
        )
    )
    return {"repeats": repeats, "results": summary}


# --------------------------------------------------------------------------- statistics


def time_passes(
    passes: dict[str, Callable[[], Any]], repeats: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Seconds per call of each pass, interleaved, after warm-up calls."""
    for _ in range(warmup):
        for run in passes.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(repeats):
        for name, run in passes.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def bench_stats(quick: bool) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from common import PASSES, stats_workload

    repeats = 5 if quick else 15
    memory_repeats = 1 if quick else 3
    # A fixed mmap threshold: every large block comes from mmap and goes back to the OS
    # when freed, so the resident set follows the live allocations (glibc's sliding
    # threshold otherwise keeps some freed blocks resident, and the peaks wander by 30%).
    memory_env = {**child_env(), "MALLOC_MMAP_THRESHOLD_": "65536"}
    rows, results = [], {}
    for layer, label in (("dense", "30×512 ReLU MLP, batch 512"), ("conv2d", "--layer conv2d")):
        workload = stats_workload(layer)
        times = time_passes(
            {name: (lambda run=run, w=workload: run(*w)) for name, run in PASSES.items()},
            repeats,
        )
        del workload
        memory: dict[str, list[int]] = {"plain": [], "probe": []}
        for _ in range(memory_repeats):
            for variant in memory:
                out = subprocess.run(
                    [PY, str(HERE / "probe_memory.py"), layer, variant],
                    env=memory_env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                memory[variant].append(json.loads(out.stdout)["peak_bytes"])
        plain_s, probe_s = median(times["plain"]), median(times["probe"])
        plain_b, probe_b = median(memory["plain"]), median(memory["probe"])
        results[layer] = {
            "plain_s": plain_s,
            "probe_s": probe_s,
            "time_ratio": probe_s / plain_s,
            "plain_peak_bytes": plain_b,
            "probe_peak_bytes": probe_b,
            "memory_ratio": probe_b / plain_b,
            "times": times,
            "memory": memory,
        }
        rows.append(
            [
                f"`winit stats` {label}",
                f"{1000 * plain_s:.1f}",
                f"{1000 * probe_s:.1f}",
                ratio_cell(probe_s / plain_s, TARGETS["stats_time"]),
                f"{plain_b / 2**20:.1f}",
                f"{probe_b / 2**20:.1f}",
                ratio_cell(probe_b / plain_b, TARGETS["stats_memory"]),
            ]
        )
    print(f"\n### Statistics: probe vs a plain forward+backward (median of {repeats})\n")
    print(
        table(
            [
                "model",
                "plain ms",
                "probe ms",
                "time ratio",
                "plain peak MiB",
                "probe peak MiB",
                "memory ratio",
            ],
            rows,
        )
    )
    return {"repeats": repeats, "memory_repeats": memory_repeats, "results": results}


# --------------------------------------------------------------------------- scaling


def bench_scaling(quick: bool) -> dict[str, Any]:
    """`winit stats` (probe, theory, verdict: experiments.measure) beside a plain
    forward+backward, and winit's training loop (experiments' train()) beside a plain
    loop, against depth at width 256 and against width at depth 30."""
    sys.path.insert(0, str(HERE))
    from common import plain_pass, plain_train_loop

    from weightinit_cli.experiments import first_batch, initialized, load_dataset, measure
    from weightinit_cli.loading import load_config
    from weightinit_cli.train import train

    steps = 20 if quick else 50
    repeats = 1 if quick else 2
    shapes = [(10, 256), (30, 256), (100, 256), (30, 64), (30, 1024)]
    if quick:
        shapes = [(10, 256), (30, 256), (30, 64)]
    rows, results = [], []
    for depth, width in shapes:
        sets = [f"model.depth={depth}", f"model.width={width}"]
        stats_cfg = load_config(None, sets, "stats")
        train_cfg = load_config(
            ROOT / "configs" / "deep_relu.yaml", [*sets, f"train.steps={steps}"], "train"
        )
        stats_data, train_data = load_dataset(stats_cfg), load_dataset(train_cfg)
        model, report = initialized(stats_cfg, stats_cfg.init.spec, stats_data)
        params = sum(p.numel() for p in model.parameters())
        x, y = first_batch(stats_data, stats_cfg.train.batch_size, "cpu")
        stats = time_passes(
            {
                "plain": lambda m=model, x=x, y=y: plain_pass(m, x, y),
                "winit": lambda m=model, r=report, c=stats_cfg, d=stats_data: measure(
                    c, m, r, d, "cpu"
                ),
            },
            repeats,
            warmup=1,
        )
        del model, x, y
        loops: dict[str, list[float]] = {"plain": [], "winit": []}
        for _ in range(repeats):
            model, _ = initialized(train_cfg, train_cfg.init.spec, train_data)
            loops["plain"].append(plain_train_loop(model, train_data, train_cfg.train))
            model, _ = initialized(train_cfg, train_cfg.init.spec, train_data)
            history = train(
                model, train_data, train_cfg.train, train_cfg.model.plan, seed=train_cfg.seed
            )
            loops["winit"].append(history.seconds)
            del model
        entry = {
            "depth": depth,
            "width": width,
            "parameters": params,
            "stats_plain_s": median(stats["plain"]),
            "stats_s": median(stats["winit"]),
            "train_plain_s": median(loops["plain"]),
            "train_s": median(loops["winit"]),
            "train_steps": steps,
        }
        results.append(entry)
        rows.append(
            [
                depth,
                width,
                f"{params / 1e6:.2f}M",
                f"{1000 * entry['stats_s']:.0f}",
                f"{entry['stats_s'] / entry['stats_plain_s']:.2f}x",
                f"{1e9 * entry['stats_s'] / params:.0f}",
                f"{entry['train_s']:.2f}",
                f"{entry['train_s'] / entry['train_plain_s']:.2f}x",
                f"{1e9 * entry['train_s'] / steps / params:.1f}",
            ]
        )
    print(f"\n### Scaling (stats: batch 512; train: {steps} steps of batch 128)\n")
    print(
        table(
            [
                "depth",
                "width",
                "parameters",
                "stats ms",
                "stats vs plain",
                "stats ns/param",
                f"train s ({steps} steps)",
                "train vs plain",
                "train ns/param/step",
            ],
            rows,
        )
    )
    return {"steps": steps, "repeats": repeats, "results": results}


SECTIONS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "startup": bench_startup,
    "train": bench_train,
    "stats": bench_stats,
    "scaling": bench_scaling,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    parser.add_argument("--only", choices=list(SECTIONS), action="append", help="one part")
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="results file")
    parser.add_argument(
        "--threads", type=int, help="torch threads everywhere (default: torch's own choice)"
    )
    args = parser.parse_args()
    global THREADS
    THREADS = args.threads
    if THREADS:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(THREADS)
        import torch

        torch.set_num_threads(THREADS)
    sys.path.insert(0, str(HERE))
    from common import machine

    info = machine()
    print("## winit benchmarks\n")
    print(
        f"{info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gib']} GiB, "
        f"Python {info['python']}, torch {info['versions']['torch']} "
        f"({info['torch_threads']} threads), load average {info['load_average']}"
    )
    results: dict[str, Any] = {
        "machine": info,
        "quick": args.quick,
        "threads": THREADS,
        "sections": {},
    }
    for name in args.only or list(SECTIONS):
        start = time.perf_counter()
        results["sections"][name] = SECTIONS[name](args.quick)
        results["sections"][name]["seconds"] = time.perf_counter() - start
    results["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
