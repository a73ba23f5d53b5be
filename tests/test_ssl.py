"""Sound-source localisation: the pooling and loss math on hand-built maps, bad input (never visible, silent, single
frame) flagged and never paired silently, shapes and determinism, the real-video top-k JSON, and the shipped model's
behaviour on held-out clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from s2v_lib import ssl
from s2v_lib import toyworld as tw
from s2v_lib.data import build_toy_dataset


def tiny_model(seed: int = 0, threshold: float = -1.0) -> ssl.SSLModel:
    torch.manual_seed(seed)
    m = ssl.SSLModel(dim=8, width=4).eval()
    m.absent_threshold.fill_(threshold)
    return m


@pytest.fixture(scope="module")
def shipped():
    return ssl.load_ssl_model()


# ----------------------------------------------------------------------------------------------------------------
# pooling, ranking and the loss, on hand-built numbers


def test_pooling_of_a_map_is_max_mean_or_topk_mean():
    heat = torch.zeros(2, 4, 4)
    heat[0, 1, 2] = 0.9
    heat[0, 3, 3] = 0.5
    heat[1] = 0.2
    np.testing.assert_allclose(ssl.pool_map(heat, "max"), [0.9, 0.2], atol=1e-6)
    np.testing.assert_allclose(ssl.pool_map(heat, "mean"), [1.4 / 16, 0.2], atol=1e-6)
    np.testing.assert_allclose(ssl.pool_map(heat, "topk", k=2), [0.7, 0.2], atol=1e-6)
    assert isinstance(ssl.pool_map(heat.numpy(), "max"), np.ndarray)
    with pytest.raises(ValueError, match="pooling"):
        ssl.pool_map(heat, "median")


@pytest.mark.parametrize("pooling", ssl.POOLINGS)
def test_a_frame_showing_the_source_outscores_an_empty_frame(pooling):
    maps = np.full((1, 3, 8, 8), 0.1, np.float32)  # frames 0 and 2: nothing answers the sound
    maps[0, 1, 2:5, 3:6] = 0.8  # frame 1: a 3 x 3 blob where the sound is
    scores = ssl.pool_map(maps, pooling)
    assert scores.shape == (1, 3) and scores[0].argmax() == 1
    sel = ssl.select_top1_frame(scores)
    assert sel.frame.tolist() == [1] and sel.flag.tolist() == ["ok"]


def test_topk_frames_orders_best_first_and_breaks_ties_by_time():
    s = np.array([[0.1, 0.5, 0.5, 0.9], [0.3, 0.2, 0.1, 0.0]])
    assert ssl.topk_frames(s, 3).tolist() == [[3, 1, 2], [0, 1, 2]]
    assert ssl.topk_frames(s, 10).shape == (2, 4)  # k larger than the clip: all frames
    assert ssl.topk_frames(s[0], 1).tolist() == [[3]]


def test_mil_infonce_rewards_the_bag_that_holds_the_source():
    b, bag = 4, 6
    sim = torch.full((b, b, bag), -0.5)
    for i in range(b):
        sim[i, i, i] = 0.9  # clip i's own frames hold one position that answers its sound
    good = ssl.mil_infonce(sim)
    assert good < 0.05
    flat = torch.zeros(b, b, bag)
    assert ssl.mil_infonce(flat) == pytest.approx(np.log(b), rel=1e-5)  # nothing to tell apart: chance
    # the hard max of EZ-VSL is the limit of the smooth one
    rnd = 0.3 * torch.rand(b, b, 2, 3, 3, generator=torch.Generator().manual_seed(0))  # cosines within 0.3
    hard = ssl.mil_infonce(rnd, bag_temperature=0)
    assert ssl.mil_infonce(rnd, bag_temperature=1e-3) == pytest.approx(float(hard), rel=0.05)
    # the smooth max passes gradient to every position, the hard max to one per pair
    for temp, dense in ((0.1, True), (0.0, False)):
        x = rnd.clone().requires_grad_(True)
        ssl.mil_infonce(x, bag_temperature=temp).backward()
        share = (x.grad.flatten(2).abs() > 1e-12).float().mean().item()
        assert (share > 0.9) if dense else (share <= 1 / 18 + 1e-6)


def test_otsu_threshold_splits_two_modes():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0.2, 0.05, 500), rng.normal(0.8, 0.05, 300)])
    assert 0.35 < ssl.otsu_threshold(v) < 0.65


# ----------------------------------------------------------------------------------------------------------------
# localisation metrics


def test_pointing_game_and_ciou_on_hand_built_maps():
    mask = np.zeros((2, 8, 8), bool)
    mask[:, 2:4, 2:4] = True
    heat = np.zeros((2, 8, 8))
    heat[0, 2:4, 2:4] = 1.0  # exactly the object
    heat[1, 6, 6] = 1.0  # elsewhere
    assert ssl.pointing_game(heat, mask).tolist() == [True, False]
    np.testing.assert_allclose(ssl.ciou(heat, mask), [1.0, 0.0])
    assert ssl.auc_ciou(np.ones(5)) == pytest.approx(1.0)
    assert ssl.auc_ciou(np.array([1.0, 0.0])) == pytest.approx(0.5 + 0.5 * 0.05 / 2, abs=1e-9)


def test_source_masks_cover_the_sounding_object_and_only_where_it_is_in_view(cache_tmp):
    ds = build_toy_dataset(12, seed=5)
    masks = ssl.source_masks(5, 12)
    assert masks.shape == (12, tw.N_FRAMES, tw.IMAGE_SIZE, tw.IMAGE_SIZE)
    assert not masks[~ds.visible].any()
    assert masks[ds.visible].reshape(-1, tw.IMAGE_SIZE**2).any(1).all()
    i, f = np.argwhere(ds.visible)[0]
    x0, y0, x1, y1 = ds.boxes[i, f]
    cy, cx = int((y0 + y1) / 2), int((x0 + x1) / 2)
    assert masks[i, f, cy, cx]  # the first box's centre is inside


# ----------------------------------------------------------------------------------------------------------------
# bad input: flagged, counted, never a silently wrong pair


def test_selection_flags_silent_absent_and_single_frame_clips():
    audio = np.zeros((4, tw.N_SAMPLES), np.float32)
    rng = np.random.default_rng(0)
    audio[:, :] = rng.normal(0, 10 ** (tw.NOISE_FLOOR_DB / 20), audio.shape)  # the ambient floor only
    audio[[0, 2], 8000:12000] += 0.3 * np.sin(np.arange(4000) / 5)  # clips 0 and 2 have a sound
    scores = np.array([[0.2, 0.9], [0.2, 0.9], [0.1, 0.15], [0.5, 0.4]])
    sel = ssl.select_top1_frame(scores, audio, absent_threshold=0.5)
    assert sel.flag.tolist() == ["ok", "silent", "no_source_in_view", "silent"]
    assert sel.frame.tolist() == [1, -1, -1, -1] and sel.keep.tolist() == [True, False, False, False]
    assert sel.counts() == {"ok": 1, "single_frame": 0, "silent": 2, "no_source_in_view": 1}
    assert "skipped 2 silent, 1 with no source in view" in sel.summary()
    one = ssl.select_top1_frame(np.array([[0.7], [0.1]]), absent_threshold=0.5)
    assert one.flag.tolist() == ["single_frame", "no_source_in_view"] and one.frame.tolist() == [0, -1]
    # above the threshold, but far below what the same sound scores on other clips: a look-alike, not the source
    rel = ssl.select_top1_frame(np.array([[0.6, 0.7], [0.6, 0.7]]), absent_threshold=0.5, reference_best=[0.9, 0.75])
    assert rel.flag.tolist() == ["no_source_in_view", "ok"] and rel.frame.tolist() == [-1, 1]


def test_selection_refuses_scores_it_cannot_rank():
    with pytest.raises(ValueError, match="NaN"):
        ssl.select_top1_frame(np.array([[0.1, np.nan]]))
    with pytest.raises(ValueError, match="no frames"):
        ssl.select_top1_frame(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="waveforms"):
        ssl.select_top1_frame(np.zeros((2, 3)), audio=np.zeros((3, 1000)))


@pytest.mark.parametrize("kind", ["never_visible", "silent", "single_frame"])
def test_bad_toy_clips_run_through_scoring_without_crashing(cache_tmp, kind):
    cfg = {"never_visible": tw.WorldConfig(never_visible=True), "silent": tw.WorldConfig(silent=True),
           "single_frame": tw.WorldConfig(n_frames=1)}[kind]  # fmt: skip
    ds = build_toy_dataset(6, seed=11, config=cfg)
    model = tiny_model(threshold=2.0 if kind == "never_visible" else -1.0)  # a threshold no score can reach
    maps = ssl.localisation_maps(model, ds)
    assert maps.shape == (6, cfg.n_frames, 16, 16) and np.isfinite(maps).all()
    sel = ssl.select_training_frames(model, ds)  # 6 clips: too few for the comparison check, threshold only
    assert ssl.reference_best_scores(model, ds) is None
    expected = {"never_visible": "no_source_in_view", "silent": "silent", "single_frame": "single_frame"}[kind]
    assert set(sel.flag) == {expected}
    assert (sel.frame == (0 if kind == "single_frame" else -1)).all()


def test_the_silence_check_tells_the_toy_floor_from_the_quietest_source(cache_tmp):
    loud = build_toy_dataset(40, seed=12)
    quiet = build_toy_dataset(10, seed=13, config=tw.WorldConfig(silent=True))
    assert not ssl.is_silent(loud.audio).any() and ssl.is_silent(quiet.audio).all()
    assert ssl.is_silent(np.zeros((1, 10))).all()  # shorter than one window


# ----------------------------------------------------------------------------------------------------------------
# shapes, determinism, training


def test_maps_and_scores_have_the_documented_shapes_and_are_deterministic(cache_tmp):
    ds = build_toy_dataset(5, seed=3)
    model = tiny_model()
    maps = ssl.localisation_maps(model, ds)
    assert maps.shape == (5, tw.N_FRAMES, 16, 16) and (np.abs(maps) <= 1 + 1e-5).all()
    assert ssl.localisation_maps(model, ds, size=32).shape == (5, tw.N_FRAMES, 32, 32)
    scores = ssl.frame_scores(model, ds)
    np.testing.assert_allclose(scores, ssl.pool_map(maps, "max"), atol=1e-5)
    np.testing.assert_array_equal(scores, ssl.frame_scores(model, ds))
    np.testing.assert_allclose(ssl.frame_scores(model, (ds.audio, ds.frames), batch_size=2), scores, atol=1e-5)
    assert ssl.frame_scores(model, ds, pooling="mean").shape == (5, tw.N_FRAMES)


def test_training_a_few_steps_is_deterministic_and_sets_a_threshold(cache_tmp):
    from s2v_lib.experiment import spectrograms

    ds = build_toy_dataset(16, seed=4)
    specs = spectrograms(ds)
    runs = [ssl.train_ssl(specs, ds.frames, steps=2, batch_size=8, seed=1, dim=8, width=4) for _ in range(2)]
    (m1, s1), (m2, _) = runs
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k
    assert s1["steps"] == 2 and np.isfinite(s1["final_loss"]) and -1 <= s1["absent_threshold"] <= 1


# ----------------------------------------------------------------------------------------------------------------
# real video: top-k JSON in the authors' layout


def test_rank_clip_frames_gives_a_topk_entry_with_a_box_in_frame_pixels():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (12, 48, 64, 3), dtype=np.uint8)  # 12 frames of a 64 x 48 video
    audio = rng.normal(0, 0.1, 16000 * 3).astype(np.float32)  # 3 s: not the toy length
    entry = ssl.rank_clip_frames(tiny_model(), audio, frames, k=10)
    moments = entry["top10_moments"]
    assert len(moments) == 10 and len(set(moments)) == 10 and max(moments) < 12
    x0, y0, x1, y1 = entry["top1_box"]
    assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 48
    assert ssl.map_box(np.pad(np.ones((2, 3)), 2)) == (2.0, 2.0, 5.0, 4.0)


def test_write_video_topk_ranks_a_folder_and_skips_bad_clips(tmp_path):
    pytest.importorskip("av")
    from s2v_lib.data import write_clip_files
    from s2v_lib.video import VideoFolder, read_topk_json

    for i, cfg in enumerate([tw.WorldConfig(), tw.WorldConfig(), tw.WorldConfig(silent=True)]):
        write_clip_files(tw.make_clip(21, i, cfg), tmp_path / "videos", f"clip{i}_000000", size=64)
    folder = VideoFolder(tmp_path / "videos", seconds=2.0)
    report = ssl.write_video_topk(tiny_model(), folder, tmp_path / "top.json", format="authors")
    assert report["written"] == 2 and report["silent"] == 1
    data = json.loads((tmp_path / "top.json").read_text())
    assert isinstance(data, list) and len(data) == 2  # [{clip: box}, {clip: moments}]
    entries = read_topk_json(tmp_path / "top.json")
    assert len(entries) == 2 and all(len(e["top10_moments"]) == 10 for e in entries.values())


# ----------------------------------------------------------------------------------------------------------------
# the shipped model and the benchmark command


def test_shipped_model_finds_the_source_on_held_out_clips(shipped, cache_tmp):
    ds = build_toy_dataset(150, seed=ssl.SSL_EVAL_SEED + 10)
    scores = ssl.frame_scores(shipped, ds)
    rows = np.arange(len(ds))
    assert ds.visible[rows, scores.argmax(1)].mean() >= 0.93  # vs ~0.6 for the middle frame
    maps = ssl.localisation_maps(shipped, ds, size=32)
    masks = ssl.source_masks(ssl.SSL_EVAL_SEED + 10, 150)
    assert ssl.pointing_game(maps[ds.visible], masks[ds.visible]).mean() >= 0.85
    never = build_toy_dataset(30, seed=99, config=tw.WorldConfig(never_visible=True))
    assert (ssl.select_training_frames(shipped, never).flag == "no_source_in_view").mean() >= 0.7  # threshold only
    sel = ssl.select_training_frames(shipped, never, reference=ds)  # and compared with ordinary clips
    assert (sel.flag == "no_source_in_view").mean() >= 0.9
    assert (ssl.select_training_frames(shipped, ds).flag == "ok").mean() >= 0.97  # ordinary clips stay


def test_benchmark_writes_metrics_and_never_overwrites(cache_tmp, tmp_path, capsys):
    from s2v_lib.demo import OutputExists

    cfg = ssl.SSLBenchConfig(n_eval=24, n_bad=6, n_train=128, n_val=64, n_test=32, epochs=1, sampling_steps=2,
                             n_figure=2)  # fmt: skip
    out = tmp_path / "ssl"
    m = ssl.run_ssl_benchmark(out, config=cfg)
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("pointing_game", "auc_ciou", "selection_precision", "selection_precision_middle",
                "selection_precision_random", "gen_top1_accuracy_top1", "gen_top1_accuracy_middle"):  # fmt: skip
        assert key in saved, key
    assert saved["seeds"] == [1] and saved["tuning_seed"] == 0
    assert saved["seconds"] > 0 and saved["bad_input"]["silent"]["paired"] == 0
    assert m["downstream"]["n_train"] <= 128
    assert (out / "heatmaps.png").exists() and (out / "score_bars.png").exists()
    assert len(json.loads((out / "top10_moments.json").read_text())[1]) == 24
    assert "pointing game" in capsys.readouterr().out
    with pytest.raises(OutputExists, match="--force"):
        ssl.run_ssl_benchmark(out, config=cfg)
    assert json.loads((out / "metrics.json").read_text()) == saved
