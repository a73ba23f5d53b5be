"""Waveform and latent operations: what each does to the numbers, and the documented handling of bad input."""

import warnings

import numpy as np
import pytest
import torch

from s2v_lib import manipulate as mp
from s2v_lib import toyworld as tw
from s2v_lib.audio import FrontEnd


def _tone(n=16000, rate=16000, f=440.0, amp=0.1):
    return (amp * np.sin(2 * np.pi * f * np.arange(n) / rate)).astype(np.float32)


def test_gain_in_db():
    x = _tone()
    assert np.allclose(mp.apply_gain(x, 20 * np.log10(2)), 2 * x, atol=1e-7)
    assert np.allclose(mp.apply_gain(x, -20), x / 10, atol=1e-7)
    assert mp.rms_db(mp.apply_gain(x, 6.0)) == pytest.approx(mp.rms_db(x) + 6.0, abs=1e-4)


def test_toy_stems_add_up_to_the_clip_and_the_floor_is_the_worlds():
    for config in (None, tw.WorldConfig(p_mixture=1.0)):
        s = mp.toy_stems(5000, 3, config)
        assert np.allclose(s.floor + s.source, s.clip.audio, atol=1e-6)
        assert mp.rms_db(s.floor) == pytest.approx(tw.NOISE_FLOOR_DB, abs=0.01)
        assert np.allclose(s.render(), s.clip.audio, atol=1e-6)


def test_plus_6_db_doubles_the_source_against_the_floor():
    s = mp.toy_stems(5000, 1, category=0)
    louder = s.render(20 * np.log10(2))
    assert np.allclose(louder - s.floor, 2 * s.source, atol=1e-6)  # the floor is untouched
    ratio = mp.rms_db(louder - s.floor) - mp.rms_db(s.floor)
    assert ratio == pytest.approx(mp.rms_db(s.source) - tw.NOISE_FLOOR_DB + 6.02, abs=0.01)


def test_both_volume_edits_change_what_the_front_end_sees_and_in_the_same_direction():
    """The authors' density front end keeps a whole-clip gain (its 1e-7 floor is absolute), and a source made
    louder against the room changes the picture too: in both, a louder clip has more bins above the floor."""
    fe = FrontEnd.preset("toy")
    s = mp.toy_stems(5000, 2, category=3)

    def above_floor(wave):
        return float((fe.power_density(np.clip(wave, -1, 1)) > 1e-7).float().mean())

    base = fe(s.render())
    for db in (-12, 12):
        whole, source = mp.apply_gain(s.render(), db, on_clip="keep"), s.render(db)
        assert (fe(whole) - base).abs().mean() > 0.02 and (fe(source) - base).abs().mean() > 0.02
        sign = np.sign(db)
        assert sign * (above_floor(whole) - above_floor(s.render())) > 0
        assert sign * (above_floor(source) - above_floor(s.render())) > 0


def test_gain_that_clips_warns_and_clips_or_raises_or_keeps():
    x = _tone(amp=0.5)
    with pytest.warns(mp.ClippingWarning, match="0 dBFS"):
        y = mp.apply_gain(x, 12)
    assert np.abs(y).max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="0 dBFS"):
        mp.apply_gain(x, 12, on_clip="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.abs(mp.apply_gain(x, 12, on_clip="keep")).max() > 1.9
        mp.apply_gain(x, -3)  # no clipping, no warning


def test_mix_at_a_ratio_and_with_one_gain_changed():
    a, b = _tone(f=300), _tone(f=1200)
    assert np.allclose(mp.mix(a, b, 0.5), 0.5 * a + 0.5 * b, atol=1e-7)
    assert np.allclose(mp.mix(a, b, 0.0), a) and np.allclose(mp.mix(a, b, 1.0), b)
    assert np.allclose(mp.mix(a, b, 0.5, gain_db=20 * np.log10(2)), 0.5 * a + b, atol=1e-7)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mp.mix(a, b, 1.2)


def test_mixing_different_sample_rates_resamples_to_16k():
    a = _tone(16000, 16000)
    b = _tone(8000, 8000)  # one second at 8 kHz
    out = mp.mix(a, b, 0.5, rate_b=8000)
    assert out.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) - 440) <= 1  # both tones at 440 Hz after resampling: one peak


def test_mixing_different_lengths_pads_or_trims_or_refuses():
    a, b = _tone(16000), _tone(4000)
    padded = mp.mix(a, b, 0.5)
    assert len(padded) == 16000 and np.allclose(padded[4000:], 0.5 * a[4000:])
    assert len(mp.mix(a, b, 0.5, length="trim")) == 4000
    with pytest.raises(ValueError, match="differ in length"):
        mp.mix(a, b, length="error")
    with pytest.raises(ValueError, match="length must be"):
        mp.mix(a, b, length="stretch")


def test_mix_that_clips_warns():
    with pytest.warns(mp.ClippingWarning):
        out = mp.mix(_tone(amp=0.9), _tone(amp=0.9), 0.5, gain_db=12)
    assert np.abs(out).max() <= 1.0


def test_interpolation_goes_from_start_to_end_and_refuses_weights_outside_0_1():
    a, b = torch.zeros(4), torch.arange(4.0)
    path = mp.interpolate(a, b, [0, 0.25, 1])
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b) and torch.allclose(path[1], 0.25 * b)
    assert torch.allclose(mp.interpolate(a, b, 0.5), 0.5 * b)
    for bad in (1.5, -0.1, float("nan"), [0.2, 1.01]):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            mp.interpolate(a, b, bad)
    with pytest.raises(ValueError, match="two"):
        mp.interpolate(a, torch.zeros(5), 0.5)


class _LevelEncoder:
    """A stand-in audio encoder: the embedding is the waveform's RMS level in dB, then zeros."""

    def embed(self, waves):
        w = torch.as_tensor(np.asarray(waves, dtype=np.float64))
        level = 20 * torch.log10(w.square().mean(1).sqrt())
        return torch.nn.functional.pad(level[:, None].float(), (0, 3))


def test_edit_direction_moves_the_image_embedding_along_loud_minus_quiet():
    x = _tone()
    d = mp.sound_direction(_LevelEncoder(), mp.apply_gain(x, 6), mp.apply_gain(x, -6))
    assert d.shape == (4,) and d[0] == pytest.approx(12.0, abs=1e-3) and torch.all(d[1:] == 0)
    z = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert torch.allclose(mp.edit_embedding(z, d, 0.5), z + 0.5 * d)
    rows = mp.edit_embedding(z, d, [-1.0, 0.0, 1.0])
    assert rows.shape == (3, 4) and torch.allclose(rows[1], z) and rows[2, 0] - rows[0, 0] == pytest.approx(24.0)
    with pytest.raises(ValueError, match="finite"):
        mp.edit_embedding(z, d, float("inf"))
