import numpy as np
import pytest

from s2v_lib import toyworld as tw
from s2v_lib.data import build_toy_dataset, pair_frames, take_frames, truth_frame


def test_dataset_is_cached_atomically_and_reloads_identically(cache_tmp):
    a = build_toy_dataset(20, seed=3)
    files = list((cache_tmp / "cache").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary files left behind
    b = build_toy_dataset(20, seed=3)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert a.audio.dtype == np.float16 and a.frames.dtype == np.uint8


def test_damaged_cache_is_rebuilt(cache_tmp):
    build_toy_dataset(8, seed=4)
    (path,) = (cache_tmp / "cache").iterdir()
    path.write_bytes(b"garbage")
    ds = build_toy_dataset(8, seed=4)
    assert len(ds) == 8


def test_parallel_build_equals_serial(cache_tmp):
    a = build_toy_dataset(12, seed=5, workers=2, cache=False)
    b = build_toy_dataset(12, seed=5, workers=1, cache=False)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.targets, b.targets)


def test_pairings(cache_tmp):
    ds = build_toy_dataset(40, seed=6, cache=False)
    assert (pair_frames(ds, "middle") == tw.N_FRAMES // 2).all()
    truth = truth_frame(ds)
    assert ds.visible[np.arange(len(ds)), truth].all()  # the ground-truth frame always shows the source
    assert ds.visible[np.arange(len(ds)), pair_frames(ds, "middle")].mean() < 1.0
    scores = np.zeros((len(ds), tw.N_FRAMES))
    scores[:, 2] = 1
    assert (pair_frames(ds, "top1", scores=scores) == 2).all()
    with pytest.raises(ValueError, match="needs per-frame scores"):
        pair_frames(ds, "top1")
    with pytest.raises(ValueError, match="unknown pairing"):
        pair_frames(ds, "best")
    assert take_frames(ds, truth).shape == (len(ds), 32, 32, 3)


def test_split_keeps_clips_apart(cache_tmp):
    ds = build_toy_dataset(30, seed=7, cache=False)
    train, held = ds.split(10)
    assert len(train) == 20 and len(held) == 10
    assert not any(np.array_equal(h, t) for h in held.audio[:3] for t in train.audio)
