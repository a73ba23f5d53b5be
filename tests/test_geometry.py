"""Modality-gap measures on synthetic embeddings with known answers, the embeddings file, and `s2v geometry`."""

import json

import numpy as np
import pytest
import torch

from s2v_lib import geometry as g


@pytest.fixture
def cloud():
    """200 image embeddings in 16-d, and audio embeddings = image + small noise (well aligned)."""
    rng = np.random.default_rng(0)
    v = rng.normal(size=(200, 16))
    return v + 0.05 * rng.normal(size=v.shape), v


def test_shifting_one_set_by_c_gives_a_gap_of_length_c(cloud):
    a, v = cloud
    c = np.zeros(16)
    c[3], c[7] = 3.0, -4.0  # |c| = 5
    assert g.centroid_gap(v + c, v) == pytest.approx(5.0, abs=1e-9)
    assert torch.allclose(g.gap_vector(v + c, v), torch.as_tensor(-c), atol=1e-9)
    assert g.centroid_gap(v, v) == 0 and g.centroid_gap(v, v, normalize=True) == 0
    # the normalised gap ignores length: scaling one set changes the raw gap, not Liang et al.'s
    assert g.centroid_gap(3 * v, v, normalize=True) == pytest.approx(0, abs=1e-9)
    assert g.centroid_gap(3 * v, v) > 0


def test_a_narrow_cone_far_from_the_images_has_a_large_normalised_gap():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(300, 32))  # spread over the sphere: normalised centroid near 0
    a = np.ones(32) + 0.01 * rng.normal(size=(300, 32))  # every audio embedding points the same way
    assert g.centroid_gap(a, v, normalize=True) > 0.9


def test_probe_cannot_tell_identical_sets_apart_and_always_tells_shifted_ones(cloud):
    _, v = cloud
    assert g.modality_probe_accuracy(v, v) == 0.5  # each test point has a twin with the other label
    shifted = v.copy()
    shifted[:, 0] += 6.0
    assert g.modality_probe_accuracy(shifted, v) > 0.97
    a, v = cloud  # noise 0.05 around each image embedding: nearly indistinguishable
    assert g.modality_probe_accuracy(a, v) < 0.7


def test_paired_and_unpaired_cosine(cloud):
    a, v = cloud
    same = g.paired_cosine(v, v)
    assert same["paired_cosine"] == pytest.approx(1.0)
    assert abs(same["unpaired_cosine"]) < 0.1  # random directions in 16-d
    assert g.paired_cosine(-v, v)["paired_cosine"] == pytest.approx(-1.0)
    aligned = g.paired_cosine(a, v)
    assert aligned["paired_cosine"] > 0.99 > aligned["unpaired_cosine"] + 0.8


def test_alignment_and_uniformity_as_in_wang_and_isola(cloud):
    _, v = cloud
    assert g.alignment(v, v) == pytest.approx(0.0, abs=1e-12)
    assert g.alignment(-v, v) == pytest.approx(4.0)  # antipodal unit vectors are 2 apart
    assert g.alignment(2 * v, v) == pytest.approx(0.0, abs=1e-12)  # on the sphere, length does not count
    collapsed = np.tile(v[:1], (50, 1))
    assert g.uniformity(collapsed) == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(2)
    spread = rng.normal(size=(400, 64))  # near-orthogonal pairs: ||x - y||^2 ~ 2, so uniformity ~ -2t = -4
    assert -4.2 < g.uniformity(spread) < -3.6


def test_rank_correlation_is_spearmans():
    assert g.rank_correlation([1, 2, 3, 4], [10, 20, 30, 400]) == pytest.approx(1.0)
    assert g.rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert g.rank_correlation([1, 1, 2], [1, 2, 3]) == pytest.approx(0.866, abs=1e-3)  # ties share their mean rank


def test_modality_gap_report_and_its_errors(cloud):
    a, v = cloud
    row = g.modality_gap(a, v)
    assert set(row) >= {"gap_centroid", "gap_centroid_normalized", "probe_accuracy", "paired_cosine",
                        "unpaired_cosine", "alignment", "uniformity_audio", "uniformity_image"}  # fmt: skip
    assert row["gap_centroid"] < 0.05 and row["paired_cosine"] > 0.99
    with pytest.raises(ValueError, match="paired by row"):
        g.modality_gap(a[:10], v)
    with pytest.raises(ValueError, match="train_fraction"):
        g.modality_probe_accuracy(a, v, train_fraction=1.0)


def test_embeddings_file_round_trip_and_clear_errors(tmp_path, cloud):
    a, v = cloud
    label = np.arange(len(a)) % 4
    sets = {"untrained": g.EmbeddingSet(a + 5, v, label), "infonce_l2": g.EmbeddingSet(a, v, label),
            "infonce_cosine_tau0.1": g.EmbeddingSet(a - 1, v, label)}  # a loss name with a dot  # fmt: skip
    path = g.save_embeddings(tmp_path / "e.npz", sets, ["a", "b", "c", "d"])
    back, names = g.load_embeddings(path)
    assert list(back) == ["untrained", "infonce_l2", "infonce_cosine_tau0.1"] and names == ["a", "b", "c", "d"]
    assert np.allclose(back["infonce_cosine_tau0.1"].audio, (a - 1).astype(np.float32))
    assert np.allclose(back["infonce_l2"].audio, a.astype(np.float32)) and back["untrained"].label.dtype == np.int64
    table = g.gap_table(back)
    summary = g.gap_summary({**table, "infonce_cosine": table["untrained"]})
    assert summary["gap_ratio_after_before"] < 0.05
    assert summary["l2_vs_cosine_gap_centroid"] == "InfoNCE-L2 beats cosine InfoNCE"
    with pytest.raises(ValueError, match="must be"):
        g.EmbeddingSet(a, v[:, :3], label)
    with pytest.raises(FileNotFoundError, match="s2v geometry"):
        g.load_embeddings(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", x=a)
    with pytest.raises(ValueError, match="variants"):
        g.load_embeddings(tmp_path / "bad.npz")


def test_umap_pictures_put_aligned_pairs_together(tmp_path, cloud):
    pytest.importorskip("umap")
    pytest.importorskip("seaborn")
    from s2v_lib import viz

    a, v = cloud
    a_xy, v_xy = g.umap_projection(a[:80], v[:80], n_neighbors=10)
    assert a_xy.shape == v_xy.shape == (80, 2)
    far_a, far_v = g.umap_projection(a[:80] + 50, v[:80], n_neighbors=10)  # a huge gap: two islands
    spread = np.linalg.norm(far_v - far_v.mean(0), axis=1).mean()
    assert np.linalg.norm(far_a.mean(0) - far_v.mean(0)) > 2 * spread
    label = np.arange(80) % 8
    path = viz.embedding_maps({"aligned": (a_xy, v_xy, label), "gap": (far_a, far_v, label)}, tmp_path / "u.png")
    assert path.stat().st_size > 10_000
    rows = {"x": {"gap_centroid": 1.0, "gap_centroid_normalized": 0.5, "gen_top1_accuracy": 0.3}}
    assert viz.gap_vs_accuracy(rows, tmp_path / "s.png").exists()


def test_tiny_geometry_run_writes_metrics_embeddings_and_pictures(cache_tmp, tmp_path):
    pytest.importorskip("umap")
    from s2v_lib.demo import OutputExists

    cfg = g.GeometryConfig(n_train=128, n_val=64, n_test=32, epochs=1, losses=("infonce_l2", "infonce_cosine"),
                           sampling_steps=2)  # fmt: skip
    out = tmp_path / "geo"
    m = g.run_geometry(out, config=cfg)
    saved = json.loads((out / "metrics.json").read_text())
    assert list(saved["variants"]) == ["untrained", "infonce_l2", "infonce_l2_shifted", "infonce_cosine"]
    for row in saved["variants"].values():
        assert {"gap_centroid", "probe_accuracy", "paired_cosine", "gen_top1_accuracy", "gen_accuracy"} <= set(row)
    assert "gap_ratio_after_before" in saved and "cosine InfoNCE" in saved["l2_vs_cosine_gap_centroid"]
    assert saved["seeds"] == [1] and saved["tuning_seed"] == 0
    sets, names = g.load_embeddings(out / "embeddings.npz")
    assert sets["infonce_l2"].audio.shape == (32, 128) and len(names) >= 8
    for png in ("umap_before_after.png", "umap_variants.png", "gap_vs_accuracy.png"):
        assert (out / png).stat().st_size > 10_000
    assert "InfoNCE-L2 gap after / before" in g.summary(m)
    with pytest.raises(OutputExists, match="--force"):
        g.run_geometry(out, config=cfg)


def test_the_gap_vector_never_reads_ground_truth(cache_tmp):
    """The gap vector feeds the method (it moves the embeddings the generator reads), so it must come from frames
    chosen without labels: poisoning every ground-truth anchor changes nothing."""
    from s2v_lib.experiment import gap_vector, prepare_experiment, train_variant

    exp = prepare_experiment(n_train=128, n_val=64, n_test=32, seed=2)
    v = train_variant(exp, "infonce_l2", "middle", epochs=1)
    before = gap_vector(exp, v)
    exp.anchors_val = torch.full_like(exp.anchors_val, float("nan"))
    exp.anchors_test = torch.full_like(exp.anchors_test, float("nan"))
    exp._selected_val = None  # recomputed from the validation clips' SSL top-1 frames
    after = gap_vector(exp, v)
    assert torch.isfinite(after).all() and torch.allclose(before, after)
