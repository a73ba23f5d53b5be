import json

import numpy as np
import pytest

from s2v_lib.limits import LimitsConfig, ridge_probe, run_limits


def test_ridge_probe_recovers_a_linear_attribute_on_held_out_points():
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=8), rng.normal(size=(300, 8))
    y = x @ w + 2.0
    pred = ridge_probe(x[:200], y[:200], x[200:], lam=1e-6)
    assert np.abs(pred - y[200:]).max() < 1e-3
    # and it cannot read what the features do not hold
    noise = rng.normal(size=300)
    assert np.abs(ridge_probe(x[:200], noise[:200], x[200:], lam=1e-6) - noise[200:]).mean() > 0.5


def test_limits_measures_every_stage_beside_a_constant_guess(tmp_path):
    m = run_limits(tmp_path, LimitsConfig(n_train=64, n_test=24, n_draws=1, steps=2, seeds=(1,)))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / "limits.png").exists() and saved["command"] == "s2v limits --seeds 1"
    for attr in ("size", "shade"):
        for key in ("constant_guess", "judge_on_real_frames", "image_embedding_probe", "generator_from_true_frame"):
            assert np.isfinite(saved[f"{attr}_{key}"])
        # the yardstick reads the attribute off real frames better than a constant guess does
        assert m[f"{attr}_judge_on_real_frames"] < m[f"{attr}_constant_guess"]


def test_limits_refuses_the_tuning_seed(tmp_path):
    with pytest.raises(ValueError, match="tuning seed"):
        run_limits(tmp_path, LimitsConfig(seeds=(0,)))
