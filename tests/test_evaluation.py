"""Generation and evaluation (issue 4): distribution metrics, diversity, Grad-CAM, standing statistics of the GAN,
and the one-command ablation on a tiny setting."""

import json

import numpy as np
import pytest
import torch

from s2v_lib import metrics
from s2v_lib.ablation import ROWS, AblationConfig, run_ablation
from s2v_lib.audio import FrontEnd
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
    specs = torch.randn(2, 1, *FrontEnd.preset("toy").shape)
    targets = torch.randn(2, 128)
    maps = spectrogram_cam(model, specs, targets)
    assert maps.shape == (2, *FrontEnd.preset("toy").shape) and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    other = spectrogram_cam(model, specs, -targets)
    assert not np.allclose(maps, other)
    pics = np.zeros((2, 32, 32, 3), np.uint8)
    assert explain_pictures(model, specs, pics, load_image_encoder("toy")).shape == (2, *FrontEnd.preset("toy").shape)


def test_gradcam_refuses_bad_input():
    model = AudioEncoder()
    with pytest.raises(ValueError, match="NaN"):
        spectrogram_cam(model, torch.full((1, 1, *FrontEnd.preset("toy").shape), float("nan")), torch.zeros(1, 128))
    with pytest.raises(ValueError, match="target"):
        spectrogram_cam(model, torch.zeros(2, 1, *FrontEnd.preset("toy").shape), torch.zeros(1, 128))


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
    rows = ("mse", "prior_affine", "null_shuffled", "null_mean", "prototype", "true_frame_gan", "real_frames")
    cfg = AblationConfig(n_train=96, n_val=16, n_test=24, epochs=1, n_diversity=6, sampling_steps=2, n_fid=8, rows=rows,
                         seeds=(1, 2))  # fmt: skip
    return out, run_ablation(out, cfg)


def test_ablation_writes_every_table_and_row_with_intervals(tiny_ablation):
    out, m = tiny_ablation
    assert list(m["rows"]) == ["prior_affine", "mse", "null_shuffled", "null_mean", "prototype", "true_frame_gan",
                               "real_frames"]  # fmt: skip
    for name in ("ablation.csv", "ablation.md", "metrics.json", "ablation_grid.png", "ablation_bars.png", "pictures.npz"):
        assert (out / name).exists(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["seeds"] == [1, 2] and saved["tuning_seed"] == 0 and "bootstrap" in saved["interval"]
    for rid, row in saved["rows"].items():
        assert {"loss", "pairing", "generator", "source", "name"} <= set(row), rid
        for key in ("gen_top1_accuracy", "gen_accuracy", "frechet_toy", "frechet_judge", "fid_inception", "judge_is"):
            x = row[key]
            assert set(x) >= {"mean", "ci95", "per_seed"} and len(x["per_seed"]) == 2, (rid, key)
            assert x["ci95"][0] <= x["mean"] <= x["ci95"][1], (rid, key)
    rows = saved["rows"]
    assert "gen_r_at_1_judge" in rows["mse"] and "gen_r_at_1" not in rows["real_frames"]
    assert rows["real_frames"]["gen_top1_accuracy"]["mean"] > 0.5  # real frames, judged on their own labels
    assert "diversity" in rows["mse"] and "diversity" not in rows["real_frames"]
    assert "r_at_1" in rows["mse"] and "r_at_1" not in rows["true_frame_gan"]
    # the attribute columns come with their constant-guess reference
    assert {"size_mae", "size_mae_constant", "size_spearman", "found_rate"} <= set(rows["prototype"])
    assert len((out / "ablation.csv").read_text().splitlines()) == 1 + 7
    assert (out / "ablation.md").read_text().count("\n") == 2 + 7 and "±" in (out / "ablation.md").read_text()


def test_null_rows_feed_the_generator_what_they_say(tiny_ablation):
    from s2v_lib.ablation import shuffled

    p = shuffled(50, 3)
    assert sorted(p) == list(range(50)) and (p != np.arange(50)).all()  # every sound gets another clip's embedding
    _, m = tiny_ablation
    null_mean = m["rows"]["null_mean"]
    # one embedding for every sound: pictures differ only by generator noise, so the judge sees few categories
    assert null_mean["judge_is"]["mean"] < m["rows"]["real_frames"]["judge_is"]["mean"]


def test_ablation_refuses_to_overwrite_unknown_rows_and_the_tuning_seed(tiny_ablation, tmp_path):
    out, _ = tiny_ablation
    with pytest.raises(OutputExists):
        run_ablation(out, AblationConfig())
    with pytest.raises(ValueError, match="unknown ablation rows"):
        run_ablation(tmp_path, AblationConfig(rows=("no such row",)))
    with pytest.raises(ValueError, match="tuning seed"):
        run_ablation(tmp_path / "t", AblationConfig(seeds=(0, 1)))


def test_the_ablation_has_the_papers_rows_and_the_reference_rows():
    ids = {r.id for r in ROWS}
    assert {"null_shuffled", "null_mean", "prototype", "true_frame", "real_frames"} <= ids
    assert {"prior_affine", "prior_retrieval", "prior_diffusion"} <= ids
    losses = {r.loss for r in ROWS if r.source == "audio"}
    assert losses == {"infonce_l2", "infonce_l2_normalized", "infonce_cosine", "infonce_cosine_tau0.1", "mse", "l1"}
    assert {r.pairing for r in ROWS if r.source == "audio"} == {"top1", "middle", "random"}
    assert {r.generator for r in ROWS if r.source != "real"} == {"toy-diffusion", "toy-gan"}
    assert len(ids) == len(ROWS)  # ids are unique


def test_attribute_scores_are_defined_only_where_the_category_is_found():
    """A judge that never finds the category: no attribute error at all (not an average over absent objects)."""

    class Blind:
        def judge(self, images):
            b, n = images.shape[:2]
            return {"probs": np.zeros((b, n, 8)), "size": np.full((b, n, 8), 3.0), "shade": np.full((b, n, 8), 0.5)}

    class Sees(Blind):
        def judge(self, images):
            out = super().judge(images)
            out["probs"][:] = 1.0
            out["size"][:, :, 2] = np.arange(images.shape[0])[:, None] + 2.0  # reads size in the truth's order
            return out

    images = np.zeros((5, 1, 32, 32, 3), np.uint8)
    cats, size, shade = np.full(5, 2), np.arange(5) + 2.5, np.full(5, 0.5)
    blind = metrics.attribute_scores(Blind(), images, cats, size, shade, {"size": 4.0, "shade": 0.5})
    assert blind["found_rate"] == 0 and np.isnan(blind["size_mae"]) and np.isnan(blind["size_spearman"])
    seen = metrics.attribute_scores(Sees(), images, cats, size, shade, {"size": 4.0, "shade": 0.5})
    assert seen["size_mae"] == pytest.approx(0.5) and seen["size_spearman"] == pytest.approx(1.0)
    assert seen["size_mae_constant"] == pytest.approx(np.abs(4.0 - size).mean())


def test_a_briefly_trained_encoder_beats_the_shuffled_null_by_a_clear_margin(cache_tmp):
    """End to end on held-out clips: sound -> trained encoder -> generator -> judge, against the same pictures drawn
    from another clip's sound (the shuffled null). If the method learned nothing the two would be equal."""
    from s2v_lib.ablation import shuffled
    from s2v_lib.experiment import generator_input, prepare_experiment, train_variant
    from s2v_lib.registry import load_generator

    exp = prepare_experiment(n_train=1200, n_val=64, n_test=96, seed=3, ssl_select=True)
    v = train_variant(exp, "infonce_l2", "top1", epochs=3)
    gen, judge = load_generator("toy-diffusion"), load_judge()
    emb = generator_input(exp, v)
    own = metrics.judged_scores(judge, gen.generate(emb, n=1, seed=0, steps=5), exp.test.label)["top1_accuracy"]
    other = emb[torch.as_tensor(shuffled(len(emb), 0))]
    null = metrics.judged_scores(judge, gen.generate(other, n=1, seed=0, steps=5), exp.test.label)["top1_accuracy"]
    assert own > null + 0.2, (own, null)  # 0.2 of 96 sounds: about 19 more drawn right than by chance
