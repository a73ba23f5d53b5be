import json
import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from s2v_lib.audio_encoder import AudioEncoder, save_audio_encoder
from s2v_lib.cli import main


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "s2v_lib.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)  # fmt: skip


def test_unknown_command_or_option_is_a_usage_error():
    for args in (["fly"], ["demo", "--colour", "red"], []):
        r = run(*args)
        assert r.returncode == 2 and "usage:" in r.stderr


def test_existing_output_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text('{"r_at_1": 0.5}')
    assert main(["demo", "--out", str(tmp_path)]) == 1
    assert "--force" in capsys.readouterr().err
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"r_at_1": 0.5}


def test_full_profile_without_data_or_offline_says_what_is_missing(tmp_path):
    r = run("demo", "--out", str(tmp_path / "unused"), env={"S2V_PROFILE": "full", "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 1 and "--data DIR" in r.stderr and "S2V_PROFILE=toy" in r.stderr
    clips = tmp_path / "clips"
    clips.mkdir()
    r = run("demo", "--data", str(clips), "--out", str(tmp_path / "out"),
            env={"S2V_PROFILE": "full", "HF_HUB_OFFLINE": "1", "S2V_UNCLIP_REPO": "sd2-community/stable-diffusion-2-1-unclip"})  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "sd2-community/stable-diffusion-2-1-unclip" in r.stderr and "hf download" in r.stderr


def test_generate_processes_good_files_and_reports_bad_ones(tmp_path, capsys):
    enc = save_audio_encoder(AudioEncoder(), tmp_path / "enc.safetensors")
    good = tmp_path / "tone.flac"
    t = np.arange(30000) / 22050  # another rate, stereo, not the clip length
    sf.write(good, np.stack([np.sin(2 * np.pi * 300 * t)] * 2, 1) * 0.3, 22050)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000), 16000)
    out = tmp_path / "pics"
    rc = main(["generate", str(empty), str(good), str(silent), "--out", str(out), "--encoder", str(enc), "--n", "2"])
    captured = capsys.readouterr().out
    assert rc == 1  # some failed
    assert f"{empty}: empty file" in captured and f"{silent}: silent" in captured
    assert sorted(p.name for p in out.glob("tone_*.png")) == ["tone_0.png", "tone_1.png", "tone_grid.png"]
    report = json.loads((out / "generated.json").read_text())
    assert set(report["failed"]) == {str(empty), str(silent)}


def test_generate_without_a_trained_encoder_says_to_run_the_demo(tmp_path, capsys):
    rc = main(["generate", "x.wav", "--out", str(tmp_path), "--encoder", str(tmp_path / "none.safetensors")])
    assert rc == 1 and "s2v demo" in capsys.readouterr().err
