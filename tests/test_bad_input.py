"""Bad input, end to end: every mistake a user can make ends in one clear error line.

Hand-written YAML, command-line typos, the user's own .npz files and impossible
models all go through the real `winit` commands (Typer's CliRunner). The contract
for each: exit code 2, one or two lines of output whose first starts with
"Error: " and names the file, field or layer (and, where the valid values are a
short list, says them), no traceback, and nothing written to disk: no run
directory, no --out directory, no stray files.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from weightinit_cli.cli import app

runner = CliRunner()

# Where a run would otherwise start, keep it tiny.
SMALL = ("--depth", "2", "--width", "8", "--steps", "2")
DIR = object()  # a `files` value: make a directory
ACTIVATIONS = "'linear', 'relu', 'leaky_relu', 'tanh', 'sigmoid', 'selu', 'gelu', 'elu' or 'silu'"
DATASETS = (
    "'spirals', 'blobs', 'teacher', 'gaussian', 'shapes2d', 'shapes3d', 'pointer', 'digits', "
    "'mnist', 'mnist1d', 'breast_cancer', 'wine' or 'npz'"
)
LAYER_TYPES = (
    "'dense', 'conv2d', 'conv3d', 'flatten', 'activation', 'batchnorm', 'layernorm', 'dropout', "
    "'pool', 'embedding', 'attention', 'residual'"
)


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    expect: tuple[str, ...]  # substrings of the first line, after "Error: "
    files: Mapping[str, Any] = field(default_factory=dict)  # name -> text, bytes, arrays, DIR
    env: Mapping[str, str] = field(default_factory=dict)
    max_seconds: float | None = None


def case(id: str, args: list[str] | tuple[str, ...], *expect: str, marks=(), **kw: Any):
    """One bad input; "{tmp}" in args, env and texts is the test's temporary directory."""
    return pytest.param(Case(tuple(args), expect, **kw), id=id, marks=marks)


def yaml_case(id: str, text: str | bytes, *expect: str, command: str = "train", **kw: Any):
    """A config file bad.yaml given to `command`; the error names the file."""
    return case(
        id, [command, "{tmp}/bad.yaml"], "bad.yaml", *expect, files={"bad.yaml": text}, **kw
    )


def xy(n: int = 40, features: int = 2, classes: int = 3) -> dict[str, np.ndarray]:
    """A valid npz dataset for the default model (input [2], 3 classes)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, features)).astype(np.float32)
    return {"x": x, "y": np.arange(n) % classes}


def npz_case(id: str, content: Any, *expect: str, name_file: bool = True):
    """`winit train` on the user's data.npz holding `content` (arrays, or raw bytes/text)."""
    args = ["train", *SMALL, "--set", "data.name=npz", "--set", "data.path={tmp}/data.npz"]
    named = ("data.path", *(["data.npz"] if name_file else []))
    return case(id, args, *named, *expect, files={"data.npz": content})


def layers(input_shape: str, *specs: str) -> str:
    items = "".join(f"    - {spec}\n" for spec in specs)
    return f"model:\n  input_shape: {input_shape}\n  layers:\n{items}"


CASES = [
    # ------------------------------------------------------------------ YAML syntax
    yaml_case("yaml-tab", "model:\n\tdepth: 3\n", ":2:1:", "tab"),
    yaml_case("yaml-unclosed-bracket", "model:\n  input_shape: [1, 2\n", ":3:1:", "']'"),
    yaml_case("yaml-unclosed-brace", "model: {depth: 3\n", "'}'"),
    yaml_case("yaml-bad-indent", "model:\n  depth: 3\n width: 2\n", ":3:2:"),
    yaml_case("yaml-duplicate-top", "seed: 1\nseed: 2\n", ":2:1:", "duplicate key 'seed'"),
    yaml_case(
        "yaml-duplicate-nested",
        "model:\n  depth: 3\n  depth: 4\n",
        ":3:3:",
        "duplicate key 'depth'",
    ),
    yaml_case("yaml-top-list", "- model\n- init\n", "expected a mapping", "got a list"),
    yaml_case("yaml-top-scalar", "hello\n", "expected a mapping", "got a string"),
    yaml_case(
        "yaml-model-list", "model: [1, 2]\n", "model: expected a mapping", "depth", "got a list"
    ),
    yaml_case("yaml-init-number", "init: 3\n", "init: expected a mapping", "method", "got 3"),
    yaml_case("yaml-model-null", "model:\n", "model: expected a mapping", "got null"),
    yaml_case("yaml-empty", "", "the file is empty"),
    yaml_case("yaml-only-comment", "# nothing here\n", "the file is empty"),
    yaml_case("yaml-binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
    yaml_case("yaml-latin1", "name: caf\xe9\n".encode("latin-1"), "not a text file"),
    yaml_case("yaml-python-tag", "seed: !!python/object:os.system x\n", ":1:7:", "constructor"),
    yaml_case("yaml-non-string-key", "1: 2\n", "1"),
    case("yaml-missing-file", ["train", "{tmp}/nope.yaml"], "nope.yaml", "no such config file"),
    case(
        "yaml-directory",
        ["train", "{tmp}/configs"],
        "configs",
        "is a directory",
        files={"configs": DIR},
    ),
    # ------------------------------------------------------------------ schema
    yaml_case("unknown-top", "modle: {}\n", "unknown field modle", "did you mean model?"),
    yaml_case("unknown-model", "model:\n  depht: 3\n", "unknown field model.depht", "model.depth"),
    yaml_case("unknown-init", "init:\n  methd: he\n", "unknown field init.methd", "init.method"),
    yaml_case("unknown-data", "data:\n  nmae: spirals\n", "unknown field data.nmae", "data.name"),
    yaml_case("unknown-train", "train:\n  stpes: 3\n", "unknown field train.stpes", "train.steps"),
    yaml_case(
        "unknown-train-no-match",
        "train:\n  foo: 1\n",
        "unknown field train.foo",
        "expected steps, batch_size, optimizer, lr",
    ),
    yaml_case(
        "unknown-layer-field",
        layers("[4]", "{type: dense, units: 3, unitz: 4}"),
        "unknown field model.layers.0.unitz",
        "model.layers.0.units",
    ),
    yaml_case(
        "depth-string", "model:\n  depth: three\n", "model.depth", "valid integer", "'three'"
    ),
    yaml_case("depth-quoted-number", "model:\n  depth: '3'\n", "model.depth", "valid integer"),
    yaml_case("depth-float", "model:\n  depth: 2.5\n", "model.depth", "valid integer", "2.5"),
    yaml_case("lr-list", "train:\n  lr: [0.1]\n", "train.lr", "valid number", "list"),
    yaml_case("width-bool", "model:\n  width: true\n", "model.width", "valid integer", "true"),
    yaml_case("input-shape-scalar", "model:\n  input_shape: 2\n", "model.input_shape", "list"),
    yaml_case("params-list", "init:\n  params: [1]\n", "init.params", "mapping", "list"),
    yaml_case("name-list", "name: [a]\n", "name", "valid string"),
    yaml_case("depth-zero", "model:\n  depth: 0\n", "model.depth", "greater than or equal to 1"),
    yaml_case("width-negative", "model:\n  width: -1\n", "model.width", "greater than or equal"),
    yaml_case("width-huge", "model:\n  width: 1000000000\n", "model.width", "less than or equal"),
    yaml_case(
        "batch-size-zero",
        "train:\n  batch_size: 0\n",
        "train.batch_size",
        "greater than or equal to 1",
    ),
    yaml_case("samples-three", "data:\n  samples: 3\n", "data.samples", "greater than or equal"),
    yaml_case(
        "unknown-method",
        "init:\n  method: hee_normal\n",
        "init.method",
        "'hee_normal'",
        "he_normal",
    ),
    yaml_case(
        "unknown-activation", "model:\n  activation: relu6\n", "model.activation", ACTIVATIONS
    ),
    yaml_case("unknown-dataset", "data:\n  name: imagenet\n", "data.name", DATASETS),
    yaml_case(
        "unknown-optimizer", "train:\n  optimizer: rmsprop\n", "train.optimizer", "'sgd' or 'adam'"
    ),
    yaml_case("unknown-device", "device: tpu\n", "device", "'cpu', 'cuda' or 'auto'"),
    yaml_case("unknown-backend", "init:\n  backend: jax\n", "init.backend", "'scratch' or 'torch'"),
    yaml_case(
        "unknown-layer-type", layers("[4]", "{type: lstm, units: 3}"), "model.layers.0", LAYER_TYPES
    ),
    yaml_case("layer-without-type", layers("[4]", "{units: 3}"), "model.layers.0", LAYER_TYPES),
    yaml_case("layer-not-mapping", layers("[4]", "3"), "model.layers.0", "mapping"),
    yaml_case(
        "layer-unknown-fn",
        layers("[4]", "{type: dense, units: 3}", "{type: activation, fn: swish}"),
        "model.layers.1.fn",
        ACTIVATIONS,
    ),
    yaml_case("layers-empty", "model:\n  layers: []\n", "model.layers", "at least 1"),
    yaml_case(
        "param-not-taken",
        "init:\n  method: normal\n  params: {gain: 2}\n",
        "init.params",
        "normal does not take gain; it takes mean, std",
    ),
    yaml_case(
        "param-bad-choice",
        "init:\n  params: {mode: sideways}\n",
        "init.params",
        "mode",
        "fan_in, fan_out",
    ),
    yaml_case(
        "param-infinite", "init:\n  method: normal\n  params: {std: .inf}\n", "std", "finite"
    ),
    yaml_case(
        "gain-without-gain",
        "init:\n  method: zeros\n  gain: 2\n",
        "init.gain",
        "zeros takes no gain",
    ),
    yaml_case("gain-word", "init:\n  gain: loud\n", "init.gain", "default, auto or a number"),
    yaml_case(
        "param-gain-negative",
        "init:\n  method: xavier_normal\n  params: {gain: -1}\n",
        "init.params",
        "gain must be >= 0",
    ),
    yaml_case(
        "variance-scaling-gain-zero",
        "init:\n  method: variance_scaling\n  gain: 0\n",
        "init.gain",
        "gain must be > 0",
    ),
    yaml_case("lr-zero", "train:\n  lr: 0\n", "train.lr", "greater than 0"),
    yaml_case("lr-negative", "train:\n  lr: -0.1\n", "train.lr", "greater than 0"),
    yaml_case("momentum-one", "train:\n  momentum: 1\n", "train.momentum", "less than 1"),
    yaml_case("lr-nan", "train:\n  lr: .nan\n", "train.lr", "finite"),
    yaml_case("lr-inf", "train:\n  lr: .inf\n", "train.lr", "finite"),
    yaml_case("noise-minus-inf", "data:\n  noise: -.inf\n", "data.noise", "finite"),
    yaml_case(
        "test-fraction-one", "data:\n  test_fraction: 1\n", "data.test_fraction", "less than 1"
    ),
    yaml_case(
        "dropout-one", layers("[4]", "{type: dropout, p: 1}", "{type: dense, units: 3}"), "p"
    ),
    yaml_case("seed-huge", "seed: 99999999999999999999999\n", "seed", "less than or equal"),
    # ------------------------------------------------------------------ shapes
    yaml_case(
        "kernel-larger-than-input",
        "model:\n  type: conv2d\n  input_shape: [1, 2, 2]\n  padding: valid\n  depth: 1\n",
        "model: layer 0 (conv2d, 'conv2d1')",
        "smaller than kernel 3",
    ),
    yaml_case(
        "kernel-larger-than-input-layers",
        layers("[1, 3, 3]", "{type: conv2d, channels: 2, kernel_size: 5, padding: valid}"),
        "model.layers.0 (conv2d, 'conv2d1')",
        "smaller than kernel 5",
    ),
    yaml_case(
        "conv-input-rank",
        "model:\n  type: conv2d\n  input_shape: [8, 8]\n",
        "model.input_shape",
        "[C, H, W]",
    ),
    yaml_case(
        "conv3d-input-rank",
        "model:\n  type: conv3d\n  input_shape: [1, 8, 8]\n",
        "model.input_shape",
        "[C, D, H, W]",
    ),
    yaml_case(
        "dense-then-conv",
        layers("[4]", "{type: dense, units: 8}", "{type: conv2d, channels: 4}"),
        "model.layers.1 (conv2d, 'conv2d1')",
        "[C, H, W]",
    ),
    yaml_case(
        "conv-then-dense-no-flatten",
        layers("[1, 8, 8]", "{type: conv2d, channels: 4}", "{type: dense, units: 3}"),
        "model.layers.1 (dense, 'dense1')",
        "flatten",
    ),
    yaml_case(
        "groups-not-dividing",
        layers("[3, 8, 8]", "{type: conv2d, channels: 4, groups: 2}", "{type: flatten}"),
        "model.layers.0 (conv2d, 'conv2d1')",
        "groups 2 must divide",
    ),
    yaml_case(
        "ends-not-flat",
        layers("[1, 8, 8]", "{type: conv2d, channels: 4}"),
        "model.layers",
        "global pool or a flatten",
    ),
    yaml_case(
        "pool-larger-than-input",
        layers("[1, 2, 2]", "{type: pool, size: 3}", "{type: flatten}", "{type: dense, units: 3}"),
        "model.layers.0 (pool, 'pool1')",
        "pool size 3",
    ),
    yaml_case(
        "num-classes-mismatch",
        "model:\n  num_classes: 3\n  input_shape: [4]\n  layers: [{type: dense, units: 5}]\n",
        "model.num_classes",
        "is 3 but the layers output 5",
    ),
    yaml_case(
        "one-output",
        layers("[4]", "{type: dense, units: 1}"),
        "model.layers",
        "at least 2 classes",
    ),
    case(
        "parameters-do-not-fit",
        ["train", "--depth", "10000", "--width", "1000000"],
        "model",
        "GiB",
        "the limit is 4 GiB",
        max_seconds=2.0,
    ),
    case(
        "dense-data-does-not-fit",
        ["train", *SMALL, "--set", "model.input_shape=[1000000]", "--set", "data.name=gaussian"],
        "--set model.input_shape=[1000000]: data: 2,048 samples (data.samples)",
        "model.input_shape",
        "GiB",
        max_seconds=2.0,
    ),
    case(
        "data-does-not-fit",
        ["train", *SMALL, "--layer", "conv2d", "--set", "model.input_shape=[1, 30000, 30000]"],
        "model.input_shape",
        "GiB",
        max_seconds=2.0,
    ),
    case(
        "activations-do-not-fit",
        [
            "train",
            *SMALL,
            "--layer",
            "conv2d",
            "--width",
            "4096",
            "--set",
            "model.input_shape=[1, 256, 256]",
            "--set",
            "data.samples=64",
        ],
        "train.batch_size",
        "GiB",
        max_seconds=2.0,
    ),
    # ------------------------------------------------------------------ data (.npz)
    npz_case("npz-without-x", {"y": xy()["y"]}, "missing array 'x'", "the file holds: y"),
    npz_case("npz-without-y", {"x": xy()["x"]}, "missing array 'y'", "the file holds: x"),
    npz_case("npz-lengths", {**xy(), "y": np.arange(39) % 3}, "len(x)=40, len(y)=39"),
    npz_case("npz-x-strings", {**xy(), "x": np.full((40, 2), "a")}, "x must be numeric", "<U1"),
    npz_case(
        "npz-x-objects",
        {**xy(), "x": np.array([[1, "a"]] * 40, dtype=object)},
        "'x'",
        "pickle",
    ),
    npz_case("npz-y-strings", {**xy(), "y": np.array(["a", "b"] * 20)}, "y must hold integer"),
    npz_case("npz-y-fractions", {**xy(), "y": np.linspace(0, 2, 40)}, "y must hold integer"),
    npz_case("npz-y-2d", {**xy(), "y": np.zeros((40, 1), dtype=int)}, "y must be 1-D"),
    npz_case("npz-shape", xy(features=3), "per-sample shape [3]", "model.input_shape is [2]"),
    npz_case(
        "npz-nan",
        {**xy(), "x": np.where(np.eye(40, 2, dtype=bool), np.nan, xy()["x"])},
        "NaN",
    ),
    npz_case("npz-labels-out-of-range", xy(classes=5), "labels from 0 to 4", "model.num_classes=3"),
    npz_case("npz-negative-labels", {**xy(), "y": np.arange(40) % 3 - 1}, "labels from -1"),
    npz_case("npz-too-few", xy(n=3), "has 3 samples", "too few", name_file=False),
    npz_case("npz-not-npz", "x,y\n1,2\n", "not a NumPy .npz file"),
    npz_case("npz-empty-file", b"", "not a NumPy .npz file"),
    npz_case("npz-is-directory", DIR, "is a directory"),
    case(
        "npz-without-path",
        ["train", *SMALL, "--set", "data.name=npz"],
        "--set data.name=npz: data.path: required when data.name is npz",
    ),
    case(
        "npz-missing-file",
        ["train", *SMALL, "--set", "data.name=npz", "--set", "data.path={tmp}/gone.npz"],
        "data.path",
        "gone.npz",
    ),
    # ------------------------------------------------------------------ command line
    case("set-without-equals", ["train", "--set", "model.depth"], "--set", "KEY=VALUE"),
    case("set-empty-key", ["train", "--set", "=3"], "--set", "KEY=VALUE"),
    case("set-empty-part", ["train", "--set", "model..depth=3"], "model..depth", "empty part"),
    case(
        "set-typo",
        ["train", "--set", "model.depht=3"],
        "--set model.depht=3",
        "unknown field model.depht",
        "did you mean model.depth?",
    ),
    case("set-unknown-top", ["train", "--set", "foo=1"], "--set foo=1", "unknown field foo"),
    case(
        "set-not-a-number",
        ["train", "--set", "model.depth=abc"],
        "--set model.depth=abc",
        "model.depth",
        "valid integer",
    ),
    case(
        "set-unparsable-value",
        ["train", "--set", "model.input_shape=[1, 2"],
        "--set model.input_shape=[1, 2",
        "cannot parse",
    ),
    case(
        "set-through-a-number",
        ["train", "--set", "seed.x=1"],
        "--set seed.x=1",
        "seed",
    ),
    case(
        "set-list-index",
        ["train", "--set", "model.input_shape.5=1"],
        "--set model.input_shape.5=1",
        "model.input_shape",
    ),
    case("method-typo", ["train", "--method", "xaviar"], "init.method", "xavier"),
    case("backend-typo", ["train", "--backend", "jax"], "init.backend", "'scratch' or 'torch'"),
    case("activation-typo", ["train", "--activation", "Relu"], "model.activation", ACTIVATIONS),
    case("steps-negative", ["train", "--steps", "-1"], "train.steps", "greater than or equal"),
    case("layer-conv4d", ["train", "--layer", "conv4d"], "--layer", "dense, conv2d, conv3d"),
    case(
        "config-twice",
        ["train", "{tmp}/a.yaml", "--config", "{tmp}/b.yaml"],
        "--config",
        "not both",
        files={"a.yaml": "seed: 1\n", "b.yaml": "seed: 2\n"},
    ),
    case(
        "compare-alias-repeated",
        ["compare", "--methods", "he", "kaiming"],
        "he_normal more than once",
    ),
    case("compare-repeated", ["compare", "--methods", "he", "he"], "he_normal more than once"),
    case("compare-unknown-method", ["compare", "--methods", "he", "xavire"], "'xavire'", "xavier"),
    case(
        "compare-unknown-method-names-the-option",
        ["compare", "--methods", "he", "xavire"],
        "--methods",
    ),
    case(
        "compare-param-malformed",
        ["compare", "--methods", "he", "--param", "he.mode"],
        "--param",
        "METHOD.KEY=VALUE",
    ),
    case(
        "compare-param-no-key",
        ["compare", "--methods", "he", "--param", "he=3"],
        "--param",
        "METHOD.KEY=VALUE",
    ),
    case(
        "compare-param-other-method",
        ["compare", "--methods", "he", "--param", "xavier.gain=2"],
        "--param xavier.gain=2",
        "xavier_uniform is not one of --methods",
    ),
    case(
        "compare-param-not-taken",
        ["compare", "--methods", "he", "--param", "he.std=2"],
        "he_normal does not take std",
        "it takes mode, nonlinearity, a, gain",
    ),
    case(
        "compare-param-not-taken-names-the-option",
        ["compare", "--methods", "he", "--param", "he.std=2"],
        "--param he.std=2",
    ),
    case(
        "compare-param-bad-choice",
        ["compare", "--methods", "he", "--param", "he.mode=sideways"],
        "mode",
        "fan_in, fan_out",
    ),
    case(
        "compare-param-unparsable",
        ["compare", "--methods", "normal", "--param", "normal.std=[1"],
        "[1",
        "cannot parse",
    ),
    case(
        "compare-param-unparsable-names-the-option",
        ["compare", "--methods", "normal", "--param", "normal.std=[1"],
        "--param normal.std=[1",
    ),
    case(
        "compare-bad-config",
        ["compare", "--methods", "he", "--config", "{tmp}/bad.yaml"],
        "bad.yaml",
        "duplicate key 'seed'",
        files={"bad.yaml": "seed: 1\nseed: 2\n"},
    ),
    case("stats-bad-set", ["stats", "--set", "model.depth=abc"], "model.depth", "valid integer"),
    yaml_case("stats-model-list", "model: [1, 2]\n", "model: expected a mapping", command="stats"),
    case("stats-layer-typo", ["stats", "--layer", "conv4d"], "--layer", "dense, conv2d, conv3d"),
    case(
        "stats-npz-missing",
        ["stats", "--depth", "2", "--set", "data.name=npz", "--set", "data.path={tmp}/gone.npz"],
        "data.path",
        "gone.npz",
    ),
    case(
        "usage-not-an-integer",
        ["train", "--depth", "abc"],
        "--depth",
    ),
    case(
        "usage-unknown-option",
        ["train", "--depht", "3"],
        "--depht",
        "--depth",
    ),
    case(
        "usage-unknown-command",
        ["trian"],
        "trian",
        "train",
    ),
    case(
        "usage-two-configs",
        ["train", "{tmp}/a.yaml", "{tmp}/b.yaml"],
        "b.yaml",
        files={"a.yaml": "seed: 1\n", "b.yaml": "seed: 2\n"},
    ),
    case(
        "usage-methods-without-value",
        ["compare", "--methods"],
        "--methods",
    ),
    # ------------------------------------------------------------------ environment
    case(
        "runs-dir-inside-a-file",
        ["train", *SMALL],
        "runs directory",
        "afile",
        files={"afile": "not a directory\n"},
        env={"WINIT_RUNS_DIR": "{tmp}/afile/runs"},
    ),
    case(
        "runs-dir-is-a-file",
        ["train", *SMALL],
        "runs directory",
        "afile",
        files={"afile": "not a directory\n"},
        env={"WINIT_RUNS_DIR": "{tmp}/afile"},
    ),
    case(
        "runs-dir-is-a-file-says-so",
        ["train", *SMALL],
        "afile",
        "not a directory",
        files={"afile": "not a directory\n"},
        env={"WINIT_RUNS_DIR": "{tmp}/afile"},
    ),
    case(
        "runs-dir-option-inside-a-file",
        ["train", *SMALL, "--runs-dir", "{tmp}/afile/runs"],
        "runs directory",
        "afile",
        files={"afile": "not a directory\n"},
    ),
    case(
        "compare-out-not-empty",
        ["compare", "--methods", "he", *SMALL, "--out", "{tmp}/taken"],
        "--out",
        "taken",
        "not empty",
        files={"taken": DIR, "taken/keep.txt": "mine\n"},
    ),
    case(
        "stats-out-not-empty",
        ["stats", "--depth", "2", "--width", "8", "--out", "{tmp}/taken"],
        "--out",
        "taken",
        "not empty",
        files={"taken": DIR, "taken/keep.txt": "mine\n"},
    ),
    case(
        "stats-out-inside-a-file",
        ["stats", "--depth", "2", "--width", "8", "--out", "{tmp}/afile/out"],
        "afile",
        files={"afile": "not a directory\n"},
    ),
    case(
        "stats-out-inside-a-file-names-the-option",
        ["stats", "--depth", "2", "--width", "8", "--out", "{tmp}/afile/out"],
        "--out",
        "afile",
        "not a directory",
        files={"afile": "not a directory\n"},
    ),
    case(
        "cuda-without-gpu",
        ["train", *SMALL, "--set", "device=cuda"],
        "device",
        "cuda",
        "cpu or auto",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present"),
    ),
    case(
        "identity-on-a-layer-that-is-not-square",
        ["train", "--method", "identity", "--steps", "2"],
        "init.method",
        "identity cannot apply to layer 'dense1'",
        "2 inputs to 64 outputs",
    ),
    case(
        "compare-identity-on-a-layer-that-is-not-square",
        ["compare", "--methods", "he", "identity", "--steps", "2"],
        "identity cannot apply to layer 'dense1'",
    ),
    case(
        "sparse-on-a-conv-layer",
        ["train", "--layer", "conv2d", "--method", "sparse", "--steps", "2"],
        "init.method",
        "sparse applies to Dense layers only",
        "conv2d1",
    ),
    # ------------------------------------------------------------------ sweep grids
    case("sweep-without-grid", ["sweep"], "needs a grid", "--grid KEY=V1,V2"),
    case("sweep-grid-without-values", ["sweep", "--grid", "model.depth"], "--grid needs KEY="),
    case("sweep-grid-empty-value", ["sweep", "--grid", "model.depth=5,,10"], "empty value"),
    case(
        "sweep-grid-unknown-section",
        ["sweep", "--grid", "modle.depth=1,2"],
        "--grid modle.depth=1,2",
        "unknown field modle",
    ),
    case(
        "sweep-grid-unknown-field",
        ["sweep", "--grid", "model.dept=1,2"],
        "model.dept",
        "did you mean model.depth?",
    ),
    case(
        "sweep-grid-bad-value",
        ["sweep", "--grid", "model.depth=5,0"],
        "grid point model.depth=0",
        "model.depth:",
        "greater than or equal to 1",
    ),
    case(
        "sweep-grid-bad-method",
        ["sweep", "--grid", "init.method=he,hee"],
        "grid point init.method=hee",
        "init.method",
    ),
    case("sweep-grid-value-twice", ["sweep", "--grid", "model.depth=5,5"], "5 is listed twice"),
    case(
        "sweep-grid-alias-twice",
        ["sweep", "--grid", "init.method=he,kaiming_normal"],
        "init.method=he",
        "init.method=kaiming_normal",
        "same experiment",
    ),
    case("sweep-grid-over-name", ["sweep", "--grid", "name=a,b"], "name", "not an axis"),
    case(
        "sweep-grid-impossible-shape",
        ["sweep", "--layer", "conv2d", "--grid", "model.input_shape=[[1,16,16],[1,2,2]]"],
        "grid point model.input_shape=[1, 2, 2]",
    ),
    yaml_case(
        "sweep-yaml-grid-not-mapping",
        "grid: [1, 2]\n",
        "grid:",
        "mapping of config fields",
        command="sweep",
    ),
    yaml_case(
        "sweep-yaml-grid-not-list",
        "grid:\n  model.depth: 5\n",
        "grid.model.depth",
        "list of values",
        command="sweep",
    ),
    yaml_case(
        "sweep-yaml-grid-empty-list",
        "grid:\n  model:\n    depth: []\n",
        "grid.model.depth",
        "empty",
        command="sweep",
    ),
    yaml_case(
        "sweep-yaml-seeds-zero",
        "seeds: 0\ngrid:\n  model.depth: [2]\n",
        "seeds",
        "from 1 to",
        command="sweep",
    ),
    yaml_case(
        "sweep-yaml-config-error-outside-grid",
        "model:\n  depht: 3\ngrid:\n  model.width: [4, 8]\n",
        "unknown field model.depht",
        command="sweep",
    ),
    yaml_case(
        "sweep-file-given-to-train",
        "grid:\n  model.depth: [2, 3]\n",
        "unknown field grid",
        "run the file with winit sweep",
    ),
    case(
        "sweep-without-training",
        ["sweep", "--grid", "model.depth=2,3", "--steps", "0"],
        "train.steps",
        "at least 1 step",
    ),
    case(
        "sweep-grid-without-training",
        ["sweep", "--grid", "train.steps=0,10"],
        "grid point train.steps=0",
        "at least 1 step",
    ),
    case(
        "sweep-grid-method-unfit-for-a-layer",
        ["sweep", "--layer", "conv2d", "--grid", "init.method=he,sparse"],
        "grid point init.method=sparse",
        "sparse applies to Dense layers only",
    ),
    case(
        "sweep-grid-axis-twice",
        ["sweep", "--grid", "model.depth=2,3", "--grid", "model.depth=4,5"],
        "--grid model.depth is given twice",
    ),
    yaml_case(
        "sweep-yaml-axis-twice",
        "grid:\n  model:\n    depth: [2, 3]\n  model.depth: [4, 5]\n",
        "grid.model.depth is given twice",
        command="sweep",
    ),
    case(
        "sweep-overlapping-axes",
        [
            "sweep",
            "--method",
            "normal",
            "--grid",
            "init.params=[{std: 0.2}]",
            "--grid",
            "init.params.std=0.1,0.3",
        ],
        "init.params and init.params.std",
    ),
    case(
        "sweep-grid-value-unparsable",
        ["sweep", "--grid", "init.params={std: 0.1, mean: 0}"],
        "--grid init.params={std: 0.1, mean: 0}",
        "values with commas go in a list",
    ),
    case(
        "sweep-seeds-out-of-range",
        ["sweep", "--grid", "model.depth=2,3", "--seeds", "10001"],
        "--seeds",
        "from 1 to 10000",
    ),
    case(
        "sweep-dry-run-checks-the-device",
        ["sweep", "--grid", "model.depth=2,3", "--set", "device=cuda", "--dry-run"],
        "cuda",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present"),
    ),
    case(
        "sweep-seeds-and-seed-axis",
        ["sweep", "--grid", "seed=1,2", "--seeds", "2"],
        "--seeds",
        "already has a seed axis",
    ),
    case(
        "sweep-too-many-trials",
        ["sweep", "--seeds", "10000", "--grid", "model.depth=1,2,3,4,5,6,7,8,9,10,11"],
        "110,000 trials",
        "100,000",
        max_seconds=5,
    ),
    case(
        "sweep-unknown-backend",
        ["sweep", "--grid", "model.depth=2,3", "--backend", "dask"],
        "--backend must be local or ray",
    ),
    case(
        "sweep-address-without-ray-backend",
        ["sweep", "--grid", "model.depth=2,3", "--address", "127.0.0.1:1"],
        "--address",
        "--backend ray",
    ),
    case(
        "sweep-ray-cluster-unreachable",
        ["sweep", "--grid", "model.depth=2,3", "--backend", "ray", "--address", "127.0.0.1:1"],
        "--address 127.0.0.1:1",
        "no Ray cluster answers",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("ray") is None, reason="Ray is not installed"
        ),
    ),
    case(
        "sweep-ray-cuda-on-a-cluster-without-gpus",
        ["sweep", "--grid", "model.depth=2,3", "--set", "device=cuda", "--backend", "ray"],
        "device: cuda",
        "the Ray cluster has no GPUs",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("ray") is None or torch.cuda.is_available(),
            reason="needs Ray, and no GPU here",
        ),
    ),
    case(
        "sweep-missing-npz-is-refused-before-any-trial",
        [
            "sweep",
            "--grid",
            "model.depth=2,3",
            "--set",
            "data.name=npz",
            "--set",
            "data.path={tmp}/nope.npz",
        ],
        "data.path",
        "nope.npz",
    ),
    case(
        "sweep-cuda-without-gpu",
        ["sweep", "--grid", "model.depth=2,3", "--set", "device=cuda"],
        "cuda",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present"),
    ),
]


def _fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp))


def _write(path: Path, content: Any) -> None:
    if content is DIR:
        path.mkdir()
    elif isinstance(content, dict):
        with open(path, "wb") as f:  # a file object: np.savez would add .npz to the name
            np.savez(f, **content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its content (None for directories)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, also the parent of $WINIT_RUNS_DIR (not created)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # a run written to ./runs would show up here too
    monkeypatch.setenv("WINIT_RUNS_DIR", str(work / "runs"))
    return work


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_is_one_clear_error_and_writes_nothing(
    bad: Case, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, content in bad.files.items():
        _write(workdir / name, content)
    for key, value in bad.env.items():
        monkeypatch.setenv(key, _fill(value, workdir))
    before = _tree(workdir)

    start = time.perf_counter()
    result = runner.invoke(app, [_fill(arg, workdir) for arg in bad.args], env={"COLUMNS": "80"})
    elapsed = time.perf_counter() - start

    output = result.output
    assert "Traceback" not in output, output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    assert result.exit_code == 2, output
    lines = output.splitlines()
    assert 1 <= len(lines) <= 2, output
    assert lines[0].startswith("Error: "), output
    for expected in bad.expect:
        assert _fill(expected, workdir) in lines[0], output
    assert _tree(workdir) == before, "the command wrote something"
    assert not (workdir / "runs").exists()
    if bad.max_seconds is not None:
        assert elapsed < bad.max_seconds, f"took {elapsed:.1f} s"


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 45
    ids = [param.id for param in CASES]
    assert len(set(ids)) == len(ids)


EXPLODE = ("--method", "normal", "--set")


@pytest.mark.parametrize(
    ("args", "exit_code", "expected", "status"),
    [
        pytest.param(
            ["stats", *EXPLODE, "init.params.std=1e30", "--depth", "3", "--width", "8"],
            0,
            "explode",
            None,
            id="stats-explodes",
        ),
        pytest.param(
            ["stats", *EXPLODE, "init.params.std=10", "--depth", "100", "--width", "32"],
            0,
            "explode",
            None,
            id="stats-explodes-past-float-range",
        ),
        pytest.param(
            ["stats", *EXPLODE, "init.params.std=1e30", "--layer", "conv2d", "--depth", "2"],
            0,
            "explode",
            None,
            id="stats-conv-explodes-past-float-range",
        ),
        pytest.param(
            ["train", *EXPLODE, "init.params.std=50", "--depth", "20", "--width", "16"],
            1,
            "training diverged at step 0",
            "diverged",
            id="train-diverges",
        ),
        pytest.param(
            ["train", *EXPLODE, "init.params.std=10", "--depth", "100", "--width", "32"],
            1,
            "training diverged at step 0",
            "diverged",
            id="train-diverges-past-float-range",
        ),
        pytest.param(
            ["compare", "--methods", "normal", "he", "--param", "normal.std=10"]
            + ["--depth", "100", "--width", "32"],
            0,
            "diverged",
            "completed",
            id="compare-one-diverges-past-float-range",
        ),
    ],
)
def test_an_init_that_explodes_is_an_answer_not_a_crash(
    args: list[str], exit_code: int, expected: str, status: str | None, workdir: Path
) -> None:
    """A network blown up on purpose is a result: stats names it, a run is marked diverged."""
    steps = ["--steps", "3"] if args[0] != "stats" else []
    result = runner.invoke(app, [*args, *steps], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == exit_code, result.output
    assert expected in result.output, result.output
    if exit_code:
        assert result.output.splitlines()[-1].startswith("Error: "), result.output
    runs = sorted((workdir / "runs").glob("*")) if status else []
    if status:
        (run,) = runs
        assert json.loads((run / "meta.json").read_text())["status"] == status
    else:
        assert not (workdir / "runs").exists()
