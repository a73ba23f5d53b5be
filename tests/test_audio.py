import numpy as np
import pytest
import soundfile as sf
import torch

from s2v_lib import toyworld as tw
from s2v_lib.audio import AudioError, FrontEnd, fit_length, load_audio, save_wav


def test_front_end_shapes_follow_the_paper_and_the_toy_preset():
    assert FrontEnd.preset("paper").shape == (257, 1007)  # 10 s, window 512, hop 159 (the authors' ~257 x 1004)
    toy = FrontEnd.preset("toy")
    spec = toy(np.zeros((2, tw.N_SAMPLES), dtype=np.float32) + np.random.default_rng(0).normal(0, 0.01, (2, tw.N_SAMPLES)))
    assert spec.shape == (2, 1, *toy.shape)
    assert torch.allclose(spec.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-4)  # per-clip z-score
    assert torch.allclose(spec.std(dim=(1, 2, 3)), torch.ones(2), atol=1e-3)


def test_loudness_survives_per_clip_z_score_thanks_to_the_noise_floor():
    fe = FrontEnd.preset("toy")
    floor = tw.noise_floor(np.random.default_rng(0))
    for cat in range(tw.N_CATEGORIES):
        # where the (fixed) floor sits in the z-scored picture moves monotonically with the source's loudness
        floor_z = []
        for db in (-24, -18, -12, -6):
            src = tw.synth_source(cat, 0.5, db, 1, np.random.default_rng(1))
            floor_z.append(float(torch.quantile(fe(floor + src).flatten(), 0.1)))
        assert np.all(np.diff(floor_z) > 0), (cat, floor_z)
    # whereas scaling the whole clip by the same 18 dB (floor included) is all but erased by the z-score
    a, b = fe(floor + src), fe(8 * (floor + src))
    gain_effect = abs(float(torch.quantile(a.flatten(), 0.1) - torch.quantile(b.flatten(), 0.1)))
    assert gain_effect < (floor_z[-1] - floor_z[0]) / 5


def test_fit_length_tiles_short_and_cuts_long():
    x = torch.arange(5.0)
    assert fit_length(x, 12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert fit_length(torch.arange(20.0), 7).tolist() == list(range(7))
    with pytest.raises(ValueError):
        fit_length(torch.zeros(0), 4)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_load_audio_any_format_rate_and_channels(tmp_path, fmt):
    rate = 44100
    t = np.arange(rate) / rate
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t)], 1).astype(np.float32) * 0.5
    path = tmp_path / f"tone.{fmt}"
    sf.write(path, stereo, rate)
    wave = load_audio(path)
    assert wave.ndim == 1 and abs(len(wave) - 16000) < 1200  # 1 s at 16 kHz (mp3 pads a little)
    spectrum = np.abs(np.fft.rfft(wave[:16000]))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) < 3


def test_load_audio_reads_the_audio_track_of_a_video(tmp_path):
    from s2v_lib.data import write_clip_files

    clip = tw.make_clip(0, 3)
    files = write_clip_files(clip, tmp_path, "clip")
    wave = load_audio(files["mp4"])
    assert abs(len(wave) - tw.N_SAMPLES) < 2048
    n = tw.N_SAMPLES - 4096
    # AAC delays the track by its priming samples: compare at the best lag within 2048 samples
    best = max(np.corrcoef(wave[lag : lag + n], clip.audio[:n])[0, 1] for lag in range(0, 2048))
    assert best > 0.9


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (b"this is not a sound file at all" * 20, "not a readable"), ("truncated", "not a readable|no samples")],
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    if content == "truncated":
        save_wav(tmp_path / "good.wav", np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32))
        path.write_bytes((tmp_path / "good.wav").read_bytes()[:30])
    else:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=reason) as err:
        load_audio(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_nan_and_silent_files_are_refused(tmp_path):
    nan = np.zeros(1000, dtype=np.float32)
    nan[10] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(tmp_path / "nan.wav")
    sf.write(tmp_path / "silent.wav", np.zeros(1000, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="silent"):
        load_audio(tmp_path / "silent.wav")
