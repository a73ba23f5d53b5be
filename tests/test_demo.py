import json

import pytest

from s2v_lib.demo import DemoConfig, OutputExists, run_demo

TINY = DemoConfig(n_train=128, n_val=64, n_test=32, epochs=1, n_images=2, sampling_steps=3)


def test_tiny_demo_runs_end_to_end_and_writes_every_output(cache_tmp, tmp_path):
    out = tmp_path / "demo"
    m = run_demo(out, TINY)
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("r_at_1", "r_at_5", "gen_accuracy", "oracle_accuracy", "seconds"):
        assert 0 <= saved[key] <= (1 if key != "seconds" else 1e4)
    assert saved["r_at_1"] <= saved["r_at_5"] <= saved["r_at_10"]
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
