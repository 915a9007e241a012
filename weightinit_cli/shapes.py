"""Images and volumes of simple shapes, generated in code (datasets shapes2d, shapes3d).

Each example is one filled shape at a random size and position, the same mask in every
channel at a random per-channel intensity, plus Gaussian pixel noise of std `noise`.
NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import WinitError

SHAPES2D_CLASSES: tuple[str, ...] = (
    "square",
    "disc",
    "triangle",
    "horizontal_bar",
    "vertical_bar",
    "plus",
    "ring",
    "frame",
    "diamond",
    "x_cross",
)

SHAPES3D_CLASSES: tuple[str, ...] = (
    "cube",
    "ball",
    "rod",
    "plate",
    "jack",
    "shell",
    "octahedron",
    "torus",
)


def balanced_labels(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.permutation(np.arange(n, dtype=np.int64) % k)


def require_shape(name: str, shape: tuple[int, ...], ok: bool, want: str) -> None:
    if not ok:
        raise WinitError(f"model.input_shape: {name} needs {want}; got {list(shape)}")


def _check_shape_classes(name: str, classes: tuple[str, ...], k: int) -> None:
    if k > len(classes):
        raise WinitError(
            f"model.num_classes: {name} has {len(classes)} shape classes "
            f"({', '.join(classes)}); got num_classes={k}"
        )


def shapes2d(rng, n, shape, k, noise, seed):
    require_shape(
        "shapes2d", shape, len(shape) == 3 and min(shape[1:]) >= 8, "[C, H, W] with H, W >= 8"
    )
    _check_shape_classes("shapes2d", SHAPES2D_CLASSES, k)
    c, h, w = shape
    y = balanced_labels(rng, n, k)
    r = rng.uniform(0.25, 0.45, n) * (min(h, w) - 1)  # half-extent in pixels
    cy = r + rng.uniform(0, 1, n) * (h - 1 - 2 * r)
    cx = r + rng.uniform(0, 1, n) * (w - 1 - 2 * r)
    # Normalised offsets from the centre, broadcast as (n, H, 1) and (n, 1, W).
    dy = ((np.arange(h, dtype=np.float32)[None, :] - cy[:, None]) / r[:, None])[:, :, None]
    dx = ((np.arange(w, dtype=np.float32)[None, :] - cx[:, None]) / r[:, None])[:, None, :]
    dy, dx = dy.astype(np.float32), dx.astype(np.float32)
    mask = np.zeros((n, h, w), dtype=bool)
    for cls in range(k):
        sel = np.flatnonzero(y == cls)
        if sel.size:
            mask[sel] = _MASKS_2D[SHAPES2D_CLASSES[cls]](dx[sel], dy[sel])
    return _paint(rng, mask, c, noise), y


def shapes3d(rng, n, shape, k, noise, seed):
    require_shape(
        "shapes3d", shape, len(shape) == 4 and min(shape[1:]) >= 6, "[C, D, H, W] with D, H, W >= 6"
    )
    _check_shape_classes("shapes3d", SHAPES3D_CLASSES, k)
    c, dd, h, w = shape
    y = balanced_labels(rng, n, k)
    axis = rng.integers(0, 3, n)  # orientation of rod, plate and torus
    r = rng.uniform(0.25, 0.45, n) * (min(dd, h, w) - 1)
    offsets = []  # normalised offsets from the centre, broadcast as (n, D, 1, 1) etc.
    for i, size in enumerate((dd, h, w)):
        centre = r + rng.uniform(0, 1, n) * (size - 1 - 2 * r)
        o = (np.arange(size, dtype=np.float64)[None, :] - centre[:, None]) / r[:, None]
        view = [n, 1, 1, 1]
        view[1 + i] = size
        offsets.append(o.astype(np.float32).reshape(view))
    mask = np.zeros((n, dd, h, w), dtype=bool)
    for cls in range(k):
        fn = _MASKS_3D[SHAPES3D_CLASSES[cls]]
        for a in range(3):
            sel = np.flatnonzero((y == cls) & (axis == a))
            if sel.size:
                # Roll the coordinates so that `a` plays the role of the shape's own axis.
                o = [offsets[(a + i) % 3][sel] for i in range(3)]
                mask[sel] = fn(*o)
    return _paint(rng, mask, c, noise), y


def _paint(rng: np.random.Generator, mask: np.ndarray, c: int, noise: float) -> np.ndarray:
    """The same mask in every channel at a random per-channel intensity, plus pixel noise."""
    n = mask.shape[0]
    spatial = (1,) * (mask.ndim - 1)
    intensity = rng.uniform(0.5, 1.0, (n, c)).astype(np.float32).reshape(n, c, *spatial)
    x = mask[:, None].astype(np.float32) * intensity
    if noise > 0:
        x += np.float32(noise) * rng.standard_normal(x.shape, dtype=np.float32)
    return x


_BAR = 0.35  # half-thickness of bars and rods, relative to the half-extent


def _box(*o: np.ndarray) -> np.ndarray:
    m = np.abs(o[0]) <= 1
    for v in o[1:]:
        m = m & (np.abs(v) <= 1)
    return m


_MASKS_2D: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "square": lambda x, y: _box(x, y),
    "disc": lambda x, y: x * x + y * y <= 1,
    "triangle": lambda x, y: (np.abs(y) <= 1) & (2 * np.abs(x) <= y + 1),
    "horizontal_bar": lambda x, y: (np.abs(y) <= _BAR) & (np.abs(x) <= 1),
    "vertical_bar": lambda x, y: (np.abs(x) <= _BAR) & (np.abs(y) <= 1),
    "plus": lambda x, y: _box(x, y) & ((np.abs(x) <= _BAR) | (np.abs(y) <= _BAR)),
    "ring": lambda x, y: (x * x + y * y <= 1) & (x * x + y * y >= 0.45**2),
    "frame": lambda x, y: _box(x, y) & (np.maximum(np.abs(x), np.abs(y)) >= 0.55),
    "diamond": lambda x, y: np.abs(x) + np.abs(y) <= 1,
    "x_cross": lambda x, y: _box(x, y) & (np.abs(np.abs(x) - np.abs(y)) <= _BAR * 1.2),
}

# (u, v, w) with u the shape's own axis where it has one.
_MASKS_3D: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "cube": lambda u, v, w: _box(u, v, w),
    "ball": lambda u, v, w: u * u + v * v + w * w <= 1,
    "rod": lambda u, v, w: (np.abs(u) <= 1) & (v * v + w * w <= _BAR**2),
    "plate": lambda u, v, w: (np.abs(u) <= _BAR) & _box(v, w),
    "jack": lambda u, v, w: (
        _box(u, v, w)
        & (
            (np.maximum(np.abs(v), np.abs(w)) <= _BAR)
            | (np.maximum(np.abs(u), np.abs(w)) <= _BAR)
            | (np.maximum(np.abs(u), np.abs(v)) <= _BAR)
        )
    ),
    "shell": lambda u, v, w: (u * u + v * v + w * w <= 1) & (u * u + v * v + w * w >= 0.55**2),
    "octahedron": lambda u, v, w: np.abs(u) + np.abs(v) + np.abs(w) <= 1,
    "torus": lambda u, v, w: (np.sqrt(v * v + w * w) - 0.65) ** 2 + u * u <= _BAR**2,
}
