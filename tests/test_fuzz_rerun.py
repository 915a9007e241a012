"""Property test of `winit rerun`: whatever a hand edit or a broken disk did to a real run
directory's meta.json, summary.json, config.yaml, metrics.csv or layers.csv, the rerun
either runs and reports (exit 0 identical, exit 1 with the files that differ) or refuses
with one `Error:` line, and then has written nothing anywhere. Never a traceback."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from weightinit_cli.cli import app

runner = CliRunner()
TINY = ["--depth", "2", "--width", "8", "--steps", "2"]
# Each example that passes the checks runs a tiny experiment (~0.2 s): a modest number.
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("originals")
    made: dict[str, Path] = {}
    for kind, args in {
        "train": ["train", *TINY],
        "compare": ["compare", *TINY, "--methods", "he", "orthogonal", "--param", "he.gain=2"],
        "sweep": ["sweep", *TINY, "--grid", "init.method=he", "--jobs", "1"],
    }.items():
        result = runner.invoke(app, [*args, "--runs-dir", str(root / kind)])
        assert result.exit_code == 0, result.output
        (made[kind],) = (root / kind).iterdir()
    made["trial"] = next((made.pop("sweep") / "trials").iterdir())
    result = runner.invoke(app, ["stats", "--depth", "2", "--width", "8", "--out", str(root / "s")])
    assert result.exit_code == 0, result.output
    made["stats"] = root / "s"
    return made


# Values a hand edit puts in place of another: every JSON type, none big enough to make a
# run that passes the checks slow (a depth of 3 is fine, a depth of 10^6 is refused anyway).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 1e300, float("nan"), float("inf")]),
    st.text(alphabet="abcxyz_-. \n\t\x00\x1b[]é", max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
GARBAGE = [b"\x00", b"\xff\xfe", b"{[", b"\n\t: -", b"&a *a", b"\x1b[31m", "é".encode(), b"]]]"]


def _nodes(data: Any, path: tuple = ()) -> list[tuple]:
    """The path of every value inside `data` (keys of mappings, indices of lists)."""
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _nodes(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _nodes(value, (*path, i))
    return found


NEST = "NESTED-HERE"  # where _edited puts a deeply nested value, as text


def _edited(data: Any, draw: Any, dump: Any) -> str:
    """`data` as `dump` writes it, with one value deleted, swapped for another, or buried
    in up to 10,000 brackets (written as text: the writers would recurse that deep)."""
    path = draw(st.sampled_from(_nodes(data)))
    how = draw(st.sampled_from(["delete", "swap", "nest"]))
    depth = draw(st.sampled_from([5, 40, 10_000]))
    buried = data
    if not path:  # the whole file's data
        data = NEST if how == "nest" else None if how == "delete" else draw(values)
    else:
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        buried = parent[path[-1]]
        if how == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = NEST if how == "nest" else draw(values)
    text = dump(data)
    nested = "[" * depth + json.dumps(buried) + "]" * depth  # JSON, and YAML's flow style
    return text.replace(json.dumps(NEST), nested).replace(NEST, nested)


def _edit_csv(text: str, draw: Any) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    i = draw(st.integers(0, len(rows) - 1))
    how = draw(st.sampled_from(["drop-cell", "set-cell", "drop-row", "add-row"]))
    if how == "drop-row":
        del rows[i]
    elif how == "add-row":
        rows.insert(i, draw(st.lists(st.text(max_size=4), max_size=4)))
    elif rows[i]:
        j = draw(st.integers(0, len(rows[i]) - 1))
        if how == "drop-cell":
            del rows[i][j]
        else:
            rows[i][j] = draw(st.text(max_size=6))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def damage(draw: Any) -> tuple[str, str, Any]:
    """(kind of run, file, how it changes: a function of the file's bytes), drawn with
    `draw` (hypothesis's data.draw, which the change draws with too)."""
    kind = draw(st.sampled_from(["train", "compare", "stats", "trial"]))
    name = draw(
        st.sampled_from(
            ["meta.json", "summary.json", "config.yaml", "layers.csv"]
            + ([] if kind == "stats" else ["metrics.csv"])
        )
    )
    level = draw(st.sampled_from(["structure", "bytes"]))
    fraction = draw(st.floats(0, 1))
    garbage = draw(st.lists(st.sampled_from(GARBAGE), min_size=1, max_size=3))

    def change(raw: bytes) -> bytes:
        if level == "bytes" and name != "config.yaml":  # a cut config is a smaller experiment
            cut = int(len(raw) * fraction)
            return raw[:cut] if draw(st.booleans()) else raw[:cut] + b"".join(garbage) + raw[cut:]
        text = raw.decode()
        if name.endswith(".json"):
            return _edited(json.loads(text), draw, json.dumps).encode()
        if name.endswith(".yaml"):
            if level == "bytes":
                cut = int(len(raw) * fraction)
                return raw[:cut] + b"".join(garbage) + raw[cut:]
            return _edited(yaml.safe_load(text), draw, yaml.safe_dump).encode()
        return _edit_csv(text, draw).encode()

    return kind, name, change


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@FUZZ
@given(data=st.data())
def test_a_damaged_run_directory_is_rerun_and_compared_or_refused_in_one_line(
    originals: dict[str, Path], data: Any
) -> None:
    kind, name, change = damage(data.draw)
    place = Path(tempfile.mkdtemp(prefix="winit-fuzz-rerun-"))
    try:
        run = place / "here" / "run"
        shutil.copytree(originals[kind], run)
        (run / name).write_bytes(change((run / name).read_bytes()))
        before = listing(place)
        result = runner.invoke(
            app, ["rerun", str(run), "--json"], env={"WINIT_RUNS_DIR": str(place / "runs")}
        )
        output = result.output
        assert "Traceback" not in output, output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(
            result.exception
        )
        if output.startswith("Error: "):  # refused: one line (a config's problems indented)
            assert result.exit_code == 2, output
            assert all(line.startswith("       ") for line in output.splitlines()[1:]), output
            assert listing(place) == before, "a refused rerun wrote something"
            event("refused")
            return
        assert result.exit_code in (0, 1), output
        report = json.loads(result.stdout[result.stdout.index("{") :])
        assert report["identical"] is (result.exit_code == 0), report
        event("identical" if report["identical"] else "differs")
        assert all(isinstance(v, str) and "\n" not in v for v in report["files"].values())
        new = Path(report["rerun"])
        assert new.parent == run.parent
        assert sorted(p.name for p in run.parent.iterdir()) == sorted([run.name, new.name])
    finally:
        shutil.rmtree(place, ignore_errors=True)
