"""Generation and evaluation (issue 4): distribution metrics, diversity, Grad-CAM, standing statistics of the GAN,
and the one-command ablation on a tiny setting."""

import json

import numpy as np
import pytest
import torch

from s2v_lib import metrics
from s2v_lib.ablation import ROWS, AblationConfig, markdown_table, run_ablation
from s2v_lib.audio_encoder import AudioEncoder
from s2v_lib.data import build_toy_dataset, take_frames, truth_frame
from s2v_lib.demo import OutputExists
from s2v_lib.generators import ToyGAN, standing_stats
from s2v_lib.gradcam import explain_pictures, spectrogram_cam
from s2v_lib.registry import load_image_encoder, load_judge


@pytest.fixture(scope="module")
def frames():
    ds = build_toy_dataset(96, seed=11)
    return take_frames(ds, truth_frame(ds)), ds.label


def test_frechet_distance_is_small_for_one_distribution_and_grows_with_a_shift(frames):
    real, _ = frames
    feats = metrics.ToyEncoderFeatures()
    same = metrics.frechet_distance(real[:48], real[48:], feats)
    dark = metrics.frechet_distance(real[:48], (real[48:] * 0.4).astype(np.uint8), feats)
    assert 0 <= same < dark


def test_inception_features_load_offline_and_give_2048_numbers(frames):
    real, _ = frames
    feats = metrics.InceptionFeatures()
    out = feats(torch.as_tensor(real[:2]).permute(0, 3, 1, 2))
    assert out.shape == (2, 2048) and torch.isfinite(out).all()


def test_judge_inception_score_rewards_confident_varied_pictures(frames):
    real, labels = frames
    judge = load_judge()
    varied = metrics.judge_inception_score(judge, real)
    one_picture = metrics.judge_inception_score(judge, np.repeat(real[:1], 48, 0))
    assert one_picture == pytest.approx(1.0, abs=1e-4)
    assert varied > 2.0 and varied <= len(np.unique(labels)) + 1e-6


def test_diversity_is_zero_for_copies_and_needs_two_pictures():
    e = torch.randn(5, 1, 8)
    assert metrics.diversity(e.repeat(1, 3, 1)) == pytest.approx(0.0, abs=1e-5)
    assert metrics.diversity(torch.randn(5, 3, 8)) > 0
    with pytest.raises(ValueError, match="at least 2"):
        metrics.diversity(e)


def test_gradcam_maps_cover_the_spectrogram_and_depend_on_the_picture():
    torch.manual_seed(0)
    model = AudioEncoder()
    specs = torch.randn(2, 1, 64, 65)
    targets = torch.randn(2, 128)
    maps = spectrogram_cam(model, specs, targets)
    assert maps.shape == (2, 64, 65) and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    other = spectrogram_cam(model, specs, -targets)
    assert not np.allclose(maps, other)
    pics = np.zeros((2, 32, 32, 3), np.uint8)
    assert explain_pictures(model, specs, pics, load_image_encoder("toy")).shape == (2, 64, 65)


def test_gradcam_refuses_bad_input():
    model = AudioEncoder()
    with pytest.raises(ValueError, match="NaN"):
        spectrogram_cam(model, torch.full((1, 1, 64, 65), float("nan")), torch.zeros(1, 128))
    with pytest.raises(ValueError, match="target"):
        spectrogram_cam(model, torch.zeros(2, 1, 64, 65), torch.zeros(1, 128))


def test_standing_stats_replace_the_running_statistics():
    torch.manual_seed(0)
    g = ToyGAN(width=16)
    bn = next(m for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_var.clone()
    standing_stats(g, torch.randn(64, 128) * 3, batch_size=32)
    assert not torch.allclose(before, bn.running_var) and not g.training
    a, b = g.generate(torch.zeros(2, 128), n=2, seed=1), g.generate(torch.zeros(2, 128), n=2, seed=1)
    assert np.array_equal(a, b)


def test_a_constant_waveform_gives_a_finite_picture_not_nan():
    model = AudioEncoder()
    emb = model.embed(np.full((1, 32000), 0.3, np.float32))
    assert torch.isfinite(emb).all()


@pytest.fixture(scope="module")
def tiny_ablation(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablate")
    rows = ("MSE", "oracle, GAN", "real frames (other clips)")
    cfg = AblationConfig(n_train=96, n_val=16, n_test=24, epochs=1, n_diversity=6, sampling_steps=2, n_fid=8, rows=rows)
    return out, run_ablation(out, cfg)


def test_ablation_writes_every_table_and_row(tiny_ablation):
    out, m = tiny_ablation
    assert list(m["rows"]) == ["MSE", "oracle, GAN", "real frames (other clips)"]
    for name in (
        "ablation.csv",
        "ablation.md",
        "metrics.json",
        "ablation_grid.png",
        "ablation_bars.png",
        "pictures.npz",
    ):
        assert (out / name).exists(), name
    saved = json.loads((out / "metrics.json").read_text())
    for row in saved["rows"].values():
        for key in ("gen_accuracy", "size_mae", "frechet_toy", "fid_inception", "judge_is"):
            assert np.isfinite(row[key]), key
    assert "gen_r_at_1" in saved["rows"]["MSE"] and "gen_r_at_1" not in saved["rows"]["real frames (other clips)"]
    assert saved["rows"]["real frames (other clips)"]["gen_accuracy"] > 0.5  # real frames, judged on their own labels
    assert saved["rows"]["MSE"]["diversity"] > 0 and "diversity" not in saved["rows"]["real frames (other clips)"]
    assert "r_at_1" in saved["rows"]["MSE"] and "r_at_1" not in saved["rows"]["oracle, GAN"]
    csv_rows = (out / "ablation.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 3
    assert (out / "ablation.md").read_text().count("\n") == 2 + 3


def test_ablation_refuses_to_overwrite_and_unknown_rows(tiny_ablation, tmp_path):
    out, _ = tiny_ablation
    with pytest.raises(OutputExists):
        run_ablation(out, AblationConfig())
    with pytest.raises(ValueError, match="unknown ablation rows"):
        run_ablation(tmp_path, AblationConfig(rows=("no such row",)))


def test_the_ablation_has_the_issues_rows():
    losses = {r.loss for r in ROWS if r.source == "audio"}
    assert losses == {"infonce_l2", "infonce_l2_normalized", "infonce_cosine", "mse", "l1"}
    assert {r.pairing for r in ROWS if r.source == "audio"} == {"top1", "middle", "random"}
    assert {r.generator for r in ROWS if r.source != "real"} == {"toy-diffusion", "toy-gan"}
    assert {r.source for r in ROWS} == {"audio", "oracle", "real"}
    assert markdown_table({"x": {"gen_accuracy": 0.5}}).splitlines()[2] == "| x | 0.500 |"
