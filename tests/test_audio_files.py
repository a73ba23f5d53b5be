"""Reading sound files as users have them: truncated, header-only, very short, 8/24-bit, 96 kHz, 6 channels, an hour."""

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from s2v_lib.audio import MIN_SECONDS, AudioError, AudioWarning, _decode_with_av, load_audio, read_sound


def tone(seconds, rate, freq=440.0, channels=1, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, 1) if channels > 1 else x


def peak_hz(wave, rate=16000):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.argmax(spectrum) * rate / len(wave)


def truncate(path, keep_bytes):
    data = path.read_bytes()
    path.write_bytes(data[:keep_bytes])
    return path


def test_a_truncated_wav_is_read_as_far_as_it_goes_with_a_one_line_warning(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(3.0, 16000), 16000, subtype="PCM_16")
    truncate(path, 44 + int(1.2 * 16000) * 2)  # header + 1.2 s of 16-bit samples; the header still promises 3 s
    with pytest.warns(AudioWarning) as record:
        wave = load_audio(path)
    (w,) = record
    message = str(w.message)
    assert str(path) in message and "\n" not in message
    assert "promises 3.00 s" in message and "holds 1.20 s" in message and "read 1.20 s" in message
    assert abs(len(wave) - 1.2 * 16000) <= 1
    # reading only what the encoder hears still says the file is truncated, and how much was read
    rec = read_sound(path, max_seconds=0.5)
    assert rec.flagged and "holds 1.20 s" in rec.warnings[0] and "read 0.50 s" in rec.warnings[0]
    # a complete file gives no warning
    sf.write(tmp_path / "whole.wav", tone(3.0, 16000), 16000)
    assert not read_sound(tmp_path / "whole.wav").warnings


def test_truncated_to_a_fraction_of_a_second_is_refused_naming_both_problems(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(3.0, 16000), 16000, subtype="PCM_16")
    truncate(path, 44 + int(0.07 * 16000) * 2)  # the case: 0.07 s left of 3 s
    with pytest.raises(AudioError) as err:
        read_sound(path, min_seconds=MIN_SECONDS)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg and "truncated" in msg and "too short" in msg and "0.070 s" in msg


def test_header_only_files_are_refused(tmp_path):
    wav = tmp_path / "header.wav"
    sf.write(wav, tone(2.0, 16000), 16000, subtype="PCM_16")
    truncate(wav, 44)
    with pytest.raises(AudioError, match="header only") as err:
        read_sound(wav)
    assert "promises 2.00 s" in str(err.value)
    flac = tmp_path / "header.flac"
    sf.write(flac, tone(2.0, 16000), 16000)
    truncate(flac, 42 + 8)  # fLaC + STREAMINFO and a few bytes
    with pytest.raises(AudioError, match="promises 2.00 s") as err:
        read_sound(flac)
    assert str(flac) in str(err.value) and "\n" not in str(err.value)


def test_a_truncated_flac_is_read_as_far_as_it_decodes_with_a_warning(tmp_path):
    path = tmp_path / "cut.flac"
    rng = np.random.default_rng(0)
    sf.write(path, (tone(4.0, 16000) + rng.normal(0, 0.05, 64000)).astype(np.float32), 16000)
    truncate(path, path.stat().st_size // 2)
    rec = read_sound(path)
    assert rec.flagged and "promises 4.00 s" in rec.warnings[0]
    assert 1.0 < rec.seconds < 3.0 and len(rec.wave) == pytest.approx(rec.seconds * 16000, abs=2)


def _faststart_copy(src, dst):
    """Remux an mp4 with its index (moov) first, as streaming-friendly files are: a cut then leaves a readable head."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("audio", "video")}
        for packet in inp.demux():
            if packet.dts is not None and packet.stream.index in streams:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)


def test_truncated_mp4_is_refused_or_read_with_a_warning_never_silently(tmp_path):
    from s2v_lib import toyworld as tw
    from s2v_lib.data import write_clip_files

    mp4 = write_clip_files(tw.make_clip(0, 3), tmp_path, "clip")["mp4"]
    fast = tmp_path / "fast.mp4"
    _faststart_copy(mp4, fast)
    assert not read_sound(fast).warnings  # whole: no warning
    truncate(mp4, mp4.stat().st_size // 2)  # index at the end, cut off: nothing can be decoded
    with pytest.raises(AudioError) as err:
        read_sound(mp4)
    assert str(mp4) in str(err.value) and "\n" not in str(err.value)
    truncate(fast, int(fast.stat().st_size * 0.6))  # index first: the head decodes, the rest is missing
    rec = read_sound(fast)
    assert rec.flagged and "truncated" in rec.warnings[0] and rec.seconds < 1.9


def test_a_10_ms_clip_is_refused_under_the_documented_minimum(tmp_path):
    path = tmp_path / "blip.wav"
    sf.write(path, tone(0.01, 16000), 16000)
    with pytest.raises(AudioError, match="too short") as err:
        read_sound(path, min_seconds=MIN_SECONDS)
    assert f"minimum is {MIN_SECONDS:g} s" in str(err.value)
    assert len(load_audio(path)) == 160  # the library reads it when asked to (min_seconds=0: the authors' tiling)
    sf.write(tmp_path / "enough.wav", tone(MIN_SECONDS + 0.01, 16000), 16000)
    assert read_sound(tmp_path / "enough.wav", min_seconds=MIN_SECONDS).seconds >= MIN_SECONDS


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_24", "PCM_32", "FLOAT"])
def test_8_24_32_bit_and_float_pcm_read_at_the_right_level_and_pitch(tmp_path, subtype):
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, tone(1.0, 16000, amp=0.5), 16000, subtype=subtype)
    wave = load_audio(path)
    assert abs(np.max(np.abs(wave)) - 0.5) < 0.02 and abs(peak_hz(wave) - 440) < 2
    assert abs(np.mean(wave)) < 0.01  # 8-bit PCM is unsigned: centred, not offset by half the range


def test_the_ffmpeg_fallback_reads_unsigned_8_bit_centred(tmp_path):
    path = tmp_path / "u8.wav"
    sf.write(path, tone(1.0, 16000, amp=0.5), 16000, subtype="PCM_U8")
    data, rate, _, damaged = _decode_with_av(path)
    assert rate == 16000 and not damaged
    assert abs(np.mean(data)) < 0.01 and abs(np.max(np.abs(data)) - 0.5) < 0.02


def test_96_khz_and_6_channels_become_16_khz_mono(tmp_path):
    path = tmp_path / "surround.wav"
    x = tone(1.5, 96000, freq=1000.0, channels=6)
    x[:, 3] = 0.0  # an LFE-like silent channel
    sf.write(path, x, 96000, subtype="PCM_24")
    rec = read_sound(path, max_seconds=2.0)
    assert rec.file_rate == 96000 and rec.channels == 6 and rec.seconds == pytest.approx(1.5)
    assert rec.wave.ndim == 1 and abs(len(rec.wave) - 24000) <= 1 and abs(peak_hz(rec.wave) - 1000) < 2


def test_an_hour_long_file_is_read_only_as_far_as_needed_in_bounded_memory(tmp_path):
    rate, channels = 48000, 2
    path = tmp_path / "hour.wav"
    head = np.random.default_rng(0).normal(0, 0.1, (5 * rate, channels)).astype(np.float32)
    sf.write(path, head, rate, subtype="PCM_16")
    n = 3600 * rate * channels * 2  # one hour of 16-bit stereo: 691 MB, made sparse (no disk used)
    with open(path, "r+b") as f:
        f.seek(4)
        f.write((36 + n).to_bytes(4, "little"))
        f.seek(40)
        f.write(n.to_bytes(4, "little"))
        f.truncate(44 + n)
    assert sf.info(str(path)).duration == pytest.approx(3600)
    tracemalloc.start()
    rec = read_sound(path, max_seconds=2.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(rec.wave) == 32000 and not rec.warnings and rec.header_seconds == pytest.approx(3600)
    assert peak < 30e6  # the whole hour as float32 would be 1.4 GB


def test_other_formats_read_without_false_truncation_warnings(tmp_path):
    for ext in ("flac", "ogg", "mp3"):
        path = tmp_path / f"tone.{ext}"
        sf.write(path, tone(2.5, 44100, channels=2), 44100)
        for max_seconds in (None, 2.0):
            rec = read_sound(path, max_seconds=max_seconds)
            assert not rec.warnings, (ext, max_seconds, rec.warnings)
            assert abs(peak_hz(rec.wave) - 440) < 3
