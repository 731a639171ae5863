"""The default corpus of train-charlm: the whole standard library's source, validation held out by whole
files drawn with a fixed seed (deterministic, no overlap, the same split every run)."""
import os
import sysconfig

import pytest

from rnnkit.charlm.data import TextError, default_corpus, default_corpus_files, split_files


def test_split_files_is_file_level_deterministic_and_disjoint():
    sources = [f"# file {i}\n" + "x = 1\n" * (i % 7 + 1) for i in range(40)]
    train, val = split_files(sources, 0.25)
    assert sorted(train + val) == list(range(40)) and not set(train) & set(val)
    assert (train, val) == split_files(sources, 0.25)  # the same split every time
    total = sum(map(len, sources))
    val_chars = sum(len(sources[i]) for i in val)
    assert 0.25 * total <= val_chars < 0.25 * total + max(map(len, sources))  # whole files, just past the share
    assert val != sorted(val) or train != sorted(train)  # drawn at random, not the tail of the list
    assert split_files(sources, 0.25, seed=1) != (train, val)
    assert len(split_files(sources[:2], 0.9)[0]) == 1  # training keeps at least one file
    with pytest.raises(TextError, match="val-frac"):
        split_files(sources, 1.0)
    with pytest.raises(TextError, match="two files"):
        split_files(sources[:1], 0.1)


def test_default_corpus_is_the_whole_standard_library_split_by_files():
    paths = default_corpus_files()
    root = sysconfig.get_paths()["stdlib"]
    assert paths == sorted(paths) and all(p.startswith(root) and p.endswith(".py") for p in paths)
    assert not any(f"{os.sep}test{os.sep}" in p or os.path.basename(p).startswith("test_") for p in paths)
    sources = [open(p, encoding="utf-8").read() for p in paths]
    train, val = default_corpus(0.1)
    assert len(train) + len(val) == sum(map(len, sources))  # nothing capped
    assert 0.1 <= len(val) / (len(train) + len(val)) < 0.2
    assert (train, val) == default_corpus(0.1)
    held_out = split_files(sources, 0.1)[1]
    assert val == "".join(sources[i] for i in held_out)
    assert sources[held_out[0]] not in train
