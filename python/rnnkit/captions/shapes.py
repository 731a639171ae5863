"""The built-in captioning task ``shapes``: scenes of one to three coloured shapes on a 3 x 3 grid, their
pictures, and their captions from a small grammar. Everything is generated from a seed, no files.

A scene is a tuple of `Obj` (row, col, colour, shape) in reading order (top to bottom, left to right),
at most one object per grid cell. Its picture is an RGB image (S, S, 3) in [0, 1]: each object drawn
at its cell's centre (jittered by up to a tenth of a cell, its brightness varied a little), on a dark
background with a little noise; the jitter and noise come from the scene's own seed.

Captions (word tokens, separated by single spaces). Objects of the same colour and shape form a group
("two red circles"); groups are ordered by their first object in reading order, and each pair of
consecutive groups is joined by the relation of those first objects: "above" when the earlier one is in
a higher row, else "left of" (same row, further left). One object alone gets its position::

    a red circle at the top left
    a red circle left of a blue square above a green triangle
    two green triangles above a yellow circle

That is the canonical caption (exact match scores against it). The other phrasings of the same scene,
used in training and as BLEU references: "there is ..." / "there are ..." in front; the chain read
backwards with the inverse relations ("a green triangle below a blue square right of a red circle");
"to the left of" for "left of".
"""

from __future__ import annotations

from math import comb
from typing import Dict, List, NamedTuple, Sequence, Tuple

import numpy as np

__all__ = [
    "Obj",
    "Scene",
    "COLOURS",
    "SHAPES",
    "GRID",
    "POSITIONS",
    "WORDS",
    "random_scene",
    "held_out_scenes",
    "scene_count",
    "captions",
    "canonical",
    "render",
    "regions",
    "region_side",
    "check_options",
]

GRID = 3  # objects sit on a GRID x GRID lattice of cells
COLOURS: Dict[str, Tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.8, 0.2),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.9, 0.1),
    "white": (0.95, 0.95, 0.95),
}
SHAPES = ("circle", "square", "triangle")
POSITIONS = (("top left", "top", "top right"), ("left", "center", "right"), ("bottom left", "bottom", "bottom right"))
_COUNTS = {1: "a", 2: "two", 3: "three"}
_INVERSE = {"above": "below", "left of": "right of"}


class Obj(NamedTuple):
    row: int
    col: int
    colour: str
    shape: str


Scene = Tuple[Obj, ...]


def check_options(image_size: int, grid: int, min_objects: int, max_objects: int) -> None:
    """ValueError naming the first bad option of the task."""
    if not isinstance(image_size, int) or image_size < 12:
        raise ValueError(f"--image-size must be an integer >= 12, got {image_size!r}")
    if not isinstance(grid, int) or not 1 <= grid <= image_size // 4:
        raise ValueError(
            f"--grid must be a positive integer up to a quarter of --image-size ({image_size}), got {grid!r}"
        )
    if not (isinstance(min_objects, int) and isinstance(max_objects, int) and 1 <= min_objects <= max_objects <= GRID):
        raise ValueError(
            f"objects per scene must satisfy 1 <= --min-objects <= --max-objects <= {GRID}, got "
            f"{min_objects} and {max_objects}"
        )


def scene_count(n: int) -> int:
    """How many distinct scenes hold exactly n objects."""
    return comb(GRID * GRID, n) * (len(COLOURS) * len(SHAPES)) ** n


def random_scene(rng: np.random.Generator, min_objects: int, max_objects: int) -> Scene:
    """A scene of min_objects..max_objects (uniform) objects in distinct cells, colours and shapes uniform."""
    n = int(rng.integers(min_objects, max_objects + 1))
    return _scene_of(rng, n)


def _scene_of(rng: np.random.Generator, n: int) -> Scene:
    cells = sorted(rng.choice(GRID * GRID, size=n, replace=False).tolist())
    colours, shapes = list(COLOURS), SHAPES
    return tuple(
        Obj(c // GRID, c % GRID, colours[int(rng.integers(len(colours)))], shapes[int(rng.integers(len(shapes)))])
        for c in cells
    )


def held_out_scenes(seed: int, count: int, min_objects: int, max_objects: int, share: float = 0.1) -> List[Scene]:
    """``count`` distinct scenes for validation and test, deterministic in the arguments. Of the scenes
    with n objects at most ``share`` are held out (at least one), so that training still sees most of
    every kind: the object count is drawn uniformly among the counts whose quota is not used up.
    ValueError when the quotas cannot give ``count`` scenes."""
    caps = {n: max(1, int(share * scene_count(n))) for n in range(min_objects, max_objects + 1)}
    if sum(caps.values()) < count:
        raise ValueError(
            f"only {sum(caps.values())} scenes with {min_objects}..{max_objects} objects can be held "
            f"out (a tenth of each count), not {count}: ask for fewer with --val-size/--test-size"
        )
    rng = np.random.default_rng([seed, 16, 1])
    seen: Dict[Scene, None] = {}
    taken = dict.fromkeys(caps, 0)
    while len(seen) < count:
        open_counts = [n for n in caps if taken[n] < caps[n]]
        n = open_counts[int(rng.integers(len(open_counts)))]
        s = _scene_of(rng, n)
        if s not in seen:
            seen[s] = None
            taken[n] += 1
    return list(seen)


def _groups(scene: Scene) -> List[List[Obj]]:
    groups: Dict[Tuple[str, str], List[Obj]] = {}
    for o in scene:  # reading order, so each group's first object comes first and groups keep that order
        groups.setdefault((o.colour, o.shape), []).append(o)
    return list(groups.values())


def _noun(group: Sequence[Obj]) -> str:
    o = group[0]
    return f"{_COUNTS[len(group)]} {o.colour} {o.shape}{'s' if len(group) > 1 else ''}"


def _relation(a: Obj, b: Obj) -> str:
    return "above" if a.row < b.row else "left of"


def captions(scene: Scene) -> List[str]:
    """Every phrasing of ``scene``, the canonical one first, no duplicates."""
    groups = _groups(scene)
    nouns = [_noun(g) for g in groups]
    if len(groups) == 1:
        if len(groups[0]) == 1:
            o = groups[0][0]
            where = f"at the {POSITIONS[o.row][o.col]}"
            base = f"{nouns[0]} {where}"
            out = [base, f"there is {base}", f"{where} there is {nouns[0]}"]
        else:
            out = [nouns[0], f"there are {nouns[0]}"]
    else:
        rels = [_relation(a[0], b[0]) for a, b in zip(groups, groups[1:])]
        forward = nouns[0] + "".join(f" {r} {n}" for r, n in zip(rels, nouns[1:]))
        backward = nouns[-1] + "".join(f" {_INVERSE[r]} {n}" for r, n in zip(rels[::-1], nouns[-2::-1]))
        there = "there is" if len(groups[0]) == 1 else "there are"
        out = [forward, f"{there} {forward}", backward, forward.replace("left of", "to the left of")]
    return list(dict.fromkeys(out))


def canonical(scene: Scene) -> str:
    """The caption exact match scores against."""
    return captions(scene)[0]


def _words() -> List[str]:
    words = {"a", "two", "three", "at", "the", "there", "is", "are", "to", "above", "below", "left", "right", "of"}
    words |= {w for row in POSITIONS for p in row for w in p.split()}
    words |= set(COLOURS) | set(SHAPES) | {s + "s" for s in SHAPES}
    return sorted(words)


#: Every word the grammar uses (the task's vocabulary).
WORDS: List[str] = _words()


def _scene_seed(scene: Scene) -> List[int]:
    colours, shapes = list(COLOURS), list(SHAPES)
    return [17] + [v for o in scene for v in (o.row, o.col, colours.index(o.colour), shapes.index(o.shape))]


def render(scene: Scene, size: int = 48) -> np.ndarray:
    """The picture of ``scene``: float32 (size, size, 3) in [0, 1], deterministic in (scene, size)."""
    rng = np.random.default_rng(_scene_seed(scene) + [size])
    img = rng.random((size, size, 3), dtype=np.float32) * np.float32(0.08)
    cell = size / GRID
    r = 0.34 * cell
    for o in scene:
        cy, cx = (np.array([o.row, o.col]) + 0.5) * cell + rng.uniform(-0.1, 0.1, 2) * cell
        y0, y1 = max(0, int(cy - r)), min(size, int(cy + r) + 2)  # the object's bounding box
        x0, x1 = max(0, int(cx - r)), min(size, int(cx + r) + 2)
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] + np.float32(0.5 - cy)  # broadcast over the box
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] + np.float32(0.5 - cx)
        if o.shape == "circle":
            mask = dx * dx + dy * dy <= r * r
        elif o.shape == "square":
            mask = (np.abs(dx) <= 0.8 * r) & (np.abs(dy) <= 0.8 * r)
        else:  # triangle, apex up: half-width grows from 0 at the top to r at the base
            mask = (dy >= -r) & (dy <= 0.8 * r) & (np.abs(dx) <= (dy + r) / 1.8)
        colour = np.array(COLOURS[o.colour], np.float32) * rng.uniform(0.85, 1.0)
        img[y0:y1, x0:x1][mask] = colour
    return img


def region_side(size: int, grid: int) -> int:
    """The side k = ceil(size / grid) of a region in pixels."""
    return -(-size // grid)


def regions(images: np.ndarray, grid: int) -> np.ndarray:
    """Images (B, S, S, 3) cut into grid x grid square regions of k = ceil(S / grid) pixels in reading order:
    (B, grid*grid, k*k*3), each region's pixels row by row. When grid does not divide S, the image is padded
    with zeros (black) at the bottom and right to grid*k pixels."""
    B, S = images.shape[0], images.shape[1]
    k = region_side(S, grid)
    if k * grid != S:
        images = np.pad(images, ((0, 0), (0, k * grid - S), (0, k * grid - S), (0, 0)))
    x = images.reshape(B, grid, k, grid, k, 3).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(x.reshape(B, grid * grid, k * k * 3))
