import json

import pytest

from s2v_lib.demo import DemoConfig, OutputExists, run_demo

TINY = DemoConfig(n_train=128, n_val=64, n_test=32, epochs=1, n_images=2, sampling_steps=3)


def test_tiny_demo_runs_end_to_end_and_writes_every_output(cache_tmp, tmp_path):
    out = tmp_path / "demo"
    m = run_demo(out, TINY)
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("r_at_1", "r_at_5", "gen_top1_accuracy", "gen_accuracy", "oracle_top1_accuracy", "seconds"):
        assert key in saved, key
    assert saved["r_at_1"] <= saved["r_at_5"] <= saved["r_at_10"]  # a recall at a larger k is never smaller
    assert saved["seeds"] == [1] and saved["tuning_seed"] == 0 and saved["r_at_k_chance"]["r_at_1"] == 1 / 32
    # SSL top-1 pairing (the default) finds the sounding object far more often than the middle frame does
    assert m["paired_frame_shows_source"] > m["middle_frame_shows_source"] + 0.2
    assert sum(m["ssl_selection"].values()) >= 1
    assert (out / "gallery.png").stat().st_size > 10_000 and (out / "training_curve.png").exists()
    assert len(list((out / "sounds").glob("*.wav"))) >= 4
    assert (out / "audio_encoder.safetensors").exists()
    # a second run never silently overwrites the first one's results
    with pytest.raises(OutputExists, match="--force"):
        run_demo(out, TINY)
    assert json.loads((out / "metrics.json").read_text()) == saved


def test_two_seeds_give_intervals_and_the_tuning_seed_is_refused(cache_tmp, tmp_path):
    from dataclasses import replace

    m = run_demo(tmp_path / "two", replace(TINY, seeds=(1, 2)))
    for key in ("gen_top1_accuracy", "r_at_1", "oracle_top1_accuracy"):
        x = m[key]
        assert len(x["per_seed"]) == 2 and x["ci95"][0] <= x["mean"] <= x["ci95"][1], key
    assert m["seeds"] == [1, 2] and m["excluded_seeds"] == {}
    with pytest.raises(ValueError, match="tuning seed"):
        run_demo(tmp_path / "tuning", replace(TINY, seeds=(0,)))


def test_a_diverging_seed_is_excluded_and_counted_never_averaged(cache_tmp, tmp_path, monkeypatch):
    from dataclasses import replace

    from s2v_lib import losses

    real = losses.LOSSES["infonce_l2"]
    calls = {}

    def nan_on_seed_2(a, v):  # the loss of seed 2's training becomes NaN
        return real(a, v) * float("nan") if calls.get("poison") else real(a, v)

    import s2v_lib.experiment as experiment

    train_variant = experiment.train_variant

    def poisoned(exp, *args, **kw):
        calls["poison"] = exp.seed == 2
        return train_variant(exp, *args, **kw)

    monkeypatch.setitem(losses.LOSSES, "infonce_l2", nan_on_seed_2)
    monkeypatch.setattr("s2v_lib.demo.train_variant", poisoned)
    m = run_demo(tmp_path / "nan", replace(TINY, seeds=(1, 2)))
    assert m["seeds"] == [1] and list(m["excluded_seeds"]) == [2] and "nan" in m["excluded_seeds"][2].lower()
    assert isinstance(m["gen_top1_accuracy"], float)  # one seed left: its figures, not an average with NaN
