"""``s2v generate`` on sounds from the wild: familiarity per sound, bad files one line each, the exit status."""

import json

import numpy as np
import pytest
import soundfile as sf

from s2v_lib import familiarity as fam
from s2v_lib import toyworld as tw
from s2v_lib.audio_encoder import AudioEncoder, save_audio_encoder
from s2v_lib.cli import main
from s2v_lib.data import write_clip_files
from s2v_lib.generate import EXIT_FLAGGED, EXIT_REFUSED


def encoder_with_reference(folder, calibration_scale: float):
    """A (random) encoder saved with a reference beside it. The reference's calibration distances are scaled so
    that every sound is unfamiliar (tiny scale) or familiar (huge scale): the tests here are about the plumbing;
    tests/test_familiarity.py measures the statistic itself."""
    model = AudioEncoder()
    enc = save_audio_encoder(model, folder / "enc.safetensors")
    waves = np.random.default_rng(0).normal(0, 0.1, (12, tw.N_SAMPLES)).astype(np.float32)
    emb, feats = fam.encoder_features(model, model.front_end(waves))
    ref = fam.Reference.fit(emb[:8], np.arange(8) % tw.N_CATEGORIES, [f[:8] for f in feats], [f[8:] for f in feats],
                            k=2, encoder_key=fam.encoder_key(model), source="test")  # fmt: skip
    ref.calibration = np.sort(np.resize(ref.calibration, 200)) * calibration_scale  # alpha 0.01 needs >= 99 clips
    ref.save(fam.reference_path(enc))
    return enc


def tone(seconds, rate, channels=1, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    x = (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, 1) if channels > 1 else x


def test_every_bad_file_is_one_line_the_others_are_drawn_and_the_exit_status_says_so(tmp_path, capsys):
    enc = encoder_with_reference(tmp_path, 1e9)
    files = {}

    def put(name, data, rate, **kw):
        files[name] = tmp_path / name
        sf.write(files[name], data, rate, **kw)

    put("eight_bit.wav", tone(1.0, 8000), 8000, subtype="PCM_U8")
    put("surround_96k_24bit.wav", tone(1.5, 96000, channels=6), 96000, subtype="PCM_24")
    put("long.flac", tone(12.0, 22050, channels=2), 22050)
    put("cut.wav", tone(3.0, 16000), 16000, subtype="PCM_16")
    files["cut.wav"].write_bytes(files["cut.wav"].read_bytes()[: 44 + 2 * 16000])  # 1 s left of 3 s: flagged
    put("blip_10ms.wav", tone(0.01, 16000), 16000)
    put("cut_to_70ms.wav", tone(3.0, 16000), 16000, subtype="PCM_16")
    files["cut_to_70ms.wav"].write_bytes(files["cut_to_70ms.wav"].read_bytes()[: 44 + 2 * 1120])
    put("header_only.wav", tone(2.0, 16000), 16000, subtype="PCM_16")
    files["header_only.wav"].write_bytes(files["header_only.wav"].read_bytes()[:44])
    files["empty.wav"] = tmp_path / "empty.wav"
    files["empty.wav"].write_bytes(b"")
    files["noise.mp4"] = tmp_path / "noise.mp4"
    files["noise.mp4"].write_bytes(np.random.default_rng(0).bytes(5000))
    nan = tone(1.0, 16000)
    nan[100] = np.nan
    put("nan.wav", nan, 16000, subtype="FLOAT")
    put("cut.flac", tone(4.0, 16000) + np.random.default_rng(1).normal(0, 0.05, 64000).astype(np.float32), 16000)
    files["cut.flac"].write_bytes(files["cut.flac"].read_bytes()[: files["cut.flac"].stat().st_size // 2])
    files["cut.mp4"] = write_clip_files(tw.make_clip(0, 1), tmp_path, "clip")["mp4"]
    files["cut.mp4"].write_bytes(files["cut.mp4"].read_bytes()[: files["cut.mp4"].stat().st_size // 2])
    put("hour.wav", tone(5.0, 48000, channels=2), 48000, subtype="PCM_16")
    n = 3600 * 48000 * 2 * 2  # the header says one hour of 16-bit stereo; the file is made sparse (no disk used)
    with open(files["hour.wav"], "r+b") as f:
        f.seek(40)
        f.write(n.to_bytes(4, "little"))
        f.truncate(44 + n)
    out = tmp_path / "pics"
    rc = main(["generate", *map(str, files.values()), "--out", str(out), "--encoder", str(enc), "--n", "1"])
    lines = capsys.readouterr().out.splitlines()
    refused = ["blip_10ms.wav", "cut_to_70ms.wav", "header_only.wav", "empty.wav", "noise.mp4", "nan.wav", "cut.mp4"]
    drawn = ["eight_bit.wav", "surround_96k_24bit.wav", "long.flac", "cut.wav", "cut.flac", "hour.wav"]
    assert rc == EXIT_REFUSED
    for name in refused:  # exactly one line each, naming the file
        assert len([x for x in lines if str(files[name]) in x]) == 1, name
    assert [x for x in lines if str(files["cut_to_70ms.wav"]) in x][0].count("too short") == 1
    warned = [x for x in lines if x.startswith("warning:")]
    assert len(warned) == 2 and str(files["cut.wav"]) in warned[0] and "holds 1.00 s" in warned[0]
    assert str(files["cut.flac"]) in warned[1] and "promises 4.00 s" in warned[1]
    report = json.loads((out / "generated.json").read_text())
    assert set(report["failed"]) == {str(files[n]) for n in refused}
    assert set(report["written"]) == set(report["familiarity"]) == {str(files[n]) for n in drawn}
    assert set(report["flagged"]) == {str(files["cut.wav"]), str(files["cut.flac"])}
    for name in drawn:
        assert (out / f"{files[name].stem}_grid.png").exists()
        assert report["familiarity"][str(files[name])]["nearest"] in tw.CATEGORY_NAMES


def test_a_truncated_file_alone_is_flagged_by_the_exit_status(tmp_path, capsys):
    enc = encoder_with_reference(tmp_path, 1e9)
    path = tmp_path / "cut.wav"
    sf.write(path, tone(3.0, 16000), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[: 44 + 2 * 24000])
    args = ["generate", str(path), "--out", str(tmp_path / "o"), "--encoder", str(enc), "--n", "1"]
    assert main(args) == EXIT_FLAGGED
    sf.write(path, tone(3.0, 16000), 16000, subtype="PCM_16")  # whole again
    assert main(args) == 0


@pytest.mark.parametrize("scale, unfamiliar", [(1e-9, True), (1e9, False)])
def test_each_sound_says_how_familiar_it_is_and_unfamiliar_ones_are_still_drawn_with_a_hint(tmp_path, capsys, scale,
                                                                                           unfamiliar):  # fmt: skip
    enc = encoder_with_reference(tmp_path, scale)
    path = tmp_path / "speechlike.wav"
    sf.write(path, tone(2.5, 22050, freq=180.0), 22050)
    out = tmp_path / "pics"
    assert main(["generate", str(path), "--out", str(out), "--encoder", str(enc), "--n", "2"]) == 0  # not an error
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.startswith(str(path)))
    assert "nearest toy sound" in line and "familiarity" in line
    assert ("UNFAMILIAR" in line) == unfamiliar
    hint = [x for x in printed.splitlines() if x.startswith("note:")]
    assert bool(hint) == unfamiliar
    if unfamiliar:  # the toy world's vocabulary, and where real sounds belong
        assert all(name in hint[0] for name in tw.CATEGORY_NAMES) and "S2V_PROFILE=full" in hint[0]
    report = json.loads((out / "generated.json").read_text())
    assert report["familiarity"][str(path)]["unfamiliar"] == unfamiliar
    assert report["unfamiliar"] == ([str(path)] if unfamiliar else [])
    assert len(report["written"][str(path)]) == 2 and (out / "speechlike_grid.png").exists()  # drawn either way
