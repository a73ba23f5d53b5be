import numpy as np
import pytest
import soundfile as sf
import torch

from s2v_lib import toyworld as tw
from s2v_lib.audio import AudioError, FrontEnd, fit_length, load_audio, save_wav


def _authors_spectrogram(x: np.ndarray, nperseg=512, noverlap=353, n=160000, pad=0) -> np.ndarray:
    """The authors' data loader (a2s_dataloader.py) in float64 with scipy, for a mono float waveform: tile, cut, clip,
    scipy.signal.spectrogram with its defaults, log(S + 1e-7), z-score (population std) + 1e-9. Clips shorter than a
    tenth of the clip length are tiled to fill it (the course's documented deviation from np.tile(x, 10))."""
    from scipy import signal

    x = np.resize(np.asarray(x, dtype=np.float64), n) if len(x) * 10 < n else np.tile(np.asarray(x, np.float64), 10)[:n]
    x = np.clip(x, -1.0, 1.0)
    if pad:
        x = np.pad(x, pad)
    _, _, spec = signal.spectrogram(x, 16000, nperseg=nperseg, noverlap=noverlap)
    spec = np.log(spec + 1e-7)
    return (spec - np.mean(spec)) / (np.std(spec) + 1e-9)


def _signals(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(n) / 16000
    stereo = np.stack([0.2 * np.sin(2 * np.pi * 700 * t), 0.05 * rng.normal(0, 1, n)], 1)
    return {
        "quiet": 1e-3 * rng.normal(0, 1, n),
        "very quiet tone": 3e-5 * np.sin(2 * np.pi * 300 * t) + 1e-5 * rng.normal(0, 1, n),
        "loud": 0.9 * np.sin(2 * np.pi * 1000 * t),
        "clipped (beyond +-1)": 3 * np.sin(2 * np.pi * 200 * t) + 0.5 * rng.normal(0, 1, n),
        "short, tiled": 0.2 * np.sin(2 * np.pi * 500 * t[: int(0.37 * n)]) + 0.01 * rng.normal(0, 1, int(0.37 * n)),
        "0.3 s": 0.2 * np.sin(2 * np.pi * 500 * t[:4800]) + 0.01 * rng.normal(0, 1, 4800),
        "tone plus noise": 0.1 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.normal(0, 1, n),
        "DC offset": 0.3 + 0.05 * np.sin(2 * np.pi * 50 * t),
        "stereo, mixed down": stereo.mean(1),
        "toy clip": np.resize(tw.make_clip(0, 1).audio.astype(np.float64), n),
    }


@pytest.mark.parametrize("name", list(_signals(16000)))
def test_paper_preset_is_the_authors_scipy_spectrogram(name):
    fe = FrontEnd.preset("paper")
    x = _signals(160000)[name]
    ref = _authors_spectrogram(x)
    ours = fe(x.astype(np.float32))[0, 0].double().numpy()
    assert fe.shape == ref.shape == ours.shape == (257, 1004)
    assert np.abs(ours - ref).max() <= 1e-3


@pytest.mark.parametrize("name", ["quiet", "clipped (beyond +-1)", "toy clip", "0.3 s"])
def test_toy_preset_is_the_same_formula_on_padded_2_s_clips(name):
    fe = FrontEnd.preset("toy")
    x = _signals(tw.N_SAMPLES)[name]
    ref = _authors_spectrogram(x, fe.nperseg, fe.noverlap, fe.n_samples, pad=fe.pad)
    ours = fe(x.astype(np.float32))[0, 0].double().numpy()
    assert ours.shape == ref.shape == fe.shape
    assert np.abs(ours - ref).max() <= 1e-3


def test_digital_silence_gives_the_references_all_zero_picture_and_batches_work():
    fe = FrontEnd.preset("toy")
    spec = fe(np.zeros((3, tw.N_SAMPLES), np.float32))
    assert spec.shape == (3, 1, *fe.shape) and torch.equal(spec, torch.zeros_like(spec))
    assert np.allclose(_authors_spectrogram(np.zeros(tw.N_SAMPLES), fe.nperseg, fe.noverlap, fe.n_samples, fe.pad), 0)


def test_toy_preset_hears_every_sample_and_the_paper_preset_does_not():
    toy, paper = FrontEnd.preset("toy"), FrontEnd.preset("paper")
    assert toy.coverage().min() >= 0.5  # every sample gets at least half weight in some window
    assert paper.coverage()[0] == 0 and (paper.coverage()[-11:] == 0).all()  # as the authors: first and last 11 unheard
    # an impulse anywhere in a toy clip changes its spectrogram (every position near the edges, a stride elsewhere)
    rng = np.random.default_rng(0)
    base = (0.01 * rng.normal(0, 1, tw.N_SAMPLES)).astype(np.float32)
    positions = np.unique(np.r_[np.arange(0, 700), np.arange(700, tw.N_SAMPLES - 700, 37), np.arange(tw.N_SAMPLES - 700, tw.N_SAMPLES)])
    ref = toy(base)
    for chunk in np.array_split(positions, 8):
        waves = np.repeat(base[None], len(chunk), 0)
        waves[np.arange(len(chunk)), chunk] += 0.5
        change = (toy(waves) - ref).abs().amax(dim=(1, 2, 3))
        assert (change > 1e-2).all(), chunk[(change <= 1e-2).numpy()]


def test_toy_preset_shows_each_categorys_pitch_range():
    """Ground truth: the lowest and the highest pitch of every category put their strongest frequency in different
    bins, at least the category's pitch ratio apart (the drum spans 55-155 Hz, two octaves below the old preset's
    127 Hz bins)."""
    fe = FrontEnd.preset("toy")
    freqs = np.arange(fe.shape[0]) * fe.sample_rate / fe.nperseg
    for c, cat in enumerate(tw.CATEGORIES):
        peak = []
        for pitch in (0.0, 1.0):
            x = tw.synth_source(c, pitch, -25.0, 1, np.random.default_rng(0), events=[(0.1, 1.8)])
            psd = fe.power_density(x.astype(np.float32))[0].mean(-1).numpy()
            peak.append(freqs[np.argmax(psd)])
        assert peak[1] > 1.5 * peak[0], (cat.name, peak)


def test_a_whole_clip_gain_changes_the_z_scored_picture_because_the_floor_is_absolute():
    """With the authors' density scaling most bins of a normal-level clip sit near the 1e-7 floor: a quieter clip
    puts more of its bins there, so the per-clip z-score keeps the level (it would erase it without the floor)."""
    fe = FrontEnd.preset("toy")
    x = tw.make_clip(0, 5).audio
    at_floor = []
    for gain_db in (-20, -10, 0, 10):
        s = fe.power_density(x * 10 ** (gain_db / 20))
        at_floor.append(float((s < 1e-7).float().mean()))
    assert np.all(np.diff(at_floor) < 0), at_floor
    quiet, loud = fe(x * 0.1), fe(x)
    assert (quiet - loud).abs().mean() > 0.05
    # without the floor (or with raw |STFT|^2, far above it) the z-score erases a gain: log(c^2 S) = log S + const
    s = fe.power_density(x)
    z = lambda logs: (logs - logs.mean()) / logs.std()  # noqa: E731
    assert (z(torch.log(s * 0.01)) - z(torch.log(s))).abs().max() < 1e-4


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
