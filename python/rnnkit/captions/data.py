"""Where the images and captions of a run come from: the built-in ``shapes`` task or files of
precomputed features and captions.

A *data spec* is a JSON-able dict saved in the checkpoint, from which `load_data` rebuilds the same
data later (so ``eval-captions DIR`` finds its test split again)::

    {"task": "shapes", "image_size": 48, "grid": 3, "min_objects": 1, "max_objects": 3,
     "val": 500, "test": 1000, "seed": 0}
    {"features": abs path, "features_sha256": ..., "captions": abs path, "captions_sha256": ...,
     "min_count": 1, "seed": 0}

Every source gives regions (B, P, D) float32 per image (P regions, D raw numbers each: a shapes image's
region pixels, or a file's feature vectors, (N, F) read as P = 1), held-out splits with all references
of each image (the first one is the canonical caption), and training batches drawn by step.

Files: ``--features FILE.npz`` holds one array (or one named ``features``) of shape (N, F) or (N, P, F),
e.g. the CS231n COCO features; ``--captions FILE.tsv`` has lines ``image_index<TAB>caption`` (several per
image allowed, in any order; the first line of an image is its canonical caption), lowercased and split
into word tokens; words seen fewer than ``min_count`` times in the training captions become <unk>.
Images with captions are split 90/5/5 into training, validation and test by ``seed``.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..seq2seq.pairs import file_digest, tokenize
from ..seq2seq.vocab import TokenVocab
from . import shapes

__all__ = [
    "CaptionsError",
    "EvalSet",
    "shapes_spec",
    "files_spec",
    "load_data",
    "read_features",
    "read_captions",
    "CaptionData",
    "CANONICAL_SHARE",
]

#: The probability that a shapes training example carries its canonical caption (the rest share the other
#: phrasings): above one half, so the most likely caption of a scene is the canonical one at every word.
CANONICAL_SHARE = 2 / 3


class CaptionsError(ValueError):
    """Unusable features or captions: missing, unreadable, of the wrong shape, or malformed."""


class EvalSet:
    """A held-out split: ``regions`` (N, P, D) float32, ``references[i]`` the token lists of image i's
    captions (canonical first), ``images`` (N, S, S, 3) for the shapes task (None for files), and
    ``ids`` the images' indices in their source (the features file's rows; for shapes 0..N-1)."""

    def __init__(
        self, regions: np.ndarray, references: List[List[List[str]]], images: Optional[np.ndarray], ids: Sequence[int]
    ):
        self.regions, self.references, self.images, self.ids = regions, references, images, list(ids)

    def __len__(self) -> int:
        return len(self.references)


def shapes_spec(
    image_size: int = 48,
    grid: int = 3,
    min_objects: int = 1,
    max_objects: int = 3,
    val: int = 500,
    test: int = 1000,
    seed: int = 0,
) -> Dict[str, Any]:
    """The data spec of the shapes task (checked now, so errors come early)."""
    shapes.check_options(image_size, grid, min_objects, max_objects)
    for name, n in (("--val-size", val), ("--test-size", test)):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return {
        "task": "shapes",
        "image_size": image_size,
        "grid": grid,
        "min_objects": min_objects,
        "max_objects": max_objects,
        "val": val,
        "test": test,
        "seed": int(seed),
    }


def files_spec(features: str, captions: str, min_count: int = 1, seed: int = 0) -> Dict[str, Any]:
    """The data spec of a features file and a captions file (their digests pin the content)."""
    for flag, path in (("--features", features), ("--captions", captions)):
        if not os.path.isfile(path):
            raise CaptionsError(f"{flag} file not found: {path}")
    if not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"--min-count must be a positive integer, got {min_count!r}")
    return {
        "features": os.path.abspath(features),
        "features_sha256": file_digest(features),
        "captions": os.path.abspath(captions),
        "captions_sha256": file_digest(captions),
        "min_count": min_count,
        "seed": int(seed),
    }


def read_features(path: str) -> np.ndarray:
    """The (N, P, F) float32 features of a .npz (or .npy) file; (N, F) comes back as (N, 1, F)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CaptionsError(f"features file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise CaptionsError(f"{path} is not a NumPy .npz/.npy file ({e})") from None
    if isinstance(loaded, np.ndarray):
        x = loaded
    else:
        with loaded:
            names = loaded.files
            if "features" in names:
                x = loaded["features"]
            elif len(names) == 1:
                x = loaded[names[0]]
            else:
                raise CaptionsError(f"{path} holds arrays {sorted(names)}: name the features array 'features'")
    if x.dtype.kind not in "fiu" or x.ndim not in (2, 3) or 0 in x.shape:
        raise CaptionsError(
            f"features in {path} must be a non-empty numeric array of shape (N, F) or (N, P, F), "
            f"got dtype {x.dtype} shape {x.shape}"
        )
    x = np.ascontiguousarray(x, np.float32)
    if not np.isfinite(x).all():
        raise CaptionsError(f"features in {path} hold NaN or infinite values")
    return x[:, None, :] if x.ndim == 2 else x


def read_captions(path: str, n_images: int) -> Dict[int, List[List[str]]]:
    """image index -> its captions as lowercase word tokens, in file order. CaptionsError naming the line
    of a malformed one (no tab, an index that is not an integer or not an image of the features, an
    empty caption), or for a file without captions."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise CaptionsError(f"captions file not found: {path}") from None
    except UnicodeDecodeError as e:
        raise CaptionsError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    out: Dict[int, List[List[str]]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        index, tab, text = line.partition("\t")
        if not tab:
            raise CaptionsError(f"{path}:{number}: expected image_index<TAB>caption, found no tab")
        try:
            i = int(index)
        except ValueError:
            raise CaptionsError(f"{path}:{number}: image index {index.strip()!r} is not an integer") from None
        if not 0 <= i < n_images:
            raise CaptionsError(
                f"{path}:{number}: image index {i} is not in the features (they hold {n_images} "
                f"images, 0..{n_images - 1})"
            )
        tokens = tokenize(text.lower(), "word")
        if not tokens:
            raise CaptionsError(f"{path}:{number}: empty caption")
        out.setdefault(i, []).append(tokens)
    if not out:
        raise CaptionsError(f"{path} holds no captions (it is empty or blank)")
    return out


class CaptionData:
    """The data of a spec: ``vocab``, ``val`` and ``test`` (`EvalSet`), the region layout ``P``, ``D``, and
    ``train_batch(seed, step, size)`` -> (regions (B, P, D), token lists), deterministic in its arguments.
    ``grid`` is regions per side for the shapes task (None for files)."""

    vocab: TokenVocab
    val: EvalSet
    test: EvalSet
    P: int
    D: int
    grid: Optional[int] = None

    def train_batch(self, seed: int, step: int, size: int) -> Tuple[np.ndarray, List[List[str]]]:
        raise NotImplementedError


class ShapesData(CaptionData):
    """The shapes task: held-out scenes fixed by the spec's seed; training scenes drawn afresh for every
    batch (from (seed, step)), never one of the held-out ones."""

    def __init__(self, spec: Dict[str, Any]):
        self.spec = spec
        self.size, self.grid = spec["image_size"], spec["grid"]
        held = shapes.held_out_scenes(
            spec["seed"], spec["test"] + spec["val"], spec["min_objects"], spec["max_objects"]
        )
        self._held = set(held)
        self.test = self._eval_set(held[: spec["test"]])
        self.val = self._eval_set(held[spec["test"] :])
        self.vocab = TokenVocab(shapes.WORDS)
        self.P = self.grid * self.grid
        self.D = shapes.region_side(self.size, self.grid) ** 2 * 3

    def _eval_set(self, scenes: Sequence[shapes.Scene]) -> EvalSet:
        images = np.stack([shapes.render(s, self.size) for s in scenes])
        refs = [[c.split() for c in shapes.captions(s)] for s in scenes]
        return EvalSet(shapes.regions(images, self.grid), refs, images, range(len(scenes)))

    def train_batch(self, seed, step, size):
        rng = np.random.default_rng([seed, 16, 2, step])
        scenes: List[shapes.Scene] = []
        while len(scenes) < size:
            s = shapes.random_scene(rng, self.spec["min_objects"], self.spec["max_objects"])
            if s not in self._held:
                scenes.append(s)
        caps = []
        for s in scenes:
            options = shapes.captions(s)
            pick = 0 if len(options) == 1 or rng.random() < CANONICAL_SHARE else int(rng.integers(1, len(options)))
            caps.append(options[pick].split())
        images = np.stack([shapes.render(s, self.size) for s in scenes])
        return shapes.regions(images, self.grid), caps


class FileData(CaptionData):
    """Features and captions files: images split 90/5/5 by the spec's seed; training examples are
    (image, caption) pairs of the training images, each epoch in a fresh order from (seed, epoch)."""

    def __init__(self, spec: Dict[str, Any]):
        for key in ("features", "captions"):
            path = spec[key]
            if not os.path.isfile(path):
                raise CaptionsError(f"the {key} file this model was trained on is gone: {path}")
            if file_digest(path) != spec[f"{key}_sha256"]:
                raise CaptionsError(f"{path} has changed since training, so its test split is lost")
        feats = read_features(spec["features"])
        caps = read_captions(spec["captions"], feats.shape[0])
        images = sorted(caps)
        if len(images) < 3:
            raise CaptionsError(f"need captions for at least 3 images (training, validation, test), got {len(images)}")
        order = np.random.default_rng([spec["seed"], 16, 3]).permutation(len(images))
        n_hold = max(1, int(round(0.05 * len(images))))
        test_ids = sorted(images[i] for i in order[:n_hold])
        val_ids = sorted(images[i] for i in order[n_hold : 2 * n_hold])
        train_ids = sorted(images[i] for i in order[2 * n_hold :])
        self.pairs = [(i, c) for i in train_ids for c in caps[i]]
        counts = Counter(t for _, c in self.pairs for t in c)
        self.vocab = TokenVocab(t for t, n in counts.items() if n >= spec["min_count"])
        self.feats = feats
        self.P, self.D = feats.shape[1], feats.shape[2]
        self.val = EvalSet(feats[val_ids], [caps[i] for i in val_ids], None, val_ids)
        self.test = EvalSet(feats[test_ids], [caps[i] for i in test_ids], None, test_ids)
        self._epoch, self._order = -1, None

    def train_batch(self, seed, step, size):
        size = min(size, len(self.pairs))
        epoch, k = divmod(step, len(self.pairs) // size)
        if epoch != self._epoch:
            self._order = np.random.default_rng([seed, 1, epoch]).permutation(len(self.pairs))
            self._epoch = epoch
        chosen = [self.pairs[j] for j in self._order[k * size : (k + 1) * size]]
        return self.feats[[i for i, _ in chosen]], [c for _, c in chosen]


def load_data(spec: Dict[str, Any]) -> CaptionData:
    """The data a spec describes; CaptionsError if its files are gone, changed or malformed."""
    if spec.get("task") == "shapes":
        return ShapesData(spec)
    if "features" in spec:
        return FileData(spec)
    raise ValueError("give --task shapes or --features FILE --captions FILE")
