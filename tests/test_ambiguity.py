"""The ambiguity knob of the toy world, and the pieces of `s2v ambiguity` (s2v_lib.ambiguity)."""

import hashlib
import json

import numpy as np
import pytest

from s2v_lib import toyworld as tw

# Frames and ground truth of default clips, hashed (as _clip_hash does) from the code before the knob existed
# (commit fdc785d): at ambiguity 0 every clip must stay exactly what the frozen models were trained on.
RECORDED = {
    (0, 0): "96fb8fd12ea873d2", (0, 1): "94a37feddcf48614", (0, 2): "475bfdfe36abbe28", (0, 5): "0666f7bf7c3513e7",
    (0, 17): "9795cd00f13d52be", (3, 0): "c0f4a49373670fa5", (3, 1): "cc1c4398fc6b32f4", (3, 2): "52d79df322bb8a2c",
    (3, 5): "20089478fec3aabc", (3, 17): "c31e5226ecf3acfd",
}  # fmt: skip
RECORDED_MIXTURES = {(1, 0): "d52e79b415d1bb08", (1, 1): "610bcb5f901e4c55", (1, 2): "4aeaeab4d497cb6d",
                     (1, 3): "f06800efbe37cfb4"}  # fmt: skip


def _clip_hash(clip) -> str:
    """Frames (exact bytes) and ground truth (rounded, so that float noise in the last bit does not count)."""
    h = hashlib.sha256()
    h.update(clip.frames.tobytes())
    targets = np.stack([tw.frame_targets(clip, f) for f in range(len(clip.frames))]).astype(np.float64)
    h.update(np.round(targets, 6).tobytes())
    for s in clip.sources:
        boxes = [[tuple(round(float(v), 6) for v in b) for b in bs] for bs in s.boxes]
        h.update(repr((s.category, round(s.pitch, 9), s.n_events, round(float(s.size), 6), round(float(s.shade), 6),
                       s.visible, boxes)).encode())  # fmt: skip
    h.update(repr(clip.distractors).encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("config", [None, tw.WorldConfig(), tw.WorldConfig(ambiguity=0.0, ambiguity_companion=False)])
def test_knob_at_zero_leaves_every_clip_as_it_was(config):
    for (seed, index), expected in RECORDED.items():
        assert _clip_hash(tw.make_clip(seed, index, config)) == expected, (seed, index)
    mix = tw.WorldConfig(p_mixture=0.5) if config is None else tw.WorldConfig(p_mixture=0.5, ambiguity=0.0)
    for (seed, index), expected in RECORDED_MIXTURES.items():
        assert _clip_hash(tw.make_clip(seed, index, mix)) == expected, (seed, index)


def test_ambiguity_changes_only_the_picture_and_nests_across_settings():
    n = 80
    base = [tw.make_clip(2, i) for i in range(n)]
    half = [tw.make_clip(2, i, tw.WorldConfig(ambiguity=0.5)) for i in range(n)]
    full = [tw.make_clip(2, i, tw.WorldConfig(ambiguity=1.0)) for i in range(n)]
    for b, h, f in zip(base, half, full):
        assert np.array_equal(b.audio, f.audio) and np.array_equal(b.audio, h.audio)  # the sound never changes
        assert not np.array_equal(b.frames, f.frames)  # every clip is ambiguous at 1
        same = f if h.sources[0].ambiguous else b  # at 0.5: exactly the clip at 1, or exactly the clip at 0
        assert np.array_equal(h.frames, same.frames)
    flags = np.array([h.sources[0].ambiguous for h in half])
    assert 0.3 < flags.mean() < 0.7
    assert [tw.is_ambiguous(2, i, 0.5) for i in range(n)] == flags.tolist()


def test_ambiguous_pictures_are_drawn_independently_of_the_sound_but_in_distribution():
    clips = [tw.make_clip(4, i, tw.WorldConfig(ambiguity=1.0)) for i in range(150)]
    src = [c.sources[0] for c in clips]
    loud, size = np.array([s.loudness_db for s in src]), np.array([s.size for s in src])
    pitch, shade = np.array([s.pitch for s in src]), np.array([s.shade for s in src])
    events, objects = np.array([s.n_events for s in src]), np.array([s.n_objects for s in src])
    assert abs(np.corrcoef(loud, size)[0, 1]) < 0.25 and abs(np.corrcoef(pitch, shade)[0, 1]) < 0.25
    assert (events != objects).mean() > 0.3
    # what the frozen models know: sizes, shades and counts from the default world's ranges
    assert size.min() >= tw.SIZE_RANGE[0] and size.max() <= tw.SIZE_RANGE[1]
    assert shade.min() >= tw.pitch_to_shade(0.0) and shade.max() <= tw.pitch_to_shade(1.0)
    assert set(objects) <= {1, 2, 3}
    # ground truth says what the sound says (loudness_db, pitch, n_events) and what the frame shows
    for c, s in zip(clips, src):
        for f in np.flatnonzero(s.visible):
            assert len(s.boxes[f]) == s.n_objects
            t = tw.frame_targets(c, f)
            assert t[0, s.category] == 1 and t[1, s.category] == pytest.approx(s.size)
            assert t[3, s.category] == s.n_objects
            companions = [k for k in c.distractors[f] if k != s.category]
            assert companions, "an ambiguous clip shows a silent companion whenever the source is in view"
    off = tw.make_clip(4, 0, tw.WorldConfig(ambiguity=1.0, ambiguity_companion=False))
    assert off.sources[0].ambiguous and off.distractors == tw.make_clip(4, 0).distractors  # no companion added
    assert clips[0].distractors != off.distractors


def test_knob_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="ambiguity must lie in"):
        tw.WorldConfig(ambiguity=1.5)


def test_attribute_correlation_reads_the_sound_at_zero_and_not_at_one(cache_tmp):
    """The sweep's metric on real frames: at ambiguity 0 the judged size and shade follow the sound; at 1 they follow
    only the frame; judged against shuffled sounds they follow nothing."""
    from s2v_lib.ambiguity import _derangement, clip_truth, picture_scores
    from s2v_lib.data import build_toy_dataset, take_frames, truth_frame
    from s2v_lib.registry import load_judge

    judge = load_judge()
    res = {}
    for knob in (0.0, 1.0):
        ds = build_toy_dataset(120, seed=5, config=tw.WorldConfig(ambiguity=knob))
        frames = take_frames(ds, truth_frame(ds))[:, None]
        truth = clip_truth(ds)
        res[knob] = picture_scores(judge, frames, **truth)[0]
        perm = _derangement(len(ds), 0)
        res[knob, "null"] = picture_scores(judge, frames, **{k: v[perm] for k, v in truth.items()})[0]
    assert res[0.0]["size_spearman"] > 0.8 and res[0.0]["shade_spearman"] > 0.8
    assert abs(res[1.0]["size_spearman"]) < 0.3 and abs(res[1.0]["shade_spearman"]) < 0.3
    assert res[1.0]["size_spearman_frame"] > 0.8 and res[1.0]["shade_spearman_frame"] > 0.8
    assert abs(res[0.0, "null"]["size_spearman"]) < 0.3 and res[0.0, "null"]["top1_accuracy"] < 0.3
    assert res[0.0]["top1_accuracy"] > 0.7


def test_sweep_end_to_end_on_a_tiny_world(cache_tmp, tmp_path):
    from s2v_lib.ambiguity import AmbiguityConfig, run_ambiguity
    from s2v_lib.cli import build_parser

    args = build_parser().parse_args(["ambiguity", "--knobs", "0,1", "--seeds", "2", "--out", str(tmp_path / "x")])
    assert args.knobs == [0.0, 1.0] and args.seeds == 2
    cfg = AmbiguityConfig(knobs=(0.0, 1.0), losses=("infonce_l2", "mse"), seeds=(1, 2), n_train=64, n_val=16,
                          n_test=24, epochs=1, sampling_steps=2, n_diversity=4)  # fmt: skip
    m = run_ambiguity(tmp_path / "out", cfg)
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["seeds"] == [1, 2] and saved["tuning_seed"] == 0 and saved["knobs"] == [0.0, 1.0]
    assert set(saved["rows"]) == {"infonce_l2", "mse", "oracle", "real_frames", "null_shuffled"}
    for row in ("infonce_l2", "mse", "oracle"):
        for knob in ("0", "1"):
            for key in ("top1_accuracy", "accuracy", "size_spearman", "shade_spearman", "fd_judge", "diversity"):
                x = saved["rows"][row][knob][key]
                assert len(x["per_seed"]) == 2 and len(x["ci95"]) == 2, (row, knob, key)
    # the oracle's pictures are judged far more often right than the null row's
    assert m["rows"]["oracle"]["0"]["top1_accuracy"]["mean"] > m["rows"]["null_shuffled"]["0"]["top1_accuracy"]["mean"]
    assert "MSE" in json.dumps(saved["comparisons"]["0"]["mse"])
    assert (tmp_path / "out" / "ambiguity.png").stat().st_size > 10_000
    assert "ambiguity 1" in (tmp_path / "out" / "ambiguity.md").read_text()
    with pytest.raises(ValueError, match="tuning seed 0 must not be among"):
        run_ambiguity(tmp_path / "bad", AmbiguityConfig(seeds=(0, 1)))
