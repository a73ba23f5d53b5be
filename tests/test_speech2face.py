"""Speech to face: CelebV-HQ-style folders, the Resemblyzer speaker encoder, the closed-form linear map, and the whole
path end to end on tiny random-weight instances of the real classes (open_clip ViT, StableUnCLIPImg2ImgPipeline).

Clips are written by the test (PyAV): identity i speaks at pitch 150 + 40 i Hz and its face frames have brightness
40 + 20 i, so a voice really says something about the face and the fitted map can be checked on unseen identities.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("S2V_QUIET", "1")
torch.set_num_threads(1)
pytest.importorskip("av")

from test_video import H, W, write_video  # noqa: E402

from s2v_lib import speech2face as S  # noqa: E402
from s2v_lib.registry import ModelError  # noqa: E402

N_IDS, CLIPS_PER_ID = 8, 2


def pitch(i: int) -> float:
    return 150.0 + 40.0 * i


def brightness(i: int) -> int:
    return 40 + 20 * i


def write_face_clip(path, i: int, j: int, seconds: float = 2.0):
    """Identity i, clip j: a 'face' of brightness 40 + 20 i (a little per-frame texture) and a voice at its pitch."""
    rng = np.random.default_rng(100 * i + j)

    def frame(k):
        img = np.full((H, W, 3), brightness(i), np.uint8)
        img[rng.integers(0, H, 20), rng.integers(0, W, 20)] = 255  # texture, different in every frame
        return img

    def voice(t):
        f0 = pitch(i) * (1 + 0.02 * j)
        wave = sum(0.25 / h * np.sin(2 * np.pi * h * f0 * t) for h in (1, 2, 3)) * (
            0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
        )
        return wave[None]

    return write_video(path, fps=12.5, seconds=seconds, rate=22050, channels=1, audio=voice, frame=frame)


@pytest.fixture(scope="module")
def celebv(tmp_path_factory):
    """A CelebV-HQ-style folder: celebvhq_info.json (with two clips whose videos are gone) + 35666/NAME.mp4."""
    root = tmp_path_factory.mktemp("celebv")
    clips = {}
    for i in range(N_IDS):
        ytb = f"yt{i:02d}abcdefg"
        for j in range(CLIPS_PER_ID):
            name = f"{ytb}_{j}"
            write_face_clip(root / "35666" / f"{name}.mp4", i, j, seconds=2.0 + 0.5 * j)
            clips[name] = {"ytb_id": ytb, "duration": {"start_sec": 10.0, "end_sec": 12.0 + 0.5 * j},
                           "bbox": {"top": 0, "bottom": 1, "left": 0, "right": 1},
                           "attributes": {"appearance": [0] * 40, "action": [0] * 35,
                                          "emotion": {"sep_flag": False, "labels": "neutral"}}}  # fmt: skip
    clips["goneVideo01_0"] = clips["goneVideo01_1"] = {"ytb_id": "goneVideo01"}
    (root / S.CELEBV_INFO).write_text(json.dumps({"meta_info": {"appearance_mapping": [], "action_mapping": []},
                                                  "clips": clips}))  # fmt: skip
    return root


class PitchSpeaker:
    """A stand-in frozen speaker encoder (a plain callable, not an nn.Module): [spectral centroid / 1000, 1]."""

    dim = 2

    def __call__(self, waves):
        x = torch.as_tensor(waves, dtype=torch.float32)
        power = torch.fft.rfft(x).abs().square()
        freqs = torch.fft.rfftfreq(x.shape[1], 1 / 16000)
        centroid = (power * freqs).sum(1) / power.sum(1)
        return torch.stack([centroid / 1000, torch.ones_like(centroid)], 1)


class MeanColourEncoder:
    """A stand-in frozen image encoder: a frame's mean brightness / 255 and a constant."""

    dim = 2

    def encode(self, frames):
        f = np.asarray(frames, dtype=np.float32)
        return torch.tensor(np.stack([f.mean((1, 2, 3)) / 255, np.ones(len(f))], 1), dtype=torch.float32)


# ----------------------------------------------------------------------------------------------------------------
# data


def test_celebv_folder_reads_the_info_json_and_splits_by_identity(celebv):
    folder = S.CelebVFolder(celebv)
    assert len(folder) == N_IDS * CLIPS_PER_ID and sorted(folder.absent) == ["goneVideo01_0", "goneVideo01_1"]
    rec = next(r for r in folder.records if r.name == "yt03abcdefg_1")
    assert (rec.identity, rec.duration, rec.seconds) == ("yt03abcdefg", 2.5, S.SPEECH_SECONDS)
    splits = {}
    for r in folder.records:
        splits.setdefault(r.identity, set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values())  # an identity is never on both sides
    test_ids = [i for i, s in splits.items() if s == {"test"}]
    assert len(test_ids) == 2  # ceil(0.2 * 8)
    assert [r.split for r in S.CelebVFolder(celebv).records] == [r.split for r in folder.records]  # deterministic
    assert len(folder.subset("test")) == 4 and len(S.CelebVFolder(celebv, split="train")) == 12
    # a decoded clip: 6 s of 16 kHz mono (tiled from 2 s), 60 frames at 10 fps
    clip = folder.load(rec)
    assert clip.audio.shape == (96_000,) and clip.frames.shape == (60, H, W, 3) and clip.tiled
    assert abs(clip.frames.mean() - brightness(3)) < 5


def test_csv_metadata_and_no_metadata(celebv, tmp_path):
    csv = tmp_path / "meta.csv"
    csv.write_text("clip_id,speaker,split\nyt00abcdefg_0.mp4,alice,test\nyt00abcdefg_1,alice,train\n"
                   "yt01abcdefg_0,bob,\n")  # fmt: skip
    folder = S.CelebVFolder(celebv, info=csv)
    assert [(r.name, r.identity, r.split) for r in folder.records] == [
        ("yt00abcdefg_0", "alice", "test"), ("yt00abcdefg_1", "alice", "train"), ("yt01abcdefg_0", "bob", "train"),
    ]  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\na,b\n")
    with pytest.raises(ValueError, match="clip column"):
        S.read_celebv_info(bad)
    # no metadata at all: every video is a clip, its identity the name less _N
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "x.mp4").write_bytes((celebv / "35666" / "yt05abcdefg_1.mp4").read_bytes())
    (rec,) = S.CelebVFolder(tmp_path / "bare").records
    assert (rec.name, rec.identity) == ("x", "x")
    assert S.face_frames(6.0, 4) == [7, 22, 37, 52] and S.face_frames(6.0, 1) == [30]


# ----------------------------------------------------------------------------------------------------------------
# the speaker encoder


def test_resemblyzer_encoder_contract_on_a_tiny_random_instance():
    torch.manual_seed(0)
    enc = S.ResemblyzerEncoder(hidden=16, layers=1, emb=8)
    t = np.arange(3 * 16000) / 16000
    waves = np.stack([0.3 * np.sin(2 * np.pi * 200 * t), 0.3 * np.sin(2 * np.pi * 600 * t)]).astype(np.float32)
    e = enc(waves)
    assert e.shape == (2, 8) and (e >= 0).all() and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    # one clip's embedding does not depend on the batch; volume normalisation only raises quiet clips
    assert torch.allclose(enc(waves[1:]), e[1:], atol=1e-6)
    assert torch.allclose(enc(waves * 0.01), enc(waves * 0.001), atol=1e-5)  # below -30 dBFS: brought up to it
    # partial windows as Resemblyzer's compute_partial_slices: 1.6 s windows every 77 frames (rate 1.3)
    assert enc.partial_slices(48_000) == [0, 77, 154] and enc.partial_slices(8_000) == [0]
    with pytest.raises(ValueError, match="samples"):
        enc(np.zeros((2, 0), np.float32))


def test_missing_resemblyzer_weights_fail_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setattr(S, "resemblyzer_weights", lambda: None)
    with pytest.raises(ModelError) as err:
        S.load_speaker_encoder()
    msg = str(err.value)
    assert "pip install --no-deps resemblyzer==0.1.4" in msg and "S2V_PROFILE=toy" in msg and "\n" not in msg
    (tmp_path / "pretrained.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not Resemblyzer's VoiceEncoder weights"):
        S.load_speaker_encoder(weights=tmp_path / "pretrained.pt")


@pytest.mark.skipif(S.resemblyzer_weights() is None, reason="resemblyzer is not installed (pip install --no-deps)")
def test_real_resemblyzer_weights_give_the_original_embedding():
    """Reference: Resemblyzer 0.1.4's own VoiceEncoder.embed_utterance on this waveform (librosa 0.11 mel)."""
    enc = S.load_speaker_encoder()
    enc.normalize_volume = False  # embed_utterance itself does not normalise
    t = np.arange(16000 * 3) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 180 * t * (1 + 0.1 * np.sin(2 * np.pi * 3 * t)))).astype(np.float32)
    e = enc(wave[None])[0].numpy()
    largest = {20: 0.24363, 102: 0.23001, 120: 0.22456, 238: 0.20627}  # the original's 4 largest of 137 non-zero
    assert e.shape == (256,) and abs(np.linalg.norm(e) - 1) < 1e-5
    assert (e > 0).sum() == 137
    for i, v in largest.items():
        assert abs(e[i] - v) < 2e-3, (i, e[i])


def _original_resemblyzer():
    try:
        import resemblyzer

        return resemblyzer
    except Exception:  # needs librosa and webrtcvad, which the course does not install
        return None


@pytest.mark.skipif(_original_resemblyzer() is None, reason="Resemblyzer's own dependencies are not installed")
def test_matches_the_original_voice_encoder_bit_for_bit():
    resemblyzer = _original_resemblyzer()
    original = resemblyzer.VoiceEncoder("cpu", verbose=False)
    ours = S.load_speaker_encoder()
    rng = np.random.default_rng(0)
    for n in (20_000, 48_000, 100_000):
        t = np.arange(n) / 16000
        wave = (0.2 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)
        quiet = resemblyzer.normalize_volume(wave, -30, increase_only=True).astype(np.float32)
        np.testing.assert_allclose(ours(wave[None])[0].numpy(), original.embed_utterance(quiet), atol=1e-4)


# ----------------------------------------------------------------------------------------------------------------
# the linear map


def test_fit_face_map_recovers_a_linear_map_and_ridge_shrinks_it():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g) * 5
    a, b = torch.randn(6, 4, generator=g), torch.randn(4, generator=g)
    y = x @ a + b
    fitted = S.fit_face_map(x.numpy(), y.numpy(), ridge=0.0)
    torch.testing.assert_close(fitted.linear.weight.T, a, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fitted.linear.bias, b, atol=1e-4, rtol=1e-4)
    shrunk = S.fit_face_map(x, y, ridge=10.0)
    assert shrunk.linear.weight.norm() < 0.5 * fitted.linear.weight.norm()
    # the relative ridge does not depend on the scale of the speaker embeddings
    torch.testing.assert_close(S.fit_face_map(x * 100, y, ridge=1.0)(x * 100), S.fit_face_map(x, y, ridge=1.0)(x))
    with pytest.raises(ValueError, match="same N"):
        S.fit_face_map(x, y[:10])


def test_voices_predict_faces_of_unseen_identities(celebv, tmp_path):
    """Informative stand-ins (pitch <-> brightness): the map fitted on 6 identities places the 2 unseen ones."""
    folder = S.CelebVFolder(celebv)
    cache = S.precompute_face_features(folder, MeanColourEncoder(), tmp_path / "cache", frames_per_clip=3)
    assert cache.embeds.shape == (16, 3, 2) and cache.audio.shape == (16, 96_000) and cache.failed == []
    assert cache.frames[0].tolist() == S.face_frames(6.0, 3)
    voices = S.speaker_embeddings(PitchSpeaker(), cache.audio)
    faces = cache.embeds.mean(1)
    split = {r.clip_id: r.split for r in folder.records}
    train = np.array([split[c] == "train" for c in cache.ids])
    face_map = S.fit_face_map(voices[train], faces[train], ridge=1e-6)
    predicted = face_map(torch.as_tensor(voices)).detach().numpy()
    ident = {r.clip_id: r.identity for r in folder.records}
    m = S.evaluate_face_map(predicted[~train], faces[~train], [ident[c] for c in np.array(cache.ids)[~train]])
    assert m["identity_at_1"] == 1.0  # the nearest true face is of the speaker's own identity
    assert abs(predicted[~train, 0] - faces[~train, 0]).max() < 0.03  # brightness within ~8 grey levels
    mean_face = S.evaluate_face_map(np.repeat(faces[train].mean(0, keepdims=True), (~train).sum(), 0), faces[~train])
    assert m["cosine"] > mean_face["cosine"]


# ----------------------------------------------------------------------------------------------------------------
# the whole path on tiny instances of the real classes


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    open_clip = pytest.importorskip("open_clip")
    pytest.importorskip("diffusers")
    from s2v_lib import full

    folder = tmp_path_factory.mktemp("open_clip_cfg")
    (folder / "s2v-test-tiny-vit-16.json").write_text(json.dumps(full.tiny_openclip_config(embed_dim=16)))
    open_clip.add_model_config(folder)
    torch.manual_seed(0)
    encoder = full.load_openclip_image_encoder("cpu", name="s2v-test-tiny-vit-16", pretrained=None)
    generator = full.StableUnCLIPGenerator(full.build_stable_unclip_pipeline("tiny", seed=0), steps=4)
    torch.manual_seed(0)
    return encoder, generator, S.ResemblyzerEncoder(hidden=16, layers=1, emb=8)


def test_speech_to_face_end_to_end(celebv, tiny_models, tmp_path):
    encoder, generator, speaker = tiny_models
    out = tmp_path / "run"
    m = S.run_speech_to_face(celebv, out, image_encoder=encoder, generator=generator, speaker_encoder=speaker,
                             device="cpu", frames_per_clip=2, n_show=3, n_images=2, workers=1)  # fmt: skip
    assert m["clips"] == {"train": 12, "test": 4, "failed": 0, "absent": 2}
    assert set(m["test"]) >= {"r_at_1", "r_at_5", "identity_at_1", "cosine", "chance_r_at_1"}
    assert m["train"]["cosine"] >= m["test"]["cosine"] - 1e-6 or m["train"]["r_at_1"] >= m["test"]["r_at_1"]
    assert json.loads((out / "metrics.json").read_text())["clips"]["test"] == 4
    assert (out / "gallery.png").stat().st_size > 0
    # the saved map reproduces the path: speech -> speaker embedding -> map -> image_embeds -> Stable unCLIP
    face_map = S.load_face_map(out / "face_map.safetensors")
    assert face_map.config == {"d_in": 8, "d_out": 16}
    cache = S.precompute_face_features(S.CelebVFolder(celebv), encoder, tmp_path / "again", frames_per_clip=2)
    pipeline = S.SpeechToFace(speaker, face_map, generator)
    waves = np.asarray(cache.audio[:2], np.float32)
    e = pipeline.embed(waves)
    torch.testing.assert_close(e, face_map(speaker(waves)))
    faces = pipeline.generate(waves, n=2, seed=0)
    assert faces.shape == (2, 2, 16, 16, 3) and faces.dtype == np.uint8
    np.testing.assert_array_equal(faces, generator.generate(e, n=2, seed=0))


def test_speech_to_face_offline_fails_first_naming_the_model(celebv, tmp_path, monkeypatch):
    from s2v_lib import full

    monkeypatch.delenv(full.UNCLIP_REPO_SETTING, raising=False)
    with pytest.raises(ModelError, match=f"Stable unCLIP .*hf download {full.UNCLIP_REPO_MIRROR}"):
        S.run_speech_to_face(celebv, tmp_path / "x", device="cpu")
    assert not (tmp_path / "x").exists()  # nothing decoded or written before the models are there


# ----------------------------------------------------------------------------------------------------------------
# under torchrun: the process group is joined, the caching sharded, rank 0 alone draws


def _torchrun_worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    """What torchrun gives each process: RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT in the environment."""
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), HF_HUB_OFFLINE="1")  # fmt: skip
    from s2v_lib import full

    generator = full.StableUnCLIPGenerator(full.build_stable_unclip_pipeline("tiny", seed=0), steps=2)
    tiny = full.build_stable_unclip_pipeline("tiny", seed=0)
    encoder = full.unclip_image_encoder(tiny)  # the tiny pipeline's own image tower (16-d)
    torch.manual_seed(0)
    speaker = S.ResemblyzerEncoder(hidden=16, layers=1, emb=8)
    m = S.run_speech_to_face(root, out, image_encoder=encoder, generator=generator, speaker_encoder=speaker,
                             device="cpu", frames_per_clip=2, n_show=2, n_images=1, workers=1, batch_clips=4)  # fmt: skip
    import torch.distributed as dist

    (Path(out) / f"rank{rank}.json").write_text(json.dumps({"metrics": m, "group_left": not dist.is_initialized()}))


def test_speech_to_face_under_torchrun_shards_the_caching(celebv, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    torch.multiprocessing.spawn(_torchrun_worker, args=(2, port, str(celebv), str(out)), nprocs=2, join=True)
    r0, r1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r1["metrics"] == {} and r0["metrics"]["clips"] == {"train": 12, "test": 4, "failed": 0, "absent": 2}
    assert r0["group_left"] and r1["group_left"]  # it joined the group torchrun described, and left it
    from s2v_lib.video import FeatureCache

    cache = FeatureCache(out / "cache")
    assert cache.meta["world_used"] == 2 and len(cache) == 16  # two shards, merged in index order
    assert (out / "gallery.png").stat().st_size > 0 and (out / "face_map.safetensors").exists()
