"""Hostile input, end to end: tiny inputs that would expand to gigabytes, numbers past
float32, refusals that could come late, and grid values that names could confuse.

Every input is bounded before it is expanded (weightinit_cli/limits.py): a config file's
bytes, YAML nesting and values after aliases, a --set or --grid value, a grid axis's
length, an .npz array's size from its header. Each refusal is one `Error:` line with at
most an excerpt of the value, exit code 2, fast, and nothing written. The cases that
would eat memory without their bound run in a subprocess with a memory and time limit,
so that a regression fails here instead of taking the machine down.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_bad_input import SMALL, Case, _fill, _tree, _write, case, yaml_case
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.limits import MAX_ARRAY_VALUES, MAX_CONFIG_BYTES, MAX_NESTING, MAX_VALUES

runner = CliRunner()


def alias_bomb(levels: int = 9, fan: int = 9, flow: bool = False) -> str:
    """`levels` anchors, each a list of `fan` aliases of the one before: fan**levels
    values in a few hundred bytes."""
    parts = ["&a0 [" + ", ".join(["x"] * fan) + "]"]
    for level in range(1, levels):
        parts.append(f"&a{level} [" + ", ".join([f"*a{level - 1}"] * fan) + "]")
    if flow:
        return "[" + ", ".join(parts) + "]"
    return "".join(f"k{i}: {part}\n" for i, part in enumerate(parts))


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def _npz(members: dict[str, bytes], compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


LABELS = _npy(np.zeros(40, dtype=np.int64))
# a 600-byte archive whose header claims 2*10^12 float32 values
CLAIMS_TERABYTES = _npz(
    {"x.npy": _npy_header((2_000_000, 1_000_000)) + b"\0" * 64, "y.npy": LABELS}
)
# a header that claims a little more than the limit, with that many zero bytes compressed
# to a few hundred KiB: it would unpack to over half a GiB
ZIP_BOMB = _npz(
    {
        "x.npy": _npy_header((MAX_ARRAY_VALUES + 1,), "|u1") + bytes(MAX_ARRAY_VALUES + 1),
        "y.npy": LABELS,
    },
    compress=True,
)
# a member whose unpacked size is far beyond what its header says it holds
PADDED = _npz({"x.npy": _npy(np.zeros((40, 2), np.float32)) + bytes(1 << 20), "y.npy": LABELS})


def npz(id: str, content: bytes, *expect: str) -> object:
    args = ["stats", "--set", "data.name=npz", "--set", "data.path={tmp}/data.npz"]
    return case(id, args, "data.path", *expect, files={"data.npz": content}, max_seconds=10)


def chained_nesting(anchors: int = 40, levels: int = 30) -> str:
    """Anchors each `levels` deep and holding the one before: shallow in the text, 1,200
    levels once the aliases are followed, and only a few thousand values."""
    parts = ["&a0 " + "[" * levels + "1" + "]" * levels]
    for i in range(1, anchors):
        parts.append(f"&a{i} " + "[" * levels + f"*a{i - 1}" + "]" * levels)
    return "[" + ", ".join(parts) + "]"


CHAINED_NESTING = chained_nesting()
# a 128-byte .npy whose header claims 10^12 float64 values (np.load would allocate them)
HUGE_NPY = _npy_header((10**6, 10**6), "<f8")
BOMB = alias_bomb()
FLOW_BOMB = alias_bomb(flow=True)
VALUES = f"{MAX_VALUES:,} values"
NESTING = f"nested deeper than {MAX_NESTING}"
FLOAT32 = "the range of float32"

CASES = [
    # ------------------------------------------------------------------ YAML expansion
    yaml_case("alias-bomb-file", BOMB, VALUES, command="stats", max_seconds=5),
    yaml_case("alias-bomb-in-field", f"model:\n  depth: {FLOW_BOMB}\n", VALUES, command="stats"),
    yaml_case(
        "alias-bomb-sweep-grid", f"grid:\n  model.depth: {FLOW_BOMB}\n", VALUES, command="sweep"
    ),
    yaml_case(
        "alias-bomb-merge-keys",
        "a: &a {k0: 1, k1: 1, k2: 1, k3: 1}\n"
        + "".join(
            f"b{i}: &b{i} [" + ", ".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * 12) + "]\n"
            for i in range(6)
        ),
        VALUES,
        command="stats",
    ),
    case(
        "alias-bomb-set",
        ["stats", "--set", f"model.depth={FLOW_BOMB}"],
        "--set model.depth=",
        VALUES,
        max_seconds=5,
    ),
    case(
        "alias-bomb-grid-option",
        ["sweep", "--grid", f"model.depth={FLOW_BOMB}", "--dry-run"],
        "--grid model.depth=",
        VALUES,
        max_seconds=5,
    ),
    yaml_case(
        "recursive-alias",
        "model: &m {depth: 3, again: *m}\n",
        "refers to",
        "it is in",
        command="stats",
    ),
    yaml_case("recursive-alias-list", "seed: &s [1, *s]\n", "refers to", command="stats"),
    # ------------------------------------------------------------------ nesting
    yaml_case("nested-500-brackets", f"model:\n  depth: {nested(500)}\n", NESTING, command="stats"),
    yaml_case("nested-100000-brackets", nested(100_000), NESTING, command="stats", max_seconds=5),
    yaml_case(
        "nested-block-mappings",
        "".join(f"{'  ' * i}k{i}:\n" for i in range(MAX_NESTING + 2)) + "  " * 40 + "1\n",
        NESTING,
        command="stats",
    ),
    case("nested-set", ["stats", "--set", f"model.depth={nested(500)}"], NESTING),
    case(
        "nested-grid-option",
        ["sweep", "--grid", f"model.depth=[{nested(500)}]", "--dry-run"],
        NESTING,
    ),
    # ------------------------------------------------------------------ sizes
    case(
        "config-dev-zero",
        ["stats", "--config", "/dev/zero"],
        "/dev/zero",
        "larger than 1 MiB",
        max_seconds=5,
    ),
    case("config-dev-urandom", ["train", "/dev/urandom"], "larger than 1 MiB", max_seconds=5),
    yaml_case(
        "config-over-1-mib",
        "# padding\n" * (MAX_CONFIG_BYTES // 10 + 1),
        "larger than",
        command="stats",
    ),
    yaml_case(
        "number-of-5000-digits", "seed: " + "9" * 5000 + "\n", "400 characters", command="stats"
    ),
    case("set-number-of-5000-digits", ["stats", "--set", "seed=" + "9" * 5000], "400 characters"),
    case("set-hex-number", ["stats", "--set", "name=0x" + "f" * 6000], "400 characters"),
    case("set-binary-number", ["stats", "--set", "seed=0b" + "1" * 6000], "400 characters"),
    case("gain-past-float", ["stats", "--set", "init.gain=" + "9" * 400], "init.gain", FLOAT32),
    case(
        "param-past-float",
        ["stats", "--method", "normal", "--set", "init.params.std=" + "9" * 400],
        "init.params",
        "float32",
    ),
    case(
        "base-60-float-past-float",
        ["train", "--set", "train.lr=1" + ":0" * 175 + ".0"],
        "too large for a float",
    ),
    yaml_case(
        "tagged-int-of-1000-parts",
        'seed: !!int "' + ":".join(["59"] * 1000) + '"\n',
        "400 characters",
        command="stats",
        max_seconds=5,
    ),
    npz("npy-claiming-7-tib", HUGE_NPY, "single .npy"),
    *(
        case(
            f"set-index-{name}",
            ["stats", "{tmp}/lay.yaml", "--set", f"model.layers.{index}=1"],
            "model.layers is a list of 1",
            files={"lay.yaml": "model:\n  input_shape: [2]\n  layers:\n    - {type: dense}\n"},
        )
        for name, index in [("superscript-two", "²"), ("of-5000-digits", "9" * 5000)]
    ),
    case("long-param", ["compare", "--methods", "he", "--param", "x" * 100_000], "--param"),
    case("long-method", ["compare", "--methods", "x" * 100_000], "--methods", "unknown"),
    case(
        "long-grid-key-in-a-point",
        ["sweep", "-g", "model." + "x" * 100_000 + "=1,2", "--dry-run"],
        "unknown field",
    ),
    case("path-too-long", ["train", "/tmp/" + "x" * 300 + "/c.yaml"], "File name too long"),
    case("runs-dir-too-long", ["stats", "--out", "/tmp/" + "x" * 300], "File name too long"),
    case(
        "aliases-nest-past-the-limit",
        ["sweep", "--dry-run", "--grid", "model.input_shape=" + CHAINED_NESTING],
        NESTING,
    ),
    yaml_case(
        "grid-axis-100001-values",
        "grid:\n  seed: [" + ", ".join(map(str, range(100_001))) + "]\n",
        VALUES,
        command="sweep",
        max_seconds=10,
    ),
    case(
        "grid-option-100001-values",
        ["sweep", "--grid", "seed=" + ",".join(map(str, range(100_001))), "--dry-run"],
        "100,001 values",
        "limit is 100,000",
        max_seconds=10,
    ),
    yaml_case(
        "grid-over-trial-limit",
        "grid:\n  seed: ["
        + ", ".join(map(str, range(400)))
        + "]\n  train.lr: ["
        + ", ".join(str((i + 1) / 1000) for i in range(300))
        + "]\n",
        "120,000 trials",
        "the limit is 100,000",
        command="sweep",
        max_seconds=5,
    ),
    npz("npz-header-claims-terabytes", CLAIMS_TERABYTES, "2,000,000,000,000 values", "limit"),
    npz("npz-compressed-bomb", ZIP_BOMB, f"{MAX_ARRAY_VALUES + 1:,} values", "limit"),
    npz("npz-unpacks-past-its-header", PADDED, "more bytes than its header"),
    npz(
        "npz-member-without-header",
        _npz({"x.npy": b"not npy", "y.npy": LABELS}),
        "no readable .npy header",
    ),
    # ------------------------------------------------------------------ excerpts
    yaml_case(
        "long-string-in-number-field",
        f"model:\n  depth: {'x' * 200_000}\n",
        "model.depth",
        command="stats",
    ),
    yaml_case(
        "long-list-in-string-field",
        f"name: [{', '.join(['1'] * 50_000)}]\n",
        "name",
        command="stats",
    ),
    yaml_case(
        "long-key", f"model:\n  ? {'k' * 100_000}\n  : 1\n", "unknown field", command="stats"
    ),
    case("long-set-key", ["stats", "--set", "model." + "k" * 100_000 + "=1"], "unknown field"),
    case(
        "long-grid-key", ["sweep", "--grid", "k" * 100_000 + "=1,2", "--dry-run"], "unknown field"
    ),
    # ------------------------------------------------------------------ past float32
    *(
        case(f"float32-{field}", ["train", *SMALL, "--set", f"{field}={value}"], field, FLOAT32)
        for field, value in [
            ("train.lr", "1e308"),
            ("train.weight_decay", "1e308"),
            ("train.target_loss", "1e39"),
            ("model.negative_slope", "1e308"),
            ("model.negative_slope", "-1e39"),
            ("data.noise", "1e300"),
            ("init.gain", "1e308"),
        ]
    ),
    yaml_case(
        "float32-activation-layer-slope",
        "model:\n  input_shape: [2]\n  layers:\n    - {type: dense, units: 4}\n"
        "    - {type: activation, fn: leaky_relu, negative_slope: 1.0e+300}\n"
        "    - {type: dense, units: 3}\n",
        "model.layers.1.negative_slope",
        FLOAT32,
    ),
    case(
        "float32-init-param",
        ["train", *SMALL, "--method", "normal", "--set", "init.params.std=1e308"],
        "init.params",
        "std",
    ),
    *(
        case(f"critical-{option}-{value}", ["critical", option, value], option, "finite")
        for option, value in [
            ("--bias-var", "inf"),
            ("--weight-var", "inf"),
            ("--negative-slope", "nan"),
            ("--negative-slope", "-inf"),
        ]
    ),
    # ------------------------------------------------------------------ refused early
    case(
        "reproduce-runs-dir-under-a-file",
        ["reproduce", "he2015", "--runs-dir", "{tmp}/afile/runs"],
        "afile is a file",
        files={"afile": "x"},
        max_seconds=5,
    ),
    case(
        "stats-out-under-a-file",
        ["stats", "--out", "{tmp}/afile/out"],
        "afile is a file",
        files={"afile": "x"},
        max_seconds=5,
    ),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("WINIT_RUNS_DIR", str(work / "runs"))
    return work


@pytest.mark.parametrize("bad", CASES)
def test_hostile_input_is_one_short_error_and_writes_nothing(bad: Case, workdir: Path) -> None:
    for name, content in bad.files.items():
        _write(workdir / name, content)
    before = _tree(workdir)
    start = time.perf_counter()
    result = runner.invoke(app, [_fill(arg, workdir) for arg in bad.args], env={"COLUMNS": "80"})
    elapsed = time.perf_counter() - start
    output = result.output
    assert "Traceback" not in output, output[:2000]
    assert result.exit_code == 2, output[:2000]
    lines = output.splitlines()
    assert len(lines) <= 2 and lines[0].startswith("Error: "), output[:2000]
    assert len(output) < 600, f"the error repeats the input: {len(output):,} characters"
    for expected in bad.expect:
        assert _fill(expected, workdir) in lines[0], output
    assert _tree(workdir) == before, "the command wrote something"
    if bad.max_seconds is not None:
        assert elapsed < bad.max_seconds, f"took {elapsed:.1f} s"


def _limited() -> None:
    """In the child: at most 3 GiB of address space (torch alone maps about 1), so an
    unbounded expansion dies here instead of swapping the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["stats", "{tmp}/bomb.yaml"], id="file"),
        pytest.param(["stats", "--set", f"model.depth={FLOW_BOMB}"], id="set"),
        pytest.param(["sweep", "{tmp}/grid.yaml", "--dry-run"], id="sweep-grid"),
        pytest.param(["stats", "--config", "/dev/zero"], id="dev-zero"),
    ],
)
def test_expansion_is_refused_within_a_memory_limit(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(alias_bomb(levels=12))
    (tmp_path / "grid.yaml").write_text(
        f"grid:\n  model.depth: {alias_bomb(levels=12, flow=True)}\n"
    )
    command = [sys.executable, "-m", "weightinit_cli", *(_fill(a, tmp_path) for a in args)]
    env = {**os.environ, "COLUMNS": "80", "WINIT_RUNS_DIR": str(tmp_path / "runs")}
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limited,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("Error: ") and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(done.stderr) < 600
    assert not (tmp_path / "runs").exists()


def test_limits_leave_room_for_real_configs(tmp_path: Path) -> None:
    """The bounds refuse bombs, not configs: a sweep file with YAML anchors, merge keys and
    a 1,000-value axis still loads."""
    text = (
        "base: &base {depth: 2, width: 8}\n"
        "model:\n  <<: *base\n  activation: relu\n"
        "train: {steps: 1}\n"
        "grid:\n  seed: [" + ", ".join(map(str, range(1000))) + "]\n"
    )
    (tmp_path / "s.yaml").write_text(text.replace("base: &base", "x-base: &base"))
    result = runner.invoke(app, ["sweep", str(tmp_path / "s.yaml"), "--dry-run"])
    assert "unknown field x-base" in result.output  # the anchor parsed; the key is checked
    (tmp_path / "s.yaml").write_text(
        "model: &m {depth: 2, width: 8}\ntrain: {steps: 1}\n"
        "grid:\n  seed: [" + ", ".join(map(str, range(1000))) + "]\n"
    )
    result = runner.invoke(app, ["sweep", str(tmp_path / "s.yaml"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1,000 trials" in result.output or "1000 trials" in result.output, result.output


@pytest.mark.parametrize(
    "values, names",
    [
        pytest.param("-0.1,0.1", ["negative_slope=-0.1", "negative_slope=0.1"], id="sign"),
        pytest.param("1e+30,1e-30", ["negative_slope=1e30", "negative_slope=1e-30"], id="exp"),
        pytest.param("-2,2", ["negative_slope=-2", "negative_slope=2"], id="int-sign"),
    ],
)
def test_trial_directory_names_keep_what_tells_values_apart(values: str, names: list[str]) -> None:
    from weightinit_cli.sweep.grid import load_sweep

    sweep = load_sweep(None, [f"model.negative_slope={values}"], ["model.activation=leaky_relu"])
    assert [t.dirname.split("_", 1)[1] for t in sweep.trials] == names


def test_string_values_that_a_file_name_changes_stay_apart() -> None:
    from weightinit_cli.sweep.grid import load_sweep

    sweep = load_sweep(None, ["data.path=[a b, a-b, a/b]"])
    labels = [t.dirname.split("_", 1)[1] for t in sweep.trials]
    assert labels[1] == "path=a-b"  # already a file name: as it is
    assert len(set(labels)) == 3 and all(label.startswith("path=a-b") for label in labels)


def test_a_long_axis_is_shown_as_an_excerpt_in_the_dry_run(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "model: {depth: 2, width: 8}\ntrain: {steps: 1}\n"
        "grid:\n  seed: [" + ", ".join(map(str, range(3000))) + "]\n"
    )
    result = runner.invoke(app, ["sweep", str(tmp_path / "s.yaml"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "0, 1, 2, 3, 4, 5, 6, 7, ..., 2998, 2999 (3,000 values)" in " ".join(
        result.output.split()
    )
    assert len(result.output) < 1000


def test_a_long_text_of_letters_is_a_string_not_a_number() -> None:
    """The number bound is for numbers: a long name of hex-looking letters stays a name."""
    from weightinit_cli.yamlio import parse_yaml

    assert parse_yaml("name: " + "deadbeef" * 100) == {"name": "deadbeef" * 100}


def test_the_dry_run_json_keeps_every_character_of_a_grid_point() -> None:
    long_path = "p" * 150
    result = runner.invoke(
        app, ["sweep", "--dry-run", "--json", "--grid", f"data.path=[{long_path}, b]"]
    )
    assert result.exit_code == 0, result.output
    import json

    points = [t["point"] for t in json.loads(result.stdout)["trials"]]
    assert points == [f"data.path={long_path}", "data.path=b"]


def test_a_long_grid_label_with_an_undecodable_byte_is_named(tmp_path: Path) -> None:
    from weightinit_cli.sweep.grid import load_sweep

    # YAML's escape of the lone surrogate that stands for a file name's byte 0xff
    sweep = load_sweep(None, ['data.path=["\\udcff' + "a" * 90 + '", b]'])
    assert sweep.trials[0].config.data.path == "\udcff" + "a" * 90
    assert len({t.dirname for t in sweep.trials}) == 2


def test_a_named_pipe_where_winit_wrote_json_is_refused_not_waited_on(tmp_path: Path) -> None:
    from weightinit_cli.errors import WinitError
    from weightinit_cli.limits import read_json

    os.mkfifo(tmp_path / "summary.json")  # nobody will ever write to it
    with pytest.raises(WinitError, match="not a regular file"):
        read_json(tmp_path / "summary.json")


def test_the_sweep_lock_never_writes_through_a_link(tmp_path: Path) -> None:
    from weightinit_cli.errors import WinitError
    from weightinit_cli.sweep.resume import sweep_lock

    precious = tmp_path / "precious.txt"
    precious.write_text("my notes\n")
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / ".lock").symlink_to(precious)
    with pytest.raises(WinitError, match="lock"), sweep_lock(sweep_dir):
        pass
    assert precious.read_text() == "my notes\n"


def test_a_sweep_named_by_an_older_winit_resumes_without_running_again(tmp_path: Path) -> None:
    """Before trial names kept signs, -0.1's trial was named negative_slope=0.1: resuming
    such a sweep finds it by that name (its meta.json proves it), renames it, runs nothing."""
    from weightinit_cli.sweep.grid import earlier_dirname, load_sweep

    grid = ["model.negative_slope=-0.1,0.1"]
    sets = ["model.activation=leaky_relu", "model.depth=2", "model.width=8", "train.steps=2"]
    args = ["sweep", *(a for g in grid for a in ("--grid", g))]
    args += [*(a for s in sets for a in ("--set", s)), "--runs-dir", str(tmp_path), "--jobs", "1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    (sweep_dir,) = tmp_path.glob("sweep-*")
    trials = sweep_dir / "trials"
    sweep = load_sweep(None, grid, sets)
    negative = sweep.trials[0]
    old_name = earlier_dirname(sweep, negative)
    assert old_name != negative.dirname and old_name.endswith("negative_slope=0.1")
    (trials / negative.dirname).rename(trials / old_name)
    before = (trials / old_name / "summary.json").read_bytes()

    again = runner.invoke(app, [*args, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["ran"] == 0
    assert sorted(p.name for p in trials.iterdir()) == sorted(t.dirname for t in sweep.trials)
    assert (trials / negative.dirname / "summary.json").read_bytes() == before
