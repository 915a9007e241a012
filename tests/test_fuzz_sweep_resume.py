"""Property tests of a sweep's resume: whatever was done by hand to its JSON files (the
sweep's meta.json, a trial's meta.json or summary.json: keys deleted, types changed, cut
short, nested 10,000 deep, garbage bytes, a file beyond the size limit), running the
sweep again either resumes it cleanly (each trial once, all finished) or stops with exit
1 or 2 and one `Error:` line. Never a traceback."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.sweep.trial import FINISHED

runner = CliRunner()
ARGS = ["sweep", "--grid", "model.depth=2,3", "--steps", "5", "--set", "model.width=8"]
ARGS += ["--set", "data.samples=64", "--jobs", "1", "--json"]
TRIALS = ["0_depth=2", "1_depth=3"]
FILES = [
    "meta.json",
    *(f"trials/{t}/{name}" for t in TRIALS for name in ("meta.json", "summary.json")),
]
FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is a real one
    suppress_health_check=[HealthCheck.too_slow],
)
PLACEHOLDER = "__fuzz_value__"
ERROR, STARTED_OVER = "one Error line", "a new sweep directory beside it"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The runs root of a finished two-trial sweep, made once for the module."""
    root = tmp_path_factory.mktemp("finished") / "runs"
    result = runner.invoke(app, [*ARGS, "--runs-dir", str(root)])
    assert result.exit_code == 0, result.output
    return root


def paths(value: Any, prefix: tuple = (), depth: int = 3) -> list[tuple]:
    """Where values are in a JSON document (keys and indices), down to `depth`."""
    found = []
    if depth and isinstance(value, (dict, list)):
        items = value.items() if isinstance(value, dict) else enumerate(value[:3])
        for key, child in items:
            found.append((*prefix, key))
            found += paths(child, (*prefix, key), depth - 1)
    return found


def replaced(document: Any, where: tuple, value: Any, delete: bool = False) -> Any:
    parent = document
    for key in where[:-1]:
        parent = parent[key]
    if delete:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    return document


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
        st.sampled_from(["completed", "failed", "running", "stuck", 0, -1, 2**63]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
# JSON text no json.dumps makes: nesting 10,000 deep, an int of 5,000 digits, NaN
RAW = ["[" * 10_000 + "]" * 10_000, "9" * 5_000, "NaN", "-Infinity", '"\\ud800"', "1e999"]


def damaged(data: st.DataObject, original: bytes) -> bytes | None:
    """The file's new bytes (None: delete it), drawn from the kinds of damage a hand can do."""
    kind = data.draw(st.sampled_from(["delete", "retype", "raw", "cut", "garbage", "gone"]))
    if kind == "cut":
        return original[: data.draw(st.integers(0, len(original) - 1))]
    if kind == "garbage":
        return data.draw(st.binary(max_size=64))
    if kind == "gone":
        return None
    document = json.loads(original)
    where = data.draw(st.sampled_from(paths(document)))
    if kind == "delete":
        return json.dumps(replaced(document, where, None, delete=True)).encode()
    if kind == "retype":
        return json.dumps(replaced(document, where, data.draw(json_values))).encode()
    text = json.dumps(replaced(document, where, PLACEHOLDER))
    return text.replace(json.dumps(PLACEHOLDER), data.draw(st.sampled_from(RAW))).encode()


def resumes_or_says_why(root: Path, original: Path) -> int | str:
    """Run the sweep under `root` again: a clean resume, or one `Error:` line. What it did:
    ERROR, STARTED_OVER (in a new directory), or how many trials it ran again in `original`."""
    result = runner.invoke(app, [*ARGS, "--runs-dir", str(root)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        lines = result.output.strip().splitlines()
        assert result.exit_code in (1, 2) and len(lines) == 1, result.output
        assert lines[0].startswith("Error: "), lines
        return ERROR
    summary = json.loads(result.stdout)
    counts = summary["counts"]
    assert counts["pending"] == counts["failed"] == 0 and summary["status"] == "completed"
    assert summary["ran"] + summary["resumed"] == len(TRIALS)
    trials = Path(summary["run_dir"]) / "trials"
    assert sorted(p.name for p in trials.iterdir()) == TRIALS  # each once, nothing left over
    for name in TRIALS:
        meta = json.loads((trials / name / "meta.json").read_text())
        assert meta["status"] in FINISHED and (trials / name / "summary.json").is_file()
    if summary["run_dir"] != str(original):
        return STARTED_OVER
    assert json.loads((original / "meta.json").read_text())["status"] == "completed"
    return summary["ran"]


@FUZZ
@given(st.data())
def test_any_damage_to_the_json_files_resumes_or_fails_in_one_line(finished, data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        shutil.copytree(finished, root)
        (path,) = root.glob("sweep-*")
        for name in data.draw(
            st.lists(st.sampled_from(FILES), min_size=1, max_size=2, unique=True)
        ):
            new = damaged(data, (path / name).read_bytes())
            if new is None:
                (path / name).unlink()
            else:
                (path / name).write_bytes(new)
        resumes_or_says_why(root, path)


def _sparse(size: int):
    def write(file: Path) -> None:
        with open(file, "wb") as f:
            f.truncate(size)  # a hole: instant, and takes no disk

    return write


def _text(text: str):
    return lambda file: file.write_text(text)


def _edit(**changes: Any):
    def write(file: Path) -> None:
        document = json.loads(file.read_text())
        document.update(changes)
        file.write_text(json.dumps(document))

    return write


SWEEP_META, TRIAL_META = "meta.json", "trials/0_depth=2/meta.json"
SUMMARY = "trials/0_depth=2/summary.json"
DEEP = "[" * 10_000 + "]" * 10_000
HUGE = (64 << 20) + 1  # one byte past read_json's limit


# Each with what must happen: an error (what cannot be trusted is not guessed at), or a
# resume in place that runs this many trials again (a result that is no result).
@pytest.mark.parametrize(
    "name, write, expect",
    [
        pytest.param(SWEEP_META, _text(DEEP), ERROR, id="sweep-meta-deep"),
        pytest.param(SWEEP_META, _sparse(HUGE), ERROR, id="sweep-meta-huge"),
        pytest.param(SWEEP_META, _text('{"spec_hash": '), ERROR, id="sweep-meta-cut"),
        pytest.param(SWEEP_META, _edit(runs="3"), ERROR, id="sweep-runs-text"),
        pytest.param(SWEEP_META, _edit(runs=[1]), ERROR, id="sweep-runs-list"),
        pytest.param(SWEEP_META, _edit(started_at=5), ERROR, id="sweep-started-number"),
        pytest.param(SWEEP_META, _edit(full_trials="no"), ERROR, id="sweep-full-trials-text"),
        pytest.param(SWEEP_META, _edit(experiment=["sweep"]), ERROR, id="sweep-experiment-list"),
        pytest.param(TRIAL_META, _edit(timing=5), 0, id="trial-timing-number"),
        pytest.param(TRIAL_META, _edit(timing={"run_seconds": "1s"}), 0, id="trial-seconds-text"),
        pytest.param(TRIAL_META, _edit(experiment="train"), ERROR, id="trial-experiment-text"),
        pytest.param(TRIAL_META, _edit(status=["completed"]), 1, id="trial-status-list"),
        pytest.param(
            TRIAL_META,
            _text('{"status": "completed", "experiment": {"sweep": 1}}'),
            ERROR,
            id="trial-sweep-number",
        ),
        pytest.param(TRIAL_META, _sparse(HUGE), ERROR, id="trial-meta-huge"),
        pytest.param(SUMMARY, _edit(final_loss=math.inf), 1, id="summary-infinite-loss"),
        pytest.param(SUMMARY, _edit(final_loss="0.1", steps=5.5), 1, id="summary-wrong-types"),
        pytest.param(SUMMARY, _text('{"final_loss": ' + "9" * 400 + "}"), 1, id="summary-big-int"),
        pytest.param(SUMMARY, _text("[" * 10_000), 1, id="summary-deep"),
        pytest.param(
            SUMMARY, lambda file: file.write_bytes(b"\xff\xfe\x00{"), 1, id="summary-bytes"
        ),
    ],
)
def test_known_damage_resumes_or_fails_in_one_line(finished, tmp_path, name, write, expect):
    root = tmp_path / "runs"
    shutil.copytree(finished, root)
    (path,) = root.glob("sweep-*")
    write(path / name)
    assert resumes_or_says_why(root, path) == expect
