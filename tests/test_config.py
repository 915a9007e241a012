"""Config loading: defaults, files, --set overrides, and one-line errors naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from weightinit_cli.config import Config, InitConfig
from weightinit_cli.errors import WinitError
from weightinit_cli.loading import apply_overrides, config_hash, config_to_yaml, load_config
from weightinit_cli.schema import json_schema

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


SCHEMA_ERRORS = [
    ("model:\n  depth: 0\n", "model.depth: Input should be greater than or equal to 1"),
    ("model:\n  depth: ten\n", "model.depth: Input should be a valid integer"),
    ("model:\n  depth: '30'\n", "model.depth: Input should be a valid integer"),
    (
        "model:\n  width: 2000000\n",
        "model.width: Input should be less than or equal to 1000000",
    ),
    ("model:\n  depht: 3\n", "unknown field model.depht (did you mean model.depth?)"),
    ("modle: {}\n", "unknown field modle (did you mean model?)"),
    ("model:\n  activation: relu6\n", "model.activation: Input should be 'linear', 'relu'"),
    (
        "model:\n  input_shape: [4]\n  layers:\n    - {type: dense, units: 4}\n"
        "    - {type: dense, units: 0}\n",
        "model.layers.1.units: Input should be greater than or equal to 1",
    ),
    (
        "model:\n  layers:\n    - {type: pool, globl: true}\n",
        "unknown field model.layers.0.globl (did you mean model.layers.0.global?)",
    ),
    ("model:\n  layers:\n    - {type: dens, units: 4}\n", "model.layers.0: Input tag 'dens'"),
    (
        "model:\n  input_shape: [3, 8, 8]\n  layers:\n    - {type: conv2d, channels: 4, "
        "padding: -1}\n",
        "model.layers.0.padding: must be same, valid or a whole number >= 0; got -1",
    ),
    (
        "init:\n  method: he_nromal\n",
        "init.method: unknown init method 'he_nromal'; did you mean",
    ),
    (
        "init:\n  method: xavier\n  mode: fan_in\n",
        "init.mode: xavier_uniform does not take mode",
    ),
    ("init:\n  mode: fan_avg\n", "init.mode: parameter 'mode' of he_normal must be one of"),
    ("init:\n  method: normal\n  gain: 2\n", "init.gain: normal takes no gain"),
    ("init:\n  gain: loud\n", "init.gain: must be default, auto or a number >= 0; got 'loud'"),
    ("init:\n  params: {std: 1}\n", "init.params: he_normal does not take std"),
    ("init:\n  mode: fan_in\n  params: {mode: fan_out}\n", "init.params: mode is given twice"),
    ("init:\n  gain: auto\n  params: {gain: 2}\n", "init.params: gain is given twice"),
    ("init:\n  gain: 2\n  params: {gain: 2}\n", "init.params: gain is given twice"),
    ("data:\n  name: npz\n", "data.path: required when data.name is npz"),
    ("data:\n  samples: 4\n", "data.samples: Input should be greater than or equal to 8"),
    ("data:\n  test_fraction: 1.0\n", "data.test_fraction: Input should be less than 1"),
    ("train:\n  lr: .nan\n", "train.lr: Input should be a finite number"),
    ("train:\n  lr: .inf\n", "train.lr: Input should be a finite number"),
    ("train:\n  lr: 0\n", "train.lr: Input should be greater than 0"),
    ("train:\n  momentum: 1\n", "train.momentum: Input should be less than 1"),
    ("seed: -1\n", "seed: Input should be greater than or equal to 0"),
    ("device: tpu\n", "device: Input should be 'cpu', 'cuda' or 'auto'"),
]


SHAPE_ERRORS = [
    ("model:\n  type: conv2d\n", "model.input_shape: conv2d needs [C, H, W]; got [2]"),
    (
        "model:\n  type: conv2d\n  input_shape: [1, 8, 8]\n  padding: valid\n  depth: 4\n",
        "model: layer 6 (conv2d, 'conv2d4'): input 2x2 is smaller than kernel 3 (padding valid)",
    ),
    (
        "model:\n  input_shape: [3, 8, 8]\n  layers:\n    - {type: conv2d, channels: 4}\n"
        "    - {type: dense, units: 3}\n",
        "model.layers.1 (dense, 'dense1'): input [4, 8, 8] is not flat; add a flatten layer",
    ),
    (
        "model:\n  num_classes: 4\n  input_shape: [4]\n  layers: [{type: dense, units: 5}]\n",
        "model.num_classes: is 4 but the layers output 5 values",
    ),
    (
        "model:\n  width: 1000000\n  depth: 1000\n",
        "model: needs 3,721,568.8 GiB for 999,001.0 billion parameters; the limit is 4 GiB",
    ),
]


YAML_ERRORS = [
    (
        "model:\n  depth: 3\n  width: 4\n  depth: 5\n",
        ":4:3: duplicate key 'depth' (first on line 2)",
    ),
    ("model: {depth: 3, depth: 4}\n", ":1:19: duplicate key 'depth' (first on line 1)"),
    ("model:\n  depth: [1, 2\n", ":3:1: expected ',' or ']', but got '<stream end>'"),
    ("model:\n  depth: 3\n width: 2\n", ":3:2: expected <block end>"),
    ("model:\n\tdepth: 3\n", ":2:1: found character '\\t' that cannot start any token"),
    ("a: !!python/object:os.system x\n", ":1:4: could not determine a constructor"),
    ("", ": the file is empty"),
    ("# only a comment\n", ": the file is empty"),
    ("- model\n- init\n", ": expected a mapping of sections (model:, init:, data:, train:)"),
]


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_error(path: Path | None, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(WinitError) as caught:
        load_config(path, overrides)
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_train_defaults_are_designs_deep_relu_mlp() -> None:
    cfg = load_config()
    assert cfg.name == "default"
    assert (cfg.model.type, cfg.model.depth, cfg.model.width) == ("dense", 20, 64)
    assert (cfg.model.activation, cfg.model.input_shape) == ("relu", [2])
    assert (cfg.init.method, cfg.init.backend, cfg.init.gain) == ("he_normal", "scratch", "default")
    assert cfg.data.name == "spirals"
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.momentum) == ("sgd", 0.02, 0.0)
    assert (cfg.train.steps, cfg.train.batch_size) == (400, 128)
    assert load_config() == cfg == load_config(command="compare")


def test_stats_defaults_are_a_deep_wide_mlp_on_gaussian_inputs() -> None:
    cfg = load_config(command="stats")
    assert (cfg.model.depth, cfg.model.width, cfg.model.input_shape) == (30, 512, [16])
    assert (cfg.data.name, cfg.init.method, cfg.train.batch_size) == ("gaussian", "he_normal", 512)
    assert load_config(command="stats") == cfg


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_example_configs_load_named_after_their_file(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.name == path.stem
    assert path.read_text().startswith("# yaml-language-server: $schema=../winit.schema.json\n")


def test_file_merges_over_the_commands_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "name: mine\nmodel:\n  depth: 3\n")
    cfg = load_config(path, command="stats")
    assert (cfg.name, cfg.model.depth, cfg.model.width, cfg.data.name) == (
        "mine",
        3,
        512,
        "gaussian",
    )


@pytest.mark.parametrize(
    ("override", "section", "field", "value"),
    [
        ("model.depth=30", "model", "depth", 30),
        ("train.lr=1e-3", "train", "lr", 0.001),
        ("train.lr=2.5E+2", "train", "lr", 250.0),
        ("train.lr=.5e-1", "train", "lr", 0.05),
        ("model.input_shape=[5]", "model", "input_shape", [5]),
        ("model.bias=false", "model", "bias", False),
        ("init.method=kaiming", "init", "method", "he_normal"),
        ("init.gain=auto", "init", "gain", "auto"),
        ("init.params.nonlinearity=tanh", "init", "params", {"nonlinearity": "tanh"}),
        ("train.target_loss=null", "train", "target_loss", None),
        ("data.name = blobs", "data", "name", "blobs"),
    ],
)
def test_overrides_parse_values_as_yaml(override: str, section: str, field: str, value) -> None:
    cfg = load_config(overrides=[override])
    assert getattr(getattr(cfg, section), field) == value


def test_overrides_apply_in_order_and_reach_list_items() -> None:
    cfg = load_config(
        CONFIGS[0].parent / "mixed.yaml", ["model.layers.3.units=12", "seed=7", "seed=8"]
    )
    assert (cfg.model.layers[3].units, cfg.seed) == (12, 8)
    assert apply_overrides({"a": {"b": 1}}, ["a.c=x"]) == {"a": {"b": 1, "c": "x"}}


def test_scientific_notation_in_files_is_a_number(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "train:\n  lr: 1e-3\n  weight_decay: 5E-4\n"))
    assert (cfg.train.lr, cfg.train.weight_decay) == (0.001, 0.0005)


def test_the_init_is_resolved_once_with_mode_merged() -> None:
    init = InitConfig(method="kaiming_uniform", mode="fan_out", params={"nonlinearity": "tanh"})
    assert init.method == init.spec.method == "he_uniform"
    assert dict(init.spec.given) == {"nonlinearity": "tanh", "mode": "fan_out"}
    assert dict(init.spec.params) == {
        "mode": "fan_out",
        "nonlinearity": "tanh",
        "a": 0.0,
        "gain": None,
    }
    assert init.spec is init.spec  # computed while validating, then kept
    assert dict(InitConfig().spec.given) == {}


def test_explicit_layers_set_num_classes_when_not_given(tmp_path: Path) -> None:
    text = "model:\n  input_shape: [4]\n  layers: [{type: dense, units: 7}]\n"
    assert load_config(write(tmp_path, text)).model.num_classes == 7


@pytest.mark.parametrize(("text", "expected"), SCHEMA_ERRORS, ids=[e for _, e in SCHEMA_ERRORS])
def test_schema_errors_name_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert load_error(path).startswith(f"{path}: {expected}")


@pytest.mark.parametrize(("text", "expected"), SHAPE_ERRORS, ids=[e for _, e in SHAPE_ERRORS])
def test_impossible_shapes_fail_at_load_time(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert load_error(path).startswith(f"{path}: {expected}")


@pytest.mark.parametrize(("text", "expected"), YAML_ERRORS, ids=[e for _, e in YAML_ERRORS])
def test_yaml_problems_give_file_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert load_error(path).startswith(f"{path}{expected}")


def test_unreadable_paths_are_named(tmp_path: Path) -> None:
    binary = tmp_path / "model.pt"
    binary.write_bytes(b"PK\x03\x04\x00\xff\xfe")
    assert load_error(binary) == f"{binary}: not a text file; a config is YAML text"
    assert load_error(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such config file"
    assert load_error(tmp_path) == f"{tmp_path}: is a directory, not a config file"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model.depth"], "--set needs KEY=VALUE; got 'model.depth'"),
        (["=3"], "--set needs KEY=VALUE; got '=3'"),
        (["model..depth=3"], "--set model..depth=3: 'model..depth' has an empty part"),
        (
            ["model.depht=3"],
            "--set model.depht=3: unknown field model.depht (did you mean model.depth?)",
        ),
        (
            ["model.depth=abc"],
            "--set model.depth=abc: model.depth: Input should be a valid integer",
        ),
        (["model.depth=[1"], "--set model.depth=[1: cannot parse the value: 1:3: expected ','"),
        (["seed=1", "train.lr=-1"], "--set train.lr=-1: train.lr: Input should be greater than 0"),
        (
            ["model.type=conv3d"],
            "--set model.type=conv3d: model.input_shape: conv3d needs [C, D, H, W]",
        ),
    ],
)
def test_bad_overrides_name_the_override(
    tmp_path: Path, overrides: list[str], expected: str
) -> None:
    assert load_error(None, tuple(overrides)).startswith(expected)


def test_errors_blame_the_override_that_set_the_field_else_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "train:\n  lr: 0\n")
    assert load_error(path, ("train.steps=3",)).startswith(f"{path}: train.lr:")
    assert load_error(path, ("train.lr=-1", "seed=2")).startswith("--set train.lr=-1: train.lr:")
    assert load_error(path, ("train={lr: -1}",)).startswith("--set train={lr: -1}: train.lr:")


def test_override_through_a_list_checks_the_index() -> None:
    mixed = CONFIGS[0].parent / "mixed.yaml"
    message = load_error(mixed, ("model.layers.9.units=3",))
    assert message == "--set model.layers.9.units=3: model.layers is a list of 6; it has no '9'"


@pytest.mark.parametrize(
    "cfg", [load_config(), load_config(command="stats"), *map(load_config, CONFIGS)]
)
def test_config_to_yaml_round_trips(tmp_path: Path, cfg: Config) -> None:
    text = config_to_yaml(cfg)
    assert load_config(write(tmp_path, text)) == cfg
    assert config_hash(load_config(write(tmp_path, text))) == config_hash(cfg)


def test_config_hash_identifies_the_experiment_not_its_name() -> None:
    cfg = load_config()
    assert len(config_hash(cfg)) == 12
    assert config_hash(cfg.model_copy(update={"name": "other"})) == config_hash(cfg)
    assert config_hash(load_config(overrides=["seed=1"])) != config_hash(cfg)


def _refs(node) -> list[str]:
    """Every $ref in a schema."""
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    own = [node["$ref"]] if isinstance(node, dict) and "$ref" in node else []
    return own + [ref for child in children for ref in _refs(child)]


def test_json_schema_is_draft7_with_resolvable_refs() -> None:
    schema = json_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "$defs" not in json.dumps(schema)
    refs = _refs(schema)
    assert refs
    for ref in refs:
        assert ref.startswith("#/definitions/")
        assert ref.removeprefix("#/definitions/") in schema["definitions"]
    assert schema["additionalProperties"] is False


def test_json_schema_accepts_the_examples_and_rejects_typos() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft7Validator(json_schema())
    for path in CONFIGS:
        data = yaml.safe_load(path.read_text())
        assert not list(validator.iter_errors(data)), path
    assert not list(validator.iter_errors(yaml.safe_load(config_to_yaml(load_config()))))
    assert list(validator.iter_errors({"model": {"depht": 3}}))


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        (
            "model:\n  layers:\n    - {type: dense, unitz: 4}\n",
            [
                "unknown field model.layers.0.unitz (did you mean model.layers.0.units?)",
                "model.layers.0.units: Field required",
            ],
        ),
        (
            "model:\n  depth: 0\n  width: 0\n",
            [
                "model.depth: Input should be greater than or equal to 1",
                "model.width: Input should be greater than or equal to 1",
            ],
        ),
        (
            "init:\n  method: normal\n  mode: fan_in\n  gain: 2\n  params: {std: -1}\n",
            [
                "init.mode: normal does not take mode",
                "init.gain: normal takes no gain",
                "init.params: normal: std must be >= 0",
            ],
        ),
    ],
)
def test_several_mistakes_are_listed_a_line_each(tmp_path: Path, text: str, lines: list) -> None:
    path = write(tmp_path, text)
    with pytest.raises(WinitError) as caught:
        load_config(path)
    got = str(caught.value).splitlines()
    assert len(got) == len(lines)
    for line, expected in zip(got, lines, strict=True):
        assert line.startswith(f"{path}: ") and expected in line


def test_several_mistakes_are_listed_by_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from weightinit_cli.cli import app

    path = write(tmp_path, "model:\n  depth: 0\n  width: 0\ntrain: {lr: -1}\n")
    result = CliRunner().invoke(app, ["stats", str(path)])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"Error: {path}: model.depth: ")
    assert lines[1].strip().startswith(f"{path}: model.width: ")
    assert lines[2].strip().startswith(f"{path}: train.lr: Input should be greater than 0")


def test_loading_a_config_does_not_import_torch() -> None:
    code = (
        "import sys, weightinit_cli.loading as c; "
        "c.load_config('configs/conv2d.yaml').model.plan; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CONFIGS[0].parents[1])
