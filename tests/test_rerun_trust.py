"""`winit rerun` of a hand-edited or damaged run directory: refused before anything runs.

Real run directories (a `winit train`, a `compare` with parameters, a `stats --out` and a
sweep's trial), made once per module with tiny settings, are copied and damaged one way
per case: meta.json without its keys, with wrong types, nested 10,000 deep or too big;
an unknown method or bad parameters; a corrupt summary.json or metrics.csv; an invalid
config.yaml. Each ends in exit 2 and one `Error:` line naming the file and the field, no
traceback, and not one new file or directory anywhere: no rerun directory, no `failed`
run beside the original. And a valid rerun still runs and goes beside the original (a
trial copied out of its sweep: beside itself), never elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.limits import MAX_CSV_BYTES, MAX_JSON_BYTES

runner = CliRunner()
TINY = ["--depth", "2", "--width", "8", "--steps", "2"]


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "120"})


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One real run directory of each kind rerun repeats."""
    root = tmp_path_factory.mktemp("originals")
    made: dict[str, Path] = {}
    for kind, args in {
        "train": ["train", *TINY],
        "compare": ["compare", *TINY, "--methods", "he", "xavier", "--param", "he.mode=fan_out"],
        "sweep": ["sweep", *TINY, "--grid", "init.method=he", "--jobs", "1"],
    }.items():
        runs = root / kind
        result = invoke(*args, "--runs-dir", str(runs))
        assert result.exit_code == 0, result.output
        (made[kind],) = runs.iterdir()
    made["trial"] = next((made.pop("sweep") / "trials").iterdir())
    result = invoke("stats", "--depth", "2", "--width", "8", "--out", str(root / "stats"))
    assert result.exit_code == 0, result.output
    made["stats"] = root / "stats"
    return made


def listing(root: Path) -> dict[str, int | None]:
    """Every path under root, with its size (None: a directory)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.lstat().st_size
        for p in sorted(root.rglob("*"))
    }


def copied(originals: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    target = tmp_path / "tree" / "here" / "run"
    shutil.copytree(originals[kind], target)
    return target


# --------------------------------------------------------------------------- damage


def edit_meta(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    """Change meta.json's data (`change` edits it in place, or returns what replaces it)."""

    def damage(run: Path) -> None:
        meta = json.loads((run / "meta.json").read_text())
        replaced = change(meta)
        (run / "meta.json").write_text(json.dumps(meta if replaced is None else replaced))

    return damage


def experiment(**changes: Any) -> Callable[[Path], None]:
    """Set (or, with DROP, delete) keys of meta.json's "experiment"."""

    def change(meta: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is DROP:
                del meta["experiment"][key]
            else:
                meta["experiment"][key] = value

    return edit_meta(change)


def method(index: int, **changes: Any) -> Callable[[Path], None]:
    """Set (or, with DROP, delete) keys of experiment.methods[index]."""

    def change(meta: dict[str, Any]) -> None:
        entry = meta["experiment"]["methods"][index]
        for key, value in changes.items():
            if value is DROP:
                del entry[key]
            else:
                entry[key] = value

    return edit_meta(change)


def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    return damage


def sparse(name: str, size: int) -> Callable[[Path], None]:
    """`name` as a file of `size` zero bytes, made in no time (a sparse file)."""

    def damage(run: Path) -> None:
        with open(run / name, "wb") as f:
            f.truncate(size)

    return damage


def replace_text(name: str, old: str, new: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        text = (run / name).read_text()
        assert old in text
        (run / name).write_text(text.replace(old, new, 1))

    return damage


def append(name: str, text: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        with open(run / name, "a") as f:
            f.write(text)

    return damage


def remove(*names: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        for name in names:
            (run / name).unlink()

    return damage


def make_dir(name: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        (run / name).unlink()
        (run / name).mkdir()

    return damage


DROP = object()


def bad(id: str, kind: str, damage: Callable[[Path], None], *expect: str) -> Any:
    return pytest.param(kind, damage, expect, id=id)


CASES = [
    # meta.json: its shape
    bad("meta-top-array", "train", edit_meta(lambda m: []), "meta.json: must be the JSON object"),
    bad(
        "meta-no-experiment",
        "train",
        edit_meta(lambda m: m.pop("experiment") and None),
        "meta.json: experiment: missing",
    ),
    bad(
        "experiment-array",
        "train",
        edit_meta(lambda m: m.update(experiment=["train"])),
        "meta.json: experiment: must be an object; got an array",
    ),
    bad(
        "experiment-null",
        "compare",
        edit_meta(lambda m: m.update(experiment=None)),
        "meta.json: experiment: must be an object; got null",
    ),
    bad("no-command", "train", experiment(command=DROP), "meta.json: experiment.command: missing"),
    bad(
        "command-unknown",
        "train",
        experiment(command="fit"),
        "meta.json: experiment.command: must be train, compare or stats",
        "'fit'",
    ),
    bad("command-number", "stats", experiment(command=3), "meta.json: experiment.command"),
    bad(
        "command-reproduce",
        "stats",
        experiment(command="reproduce", name="lsuv"),
        "meta.json: experiment.command: reproduce",
        "winit reproduce lsuv",
    ),
    bad(
        "command-sweep",
        "train",
        experiment(command="sweep"),
        "meta.json: experiment.command: sweep",
        "winit sweep",
    ),
    bad(
        "unknown-key",
        "train",
        experiment(epochs=3),
        "meta.json: experiment.epochs: not a key of a train run",
    ),
    # meta.json: train's threads and measured_after, a trial's place in its sweep
    bad(
        "threads-string",
        "trial",
        experiment(threads="4"),
        "meta.json: experiment.threads: must be a whole number",
        "got a string '4'",
    ),
    bad("threads-zero", "trial", experiment(threads=0), "meta.json: experiment.threads"),
    bad("threads-huge", "trial", experiment(threads=10**9), "meta.json: experiment.threads"),
    bad("threads-true", "trial", experiment(threads=True), "meta.json: experiment.threads"),
    bad("threads-null", "trial", experiment(threads=None), "experiment.threads", "got null"),
    bad("threads-float", "train", experiment(threads=1.5), "meta.json: experiment.threads"),
    bad(
        "measured-after-string",
        "trial",
        experiment(measured_after="no"),
        "meta.json: experiment.measured_after: must be true or false",
    ),
    bad(
        "sweep-string",
        "trial",
        experiment(sweep="x"),
        "meta.json: experiment.sweep: must be an object",
    ),
    bad(
        "sweep-no-trial",
        "trial",
        edit_meta(lambda m: m["experiment"]["sweep"].pop("trial") and None),
        "meta.json: experiment.sweep.trial: missing",
    ),
    bad(
        "sweep-point-array",
        "trial",
        edit_meta(lambda m: m["experiment"]["sweep"].update(grid_point=[1])),
        "meta.json: experiment.sweep.grid_point: must be an object",
    ),
    # meta.json: spp
    bad("spp-string", "stats", experiment(spp="yes"), "meta.json: experiment.spp: must be true"),
    bad(
        "spp-without-conv",
        "stats",
        experiment(spp=True),
        "meta.json: experiment.spp",
        "conv layers",
    ),
    bad("spp-in-train", "train", experiment(spp=True), "meta.json: experiment.spp: not a key"),
    # meta.json: compare's methods
    bad("methods-missing", "compare", experiment(methods=DROP), "meta.json: experiment.methods"),
    bad(
        "methods-string",
        "compare",
        experiment(methods="he"),
        "meta.json: experiment.methods: must be a non-empty array",
        "got a string",
    ),
    bad("methods-empty", "compare", experiment(methods=[]), "meta.json: experiment.methods"),
    bad(
        "method-entry-string",
        "compare",
        experiment(methods=["he"]),
        "meta.json: experiment.methods.0: must be an object",
    ),
    bad(
        "method-no-params",
        "compare",
        method(1, params=DROP),
        "meta.json: experiment.methods.1.params: missing",
    ),
    bad(
        "method-unknown",
        "compare",
        method(1, method="no_such_init"),
        "meta.json: experiment.methods.1.method",
        "no_such_init",
    ),
    bad(
        "method-number",
        "compare",
        method(0, method=7),
        "meta.json: experiment.methods.0.method: must be a method's name",
    ),
    bad(
        "method-params-array",
        "compare",
        method(0, params=[]),
        "meta.json: experiment.methods.0.params: must be an object",
    ),
    bad(
        "method-param-bad-mode",
        "compare",
        method(0, params={"mode": "sideways"}),
        "meta.json: experiment.methods.0.params",
        "sideways",
    ),
    bad(
        "method-param-unknown",
        "compare",
        method(1, params={"colour": 3}),
        "meta.json: experiment.methods.1.params",
        "colour",
    ),
    bad(
        "method-param-gain-text",
        "compare",
        method(0, params={"gain": "big"}),
        "meta.json: experiment.methods.0.params",
    ),
    bad(
        "method-twice",
        "compare",
        method(1, method="he_normal", params={}),
        "meta.json: experiment.methods.1.method: he_normal is compared twice",
    ),
    bad(
        "method-cannot-make-a-layer",
        "compare",
        method(0, method="identity", params={}),
        "meta.json: experiment.methods.0.method",
        "identity",
    ),
    bad(
        "method-extra-key",
        "compare",
        method(0, seed=3),
        "meta.json: experiment.methods.0.seed: not a key",
    ),
    # meta.json: not JSON winit wrote
    bad(
        "meta-nested-10000",
        "train",
        write("meta.json", "[" * 10_000 + "]" * 10_000),
        "meta.json: nested deeper than",
    ),
    bad(
        "meta-nested-in-experiment",
        "train",
        experiment(sweep=json.loads("[" * 40 + "]" * 40)),
        "meta.json: nested deeper than",
    ),
    bad("meta-huge", "train", sparse("meta.json", MAX_JSON_BYTES + 1), "meta.json: larger than"),
    bad("meta-not-utf8", "compare", write("meta.json", b"\xff\xfe{}"), "meta.json: not UTF-8"),
    bad(
        "meta-not-json", "stats", write("meta.json", '{"experiment": '), "meta.json: not valid JSON"
    ),
    # the result files the rerun is compared with
    bad("summary-not-json", "train", write("summary.json", "{"), "summary.json: not valid JSON"),
    bad(
        "summary-array",
        "compare",
        write("summary.json", "[1, 2]"),
        "summary.json: must be the JSON object",
    ),
    bad(
        "summary-binary",
        "stats",
        write("summary.json", bytes(range(256))),
        "summary.json: not UTF-8",
    ),
    bad(
        "summary-huge",
        "stats",
        sparse("summary.json", MAX_JSON_BYTES + 1),
        "summary.json: larger than",
    ),
    bad(
        "metrics-ragged",
        "train",
        append("metrics.csv", "4,0.5\n"),
        "metrics.csv: line 4: 2 cells, and the header has",
    ),
    bad(
        "metrics-binary",
        "train",
        write("metrics.csv", bytes(range(256)) * 4),
        "metrics.csv: not UTF-8",
    ),
    bad("metrics-empty", "compare", write("metrics.csv", ""), "metrics.csv: empty"),
    bad(
        "metrics-huge",
        "train",
        sparse("metrics.csv", MAX_CSV_BYTES + 1),
        "metrics.csv: larger than 256 MiB",
    ),
    bad("metrics-a-directory", "train", make_dir("metrics.csv"), "metrics.csv: not a regular file"),
    bad(
        "layers-control-header",
        "stats",
        write("layers.csv", "\x00\x01\x02\n1\n"),
        "layers.csv: line 1: not a header row",
    ),
    bad(
        "layers-giant-cell",
        "compare",
        append("layers.csv", "x" * 200_000 + "\n"),
        "layers.csv: not a CSV file winit wrote",
    ),
    bad(
        "no-results",
        "train",
        remove("metrics.csv", "layers.csv", "summary.json"),
        "has none of metrics.csv, layers.csv, summary.json",
    ),
    # config.yaml edited by hand
    bad(
        "config-invalid",
        "train",
        replace_text("config.yaml", "depth: 2", "depth: -1"),
        "config.yaml",
        "model.depth",
    ),
    bad("config-not-yaml", "compare", write("config.yaml", "model: [\n"), "config.yaml"),
    bad(
        "config-unknown-method",
        "train",
        replace_text("config.yaml", "method: he_normal", "method: nope"),
        "config.yaml",
        "init.method",
    ),
    bad("config-a-list", "stats", write("config.yaml", "- 1\n"), "config.yaml"),
]


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's tree: the working directory and the parent of $WINIT_RUNS_DIR too, so
    that a run written anywhere but an explicit path would show up in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WINIT_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


@pytest.mark.parametrize(("kind", "damage", "expect"), CASES)
def test_a_damaged_run_directory_is_refused_before_anything_runs(
    originals: dict[str, Path], place: Path, kind: str, damage: Callable, expect: tuple[str, ...]
) -> None:
    run = copied(originals, kind, place)
    damage(run)
    before = listing(place)
    result = invoke("rerun", str(run))
    output = result.output
    assert "Traceback" not in output, output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    assert result.exit_code == 2, output
    lines = output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    for expected in expect:
        assert expected in lines[0], output
    assert listing(place) == before, "the refused rerun wrote something"


def test_a_sweep_directory_is_not_rerun(originals: dict[str, Path], place: Path) -> None:
    sweep = place / "tree" / "sweep"
    shutil.copytree(originals["trial"].parent.parent, sweep)
    before = listing(place)
    result = invoke("rerun", str(sweep))
    assert result.exit_code == 2 and result.output.startswith("Error: "), result.output
    assert "is a sweep" in result.output and listing(place) == before


# --------------------------------------------------------------------------- valid reruns


@pytest.mark.parametrize("kind", ["train", "compare", "stats"])
def test_a_valid_rerun_goes_beside_the_original_and_is_identical(
    originals: dict[str, Path], place: Path, kind: str
) -> None:
    run = copied(originals, kind, place)
    result = invoke("rerun", str(run), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["identical"], report
    new = Path(report["rerun"])
    assert new.parent == run.parent and new != run
    assert sorted(p.name for p in run.parent.iterdir()) == sorted([run.name, new.name])
    assert not (place / "runs").exists()


@pytest.mark.parametrize(
    "where",
    ["elsewhere/a/b/trial", "elsewhere/trials/trial", "elsewhere/copy/trials/0_method=he"],
    ids=["deep", "in-a-trials-dir", "in-a-trials-dir-without-sweep-yaml"],
)
def test_a_trial_copied_out_of_its_sweep_is_rerun_beside_itself(
    originals: dict[str, Path], place: Path, where: str
) -> None:
    trial = place / where
    shutil.copytree(originals["trial"], trial)
    if where.startswith("elsewhere/copy"):  # the sweep's other files, but not sweep.yaml
        (trial.parent.parent / "meta.json").write_text('{"experiment": {"command": "sweep"}}')
    result = invoke("rerun", str(trial), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["identical"], report
    assert Path(report["rerun"]).parent == trial.parent
    assert [p.name for p in (place / "elsewhere").iterdir()] == [where.split("/")[1]]


def test_rerun_of_the_current_directory_goes_beside_it_not_inside(
    originals: dict[str, Path], place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copied(originals, "stats", place)
    inside = sorted(os.listdir(run))
    monkeypatch.chdir(run)
    result = invoke("rerun", ".", "--json")
    assert result.exit_code == 0, result.output
    rerun_dir = Path(json.loads(result.stdout)["rerun"])
    assert not rerun_dir.is_absolute()  # shown as the original was given: relative
    assert rerun_dir.resolve().parent == run.parent.resolve()
    assert sorted(os.listdir(run)) == inside


# --------------------------------------------------------------------------- the comparison


@pytest.mark.parametrize(
    ("name", "old", "new", "verdict"),
    [
        ("metrics.csv", "a,b\n1,2\n", "a,b\n1,2\n", "identical"),
        ("metrics.csv", "a,b\n1,2\n\n", "a,b\n1,2\n", "identical"),  # a blank line is no row
        ("metrics.csv", "a,b\n1\n", "a,b\n1,2\n", "row 1 differs first in b: - before, 2 now"),
        ("metrics.csv", "a\n1,2,3\n", "a\n1\n", "row 1 differs first in column 2: 2 before, - now"),
        ("metrics.csv", "a,b\n1,2\n", "a,b\n1,2\n3,4\n", "1 rows before, 2 now"),
        ("metrics.csv", "a,b\n", "", "empty now"),
        ("metrics.csv", "a,b\n", "a,b\n1,2\n", "0 rows before, 1 now"),
        ("metrics.csv", "a,b\n1,\x1b[31m\n", "a,b\n1,2\n", "row 1 differs first in b: \\x1b[31m"),
        ("summary.json", "[1, 2]", '{"a": 1}', "differs"),
        ("summary.json", '{"a": 1}', "[1, 2]", "differs"),
        ("summary.json", "3", "3", "identical"),
        ("summary.json", '{"a": NaN, "run_dir": "x"}', '{"a": NaN, "run_dir": "y"}', "identical"),
        ("summary.json", '{"a": 1}', '{"a": 1, "b": 2}', "identical"),  # b: added
        ("summary.json", '{"a": 1, "b": 2}', '{"a": 1}', "differs in b"),
        ("summary.json", '{"h": [{"a": 1}]}', '{"h": [{"a": 2, "w": 3}]}', "differs in h"),
        ("metrics.csv", "a,b\n1,2\n", "a,c,b\n1,9,2\n", "identical"),  # c: added
        ("metrics.csv", "a,b\n1,2\n", "a,c,b\n1,9,3\n", "row 1 differs first in b: 2 before"),
        ("metrics.csv", "a,b\n1,2\n", "a,c\n1,2\n", "row 0 differs first in b: b before, c"),
        ("summary.json", '{"a": 1, "b": [1]}', '{"b": [2]}', "differs in a, b"),
        ("summary.json", '{"a": 1}', "{", "unreadable now"),
        ("layers.csv", "a\n1\n", b"\xff\xfe", "unreadable now"),
    ],
)
def test_the_comparison_takes_any_content(
    tmp_path: Path, name: str, old: str, new: str | bytes, verdict: str
) -> None:
    """What changed after the checks (or what they let through) is a difference, never a
    crash: rows of any width, JSON of any type, a file that is no longer readable."""
    from weightinit_cli.rerun import match_runs

    for side, content in (("old", old), ("new", new)):
        (tmp_path / side).mkdir()
        target = tmp_path / side / name
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    match = match_runs(tmp_path / "old", tmp_path / "new")
    assert match.files[name].startswith(verdict), match.files
    assert match.identical is (verdict == "identical")


def test_what_only_the_rerun_has_is_listed_not_compared(tmp_path: Path) -> None:
    """A later winit logs more (columns, keys): the original's numbers are still compared,
    and what was added is named."""
    from weightinit_cli.rerun import match_runs

    files = {
        "metrics.csv": ("step,loss\n0,1.5\n", "step,loss,alpha_head\n0,1.5,3.2\n"),
        "summary.json": ('{"history": [{"loss": 1.5}]}', '{"history": [{"loss": 1.5, "w": 1}]}'),
    }
    for side in (0, 1):
        (tmp_path / str(side)).mkdir()
        for name, contents in files.items():
            (tmp_path / str(side) / name).write_text(contents[side])
    match = match_runs(tmp_path / "0", tmp_path / "1")
    assert match.identical and set(match.files.values()) == {"identical"}
    assert match.added == {"metrics.csv": ["alpha_head"], "summary.json": ["history.w"]}
    assert match.to_dict()["added"] == match.added


def test_rerun_notes_the_versions_that_differ(originals: dict[str, Path], tmp_path: Path) -> None:
    """A run made by another winit (whose theory may differ) reruns with that said."""
    from weightinit_cli import __version__

    run = tmp_path / "older"
    shutil.copytree(originals["train"], run)
    meta = json.loads((run / "meta.json").read_text())
    meta["versions"]["winit"] = "0.1.0"
    (run / "meta.json").write_text(json.dumps(meta))
    result = invoke("rerun", str(run), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["identical"] and data["notes"] == [f"winit 0.1.0 then, {__version__} now"]
    shown = invoke("rerun", str(run))
    assert f"versions differ: winit 0.1.0 then, {__version__} now" in shown.output
