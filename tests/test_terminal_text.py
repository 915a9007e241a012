"""User text on the terminal: printed as it is, never as Rich markup or terminal control.

A config's name, a path, a method name, a grid value or a data file can hold `[/]`
(which Rich would refuse as a closing tag with nothing to close, after the run),
`[bold red]` (which Rich would style), ESC (which starts a terminal's colour and cursor
sequences), CR and newlines (which rewrite or break the line) and `$...$` (which
matplotlib would draw as math). Each goes through the real commands; the contract:
the same exit code as plain text, the text shown literally with control characters
escaped (ESC as \\x1b), never a raw ESC or CR of the user's, and no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app

runner = CliRunner()
TINY = ("--depth", "2", "--width", "4", "--steps", "2")
# Wide, so that a name is not wrapped; no colour unless a test asks for it.
PLAIN = {"COLUMNS": "200", "FORCE_COLOR": None, "NO_COLOR": None, "TTY_COMPATIBLE": None}

# (what the user gave, how winit must show it)
HOSTILE = {
    "closing-tag": ("exp[/]", "exp[/]"),
    "style-tag": ("[bold red]x", "[bold red]x"),
    "esc": ("a\x1b[31mb", "a\\x1b[31mb"),
    "cr": ("a\rb", "a\\rb"),
    "mathtext": ("$x^2$", "$x^2$"),
    "newline": ("a\nb", "a\\nb"),
}
CASES = [pytest.param(raw, shown, id=name) for name, (raw, shown) in HOSTILE.items()]


def invoke(args: list[str], **env: str | None):
    return runner.invoke(app, args, env={**PLAIN, **env})


def flat(text: str) -> str:
    """Output with its line breaks and runs of spaces as single spaces (Rich wraps)."""
    return " ".join(text.split())


def check(result, raw: str, shown: str, code: int = 0) -> str:
    """The exit code, `shown` in the output, and nothing of `raw` acting on the terminal."""
    output = result.output
    assert result.exit_code == code, output
    assert "Traceback" not in output, output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    assert shown in flat(output), output
    if raw != shown:  # a control character: never raw
        assert raw not in output, output
    assert "\x1b" not in output, output  # no colour here: any ESC would be the user's
    return output


def error_line(result, raw: str, shown: str) -> str:
    """A usage error: exit 2, one Error line that shows the text."""
    output = check(result, raw, shown, code=2)
    lines = output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]


@pytest.mark.parametrize(("raw", "shown"), CASES)
def test_a_config_name_and_a_runs_dir(tmp_path, raw, shown):
    """A config without a name is named after its file (a file name cannot hold "/": that
    one says its name): the training table's title; `--runs-dir`: the wrote line."""
    if "/" in raw:
        config = tmp_path / "named.yaml"
        config.write_text(f"name: {json.dumps(raw)}\n", encoding="utf-8")
    else:
        config = tmp_path / f"{raw}.yaml"
        config.write_text("seed: 0\n", encoding="utf-8")
    root = tmp_path / raw
    output = check(invoke(["train", str(config), *TINY, "--runs-dir", str(root)]), raw, shown)
    assert f"{shown}: target loss" in flat(output)
    (run,) = root.iterdir()
    assert f"wrote {tmp_path}/{shown}/{run.name}/" in flat(output)
    assert (run / "loss.png").stat().st_size > 0  # the name is the PNG's title too
    missing = tmp_path / f"no-{raw}.yaml"
    line = error_line(invoke(["train", str(missing)]), raw, shown)
    assert f"no-{shown}.yaml" in line


@pytest.mark.parametrize(("raw", "shown"), CASES)
def test_a_name_from_the_command_line(raw, shown):
    """`--set name=...`, in a sweep's plan (which runs nothing)."""
    args = ["sweep", *TINY, "--set", f"name={json.dumps(raw)}", "--grid", "seed=[0,1]"]
    output = check(invoke([*args, "--dry-run"]), raw, shown)
    assert f"Sweep {shown}: 2 trials" in flat(output)


@pytest.mark.parametrize(("raw", "shown"), CASES)
def test_an_out_directory(tmp_path, raw, shown):
    """`stats --out` says where it wrote, and that directory is there."""
    out = tmp_path / raw
    output = check(invoke(["stats", *TINY[:4], "--out", str(out)]), raw, shown)
    assert f"wrote {tmp_path}/{shown}/" in flat(output)
    assert (out / "std_vs_depth.png").is_file()
    again = error_line(invoke(["stats", *TINY[:4], "--out", str(out)]), raw, shown)
    assert "already exists" in again


@pytest.mark.parametrize(("raw", "shown"), CASES)
def test_names_in_errors(tmp_path, raw, shown):
    """An unknown method, activation, reproduction or data file, named as given."""
    data = tmp_path / f"{raw}.npz"
    for args in (
        ["train", "--method", raw],
        ["compare", "--methods", raw],
        ["methods", raw],
        ["critical", "--activation", raw],
        ["reproduce", raw],
        ["train", "--set", "data.name=npz", "--set", f"data.path={json.dumps(str(data))}"],
    ):
        line = error_line(invoke(args), raw, shown)
        assert "Error: " in line


def _npz(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        np.savez(f, x=rng.standard_normal((40, 2)).astype(np.float32), y=np.arange(40) % 3)


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "force-color"])
def test_a_sweep_of_hostile_values(tmp_path, monkeypatch, colour):
    """A sweep named with every hostile string, over data files named with them: the
    plan, the live progress, the table, the heatmaps' ticks and the wrote line."""
    monkeypatch.chdir(tmp_path)
    values = [raw for raw, _ in HOSTILE.values()]
    for value in values:
        _npz(tmp_path / value)
    name = " ".join(values)
    args = [
        "sweep",
        *TINY,
        "--set",
        f"name={json.dumps(name)}",
        "--set",
        "data.name=npz",
        "--set",
        f"data.path={json.dumps(values[0])}",
        "--grid",
        f"data.path={json.dumps(values)}",
        "--runs-dir",
        "runs",
    ]
    env = {"FORCE_COLOR": "1", "TERM": "xterm-256color"} if colour else {}
    for extra in (["--dry-run"], []):
        result = invoke([*args, *extra], **env)
        output = result.output
        assert result.exit_code == 0, output
        assert "Traceback" not in output
        for raw, shown in HOSTILE.values():
            assert shown in output, (shown, output)
            if raw != shown:
                assert raw not in output
        if not colour:
            assert "\x1b" not in output
    assert len(list((tmp_path / "runs").glob("sweep-*/heatmap_final_loss.png"))) == 1
    if not colour:  # JSON escapes control characters itself, and holds the text as it was
        printed = invoke([*args, "--json"])
        assert printed.exit_code == 0 and "\x1b" not in printed.output
        assert json.loads(printed.stdout)["name"] == name


def test_a_rerun_of_a_run_in_a_hostile_directory(tmp_path):
    raw = "".join(raw for raw, _ in HOSTILE.values())
    shown = "".join(shown for _, shown in HOSTILE.values())
    root = tmp_path / raw
    check(invoke(["train", *TINY, "--runs-dir", str(root)]), raw, shown)
    (run,) = root.iterdir()
    output = check(invoke(["rerun", str(run), "--runs-dir", str(root)]), raw, shown)
    assert f"original {tmp_path}/{shown}/{run.name}/" in flat(output)


def test_a_title_with_dollars_is_drawn_as_text_not_math():
    """`$x^2$` in a name: the PNG shows the dollars and the caret (as a title drawn with
    math parsing off would), and `$\\frac$`, which is no valid math, does not crash."""
    from weightinit_cli.plots import loss_curves, png_bytes

    figure = loss_curves({}, title="$x^2$")
    expected = loss_curves({})
    expected.suptitle("$x^2$", parse_math=False)
    assert png_bytes(figure) == png_bytes(expected)
    math = loss_curves({})
    math.suptitle("$x^2$")
    assert png_bytes(math) != png_bytes(expected)  # the comparison can tell them apart
    assert png_bytes(loss_curves({}, title="$\\frac$ \udcff")).startswith(b"\x89PNG")


def test_the_terminal_in_a_subprocess(tmp_path):
    """As a user's terminal sees it: colour on, wide; a styled `[bold red]` would come out
    as ESC sequences around the text instead of the text."""
    raw = "o[bold red]x\x1b]0;title\x07[/]"
    out = tmp_path / raw
    env = {**os.environ, "FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    done = subprocess.run(
        [sys.executable, "-m", "weightinit_cli", "stats", *TINY[:4], "--out", str(out)],
        capture_output=True,
        env=env,
        timeout=120,
    )
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "\x1b[" in stdout  # the colour is on
    assert "o[bold red]x\\x1b]0;title\\x07[/]/" in stdout
    assert "\x1b]0;" not in stdout + stderr and "\x07" not in stdout + stderr
    assert out.is_dir()
