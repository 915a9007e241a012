"""What each command and each `--layer` changes from the config's field defaults (config.py;
they are train's and compare's). Plain data, read by loading.py."""

from __future__ import annotations

from typing import Any

# What a command changes from the field defaults (which are train's and compare's).
COMMAND_DEFAULTS: dict[str, dict[str, Any]] = {
    # One forward/backward pass: a deep, wide net on isotropic inputs shows what the init does.
    "stats": {
        "model": {"depth": 30, "width": 512, "input_shape": [16]},
        "data": {"name": "gaussian"},
        "train": {"batch_size": 512},
    },
    # mup's own coordinate check: an MLP 64 -> w -> w -> 10 trained by Adam for a few steps
    "coordcheck": {
        "model": {"depth": 2, "input_shape": [64], "num_classes": 10},
        "data": {"name": "gaussian"},
        "init": {"readout": "zero"},  # as mup's own coordinate check test
        "train": {"optimizer": "adam", "lr": 0.01},
    },
    # dynamical isometry (Pennington et al. 2017): a deep tanh stack whose input is as wide
    # as its layers, so that every layer is square and free probability predicts the spectrum;
    # orthogonal weights at σ_w² = 1 (its critical point at q* -> 0)
    "spectrum": {
        "model": {"depth": 32, "width": 256, "input_shape": [256], "activation": "tanh"},
        "init": {"method": "orthogonal"},
        "data": {"name": "gaussian"},
    },
    # learning-rate transfer: a small MLP on a learnable generated task, a short Adam run
    # per (width, lr) trial, so the whole default grid takes well under a minute on 2 cores
    "transfer": {
        "model": {"depth": 2, "input_shape": [16], "num_classes": 4},
        "data": {"name": "teacher", "samples": 1024},
        "train": {"optimizer": "adam", "steps": 60, "batch_size": 128, "log_every": 20},
    },
}


# What `--layer conv2d|conv3d` brings with it, so that the switch alone gives a net that
# fits its input and data (a file or --set can still change any of it).
LAYER_DEFAULTS: dict[str, dict[str, Any]] = {
    "dense": {"model": {"type": "dense"}},
    "conv2d": {
        "model": {"type": "conv2d", "input_shape": [1, 16, 16], "depth": 8, "width": 16},
        "data": {"name": "shapes2d"},
    },
    "conv3d": {
        "model": {"type": "conv3d", "input_shape": [1, 8, 8, 8], "depth": 4, "width": 8},
        "data": {"name": "shapes3d"},
    },
    # the pointer task (data.py) in 8 classes: chance is 1/8, and without attention about 1/4
    "transformer": {
        "model": {"type": "transformer", "input_shape": [16], "depth": 2, "width": 64,
                  "activation": "gelu", "num_classes": 8},
        "data": {"name": "pointer"},
    },
}  # fmt: skip
