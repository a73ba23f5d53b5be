"""`s2v control`: the measurements' logic on a pipeline with a known answer, and the command on a tiny setting."""

import functools
import json

import numpy as np
import pytest
import torch

from s2v_lib import cli, control
from s2v_lib import manipulate as mp
from s2v_lib import toyworld as tw
from s2v_lib.registry import load_image_encoder, load_judge

TINY = dict(n_train=64, n_val=32, n_test=32, epochs=1, pairing="middle", sampling_steps=2, n_volume=2, n_mix=2,
            n_interp=2, interp_steps=3, n_edit=2)  # fmt: skip


def test_monotonic_within_tolerance():
    p = np.array([[0.0, 0.1, 0.5, 0.9, 1.0],  # rises
                  [0.0, 0.3, 0.25, 0.8, 0.9],  # dips by 0.05 < tolerance
                  [0.0, 0.6, 0.3, 0.8, 0.9],  # dips by 0.3
                  [0.2, 0.2, 0.2, 0.2, 0.2],  # flat: never rises
                  [0.9, 0.5, 0.2, 0.1, 0.0]])  # fmt: skip
    assert control.monotonic(p, 0.1).tolist() == [True, True, False, False, False]
    assert control.monotonic(p, 0.5)[2]


def test_heldout_sounds_cycle_through_the_categories_and_pairs_differ():
    stems = control.heldout_stems(10, seed=77)
    assert [s.category for s in stems] == [i % tw.N_CATEGORIES for i in range(10)]
    assert all(len(s.clip.sources) == 1 for s in stems)
    pairs = control.mixture_pairs(stems, 20, seed=0)
    assert len(pairs) == 20 and all(stems[i].category != stems[j].category for i, j in pairs)
    frame = control.best_frame(stems[0])
    assert any((frame == f).all() for f, v in zip(stems[0].clip.frames, stems[0].clip.visible) if v)


class _Perfect:
    """A stand-in for the trained pipeline whose answer is known: the 'embedding' of a sound is its RMS level in dB,
    and the 'generator' draws a hum (category 0) whose size follows the world's loudness -> size map."""

    def __init__(self, floor_db=tw.NOISE_FLOOR_DB):
        self.floor_db = floor_db

    def embed(self, waves):
        return torch.tensor([[mp.rms_db(w)] for w in waves], dtype=torch.float32)

    def generate(self, embeds, n=1, seed=0, **_):
        # the level of source + floor, back to the source's level while sounding (roughly), then to a size
        sizes = tw.loudness_to_size(embeds[:, 0].numpy() + 3.0)
        return np.stack([[tw.render_object(0, float(s), 0.5, seed=seed + i)] for i, s in enumerate(sizes)])


def test_volume_measure_finds_the_size_that_a_perfect_pipeline_draws():
    fake = _Perfect()
    ctrl = control.Controller(fake, fake, load_judge(), load_image_encoder("toy"), steps=1)
    stems = [mp.toy_stems(5000, i, category=0) for i in range(3)]
    lo, hi = tw.LOUDNESS_RANGE_DB
    m = control.measure_volume(ctrl, stems, levels_db=(lo, (lo + hi) / 2, hi))
    assert m["volume_size_spearman"] > 0.9
    assert m["volume_size_px_per_db"] > 0
    assert m["_images"].shape[:2] == (3, 3)


def test_s2v_control_on_a_tiny_setting_writes_its_metrics_and_refuses_to_overwrite(tmp_path, cache_tmp, monkeypatch,
                                                                                    capsys):  # fmt: skip
    monkeypatch.setattr(control, "ControlConfig", functools.partial(control.ControlConfig, **TINY))
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    assert cli.main(["control", "--out", str(out)]) == 1
    assert "--force" in capsys.readouterr().err
    assert cli.main(["control", "--out", str(out), "--force"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("mix_both_rate", "mix_both_rate_single", "interp_monotonic_rate", "edit_direction_rate"):
        assert 0.0 <= m[key] <= 1.0, key
    assert "volume_size_spearman" in m and "volume_size_spearman_whole_clip" in m
    # the authors' density scaling keeps a whole-clip gain visible after the per-clip z-score; raw |STFT|^2 does not
    assert m["frontend_dz_per_db_toy"] > 5 * m["frontend_dz_per_db_raw_power"]
    assert m["frontend_dz_per_db_paper"] > 5 * m["frontend_dz_per_db_raw_power"]
    assert m["interp_tolerance"] == pytest.approx(0.1) and m["seeds"] == [1] and m["tuning_seed"] == 0
    for fig in ("volume.png", "volume_size.png", "mixing.png", "interpolation.png", "editing.png"):
        assert (out / fig).stat().st_size > 0, fig
    assert (out / "audio_encoder.safetensors").exists() and list((out / "sounds").glob("*.wav"))
    assert "source louder against the floor" in capsys.readouterr().out
