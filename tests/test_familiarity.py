"""Familiarity: calibrated on held-out toy clips, it must tell toy clips from real recordings (s2v_lib.familiarity)."""

import json

import numpy as np
import pytest
import torch

from s2v_lib import familiarity as fam
from s2v_lib import toyworld as tw


def blobs(rng, n, centres, spread=1.0):
    labels = rng.integers(0, len(centres), n)
    return centres[labels] + rng.normal(0, spread, (n, centres.shape[1])), labels


def as_features(x):
    """One 'stage' whose cosine distance follows the Euclidean one (a large constant coordinate appended)."""
    return [np.hstack([x, np.full((len(x), 1), 1000.0)])]


@pytest.fixture
def reference():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (tw.N_CATEGORIES, 16))
    emb, labels = blobs(rng, 800, centres)
    calib, _ = blobs(rng, 400, centres)
    return fam.Reference.fit(emb, labels, as_features(emb), as_features(calib)), centres, rng


def test_auroc_matches_a_brute_force_count():
    rng = np.random.default_rng(1)
    neg, pos = rng.normal(0, 1, 50).round(1), rng.normal(1, 1, 40).round(1)  # rounded: ties too
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert fam.auroc(neg, pos) == pytest.approx(brute)
    assert fam.auroc([0, 1], [2, 3]) == 1.0 and fam.auroc([2, 3], [0, 1]) == 0.0


def test_fresh_in_distribution_points_are_familiar_at_the_calibrated_rate_and_far_points_are_not(reference):
    ref, centres, rng = reference
    fresh, labels = blobs(rng, 2000, centres)
    out = ref.assess(fresh, as_features(fresh))
    flagged = np.mean([f.unfamiliar for f in out])
    assert flagged <= 3 * ref.alpha  # conformal: about alpha of unseen in-distribution points are flagged
    assert np.mean([f.nearest == tw.CATEGORY_NAMES[c] for f, c in zip(out, labels)]) > 0.95
    assert 0.7 < np.median([f.distance for f in out]) < 1.4  # distances are in units of a typical held-out point
    far = centres[:3] + 40.0
    out_far = ref.assess(far, as_features(far))
    assert all(f.unfamiliar and f.familiarity < ref.alpha and f.distance > ref.threshold for f in out_far)
    note = out_far[0].note()
    assert note.startswith("UNFAMILIAR") and "S2V_PROFILE=full" in note and all(c in note for c in tw.CATEGORY_NAMES)
    assert not out_far[0].note(hint=False).count("S2V_PROFILE")
    assert sum(f.note().startswith("familiar") for f in out) == sum(not f.unfamiliar for f in out)


def test_familiarity_falls_as_distance_grows_and_the_threshold_agrees_with_alpha(reference):
    ref, centres, _ = reference
    away = centres[0] - centres[1:].mean(0)  # away from the other categories
    path = np.stack([centres[0] + s * away / np.linalg.norm(away) for s in np.linspace(0, 30, 40)])
    out = ref.assess(path, as_features(path))
    p = [f.familiarity for f in out]
    assert all(a >= b for a, b in zip(p, p[1:])) and p[0] > 0.3 and p[-1] < ref.alpha
    for f in out:  # "unfamiliar" <=> familiarity < alpha <=> distance above the threshold
        assert f.unfamiliar == (f.familiarity < ref.alpha) == (f.distance > ref.threshold)


def test_a_reference_survives_saving_and_loading(tmp_path, reference):
    ref, centres, _ = reference
    path = ref.save(tmp_path / "enc.familiarity.npz")
    back = fam.Reference.load(path)
    assert np.array_equal(back.calibration, ref.calibration) and back.threshold == ref.threshold
    x = as_features(centres)
    assert [f.as_dict() for f in back.assess(centres, x)] == [f.as_dict() for f in ref.assess(centres, x)]


def test_encoder_features_are_what_the_encoder_computes():
    from s2v_lib.audio import FrontEnd
    from s2v_lib.audio_encoder import AudioEncoder

    model = AudioEncoder(emb_dim=16, hidden=16)
    specs = FrontEnd.preset("toy")(np.random.default_rng(0).normal(0, 0.1, (3, tw.N_SAMPLES)).astype(np.float32))
    emb, feats = fam.encoder_features(model, specs)
    assert np.allclose(emb, model.embed(np.random.default_rng(0).normal(0, 0.1, (3, tw.N_SAMPLES))).numpy(), atol=1e-5)
    width = model.config.get("width", 64)
    assert [f.shape for f in feats] == [(3, 2 * width * c) for c in (1, 2, 4, 8)]  # mean and std of each channel


def test_reference_for_uses_the_saved_reference_only_for_the_weights_it_was_made_for(tmp_path, monkeypatch, reference):
    from s2v_lib.audio_encoder import AudioEncoder, save_audio_encoder

    monkeypatch.setenv("S2V_DATA", str(tmp_path / "data"))
    ref, _, _ = reference
    model = AudioEncoder(emb_dim=16, hidden=16)
    enc = save_audio_encoder(model, tmp_path / "enc.safetensors")
    ref.encoder_key = fam.encoder_key(model)
    ref.save(fam.reference_path(enc))
    built = []
    monkeypatch.setattr(fam, "toy_reference", lambda m: built.append(m) or ref)
    assert fam.reference_for(model, enc, log=lambda *_: None) is not None and not built
    other = AudioEncoder(emb_dim=16, hidden=16)  # other weights: the saved reference does not describe them
    fam.reference_for(other, enc, log=lambda *_: None)
    assert built == [other]


# ----------------------------------------------------------------------------------------------------------------
# a briefly trained encoder, end to end through `s2v familiarity`


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An audio encoder trained briefly on a few hundred toy clips, with its reference saved beside it (as the demo
    saves one), and a private toy-world cache (the frozen models still come from the repository)."""
    import s2v_lib.config as config
    import s2v_lib.registry as registry
    from s2v_lib.audio_encoder import save_audio_encoder
    from s2v_lib.experiment import prepare_experiment, train_variant

    folder = tmp_path_factory.mktemp("familiarity")
    models = config.models_dir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("S2V_DATA", str(folder / "data"))
        mp.setattr(config, "models_dir", lambda: models)
        mp.setattr(registry, "models_dir", lambda: models)
        torch.manual_seed(0)
        exp = prepare_experiment(n_train=320, n_val=100, n_test=100, seed=5)
        v = train_variant(exp, "infonce_l2", "middle", epochs=2)
        enc = save_audio_encoder(v.model, folder / "audio_encoder.safetensors")
        fam.reference_from_experiment(v.model, exp).save(fam.reference_path(enc))
        yield enc


def test_s2v_familiarity_separates_held_out_toy_clips_from_real_recordings(trained, tmp_path, capsys):
    from s2v_lib.cli import main

    with_tools = fam.realworld_sounds(tmp_path / "probe")[0]
    if not with_tools:
        pytest.skip("no real-world recordings here: needs espeak-ng, sox or sound-theme-freedesktop")
    out = tmp_path / "familiarity"
    assert main(["familiarity", "--out", str(out), "--encoder", str(trained), "--clips", "40"]) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert f"{m['auroc']:.3f}" in printed and (out / "scores.csv").exists() and (out / "familiarity.png").exists()
    assert m["n"]["toy"] == 40 and m["n"]["reference"] == 320 and m["n"]["calibration"] == 200
    assert m["auroc"] >= 0.95  # the bar, threshold chosen on separate (calibration) clips
    assert m["unfamiliar_rate"]["toy"] <= 0.1 < 0.5 <= m["unfamiliar_rate"]["real"]
    # not separated by sample rate: toy clips written at 44.1 / 48 kHz are no less familiar than those at 16 kHz
    assert max(m["unfamiliar_rate"][f"toy_{r}_hz"] for r in fam.TEST_RATES) <= 0.15
    # nor by length: real recordings at least a clip long (no tiling) are separated as well
    assert m["auroc_real_at_least_clip_length"] >= 0.9
    # too-short desktop sounds were refused, not drawn: they are listed with their reason
    assert all("too short" in r["reason"] or "not a readable" in r["reason"] for r in m["refused"])
