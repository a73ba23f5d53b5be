"""Real-data loading: CSV index, file-name resolution, PyAV decoding at odd rates, SSL JSON and feature caches.

Every video here is written by the test with PyAV: each frame carries its own number as a 7-bit barcode (black/white
stripes that survive H.264), so the tests can tell exactly which source frame was sampled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("S2V_QUIET", "1")
torch.set_num_threads(1)
av = pytest.importorskip("av")

from s2v_lib import video as V  # noqa: E402

W, H, STRIPE = 112, 64, 16


def barcode(k: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    for b in range(7):
        if (k >> b) & 1:
            img[:, b * STRIPE : (b + 1) * STRIPE] = 255
    return img


def read_barcodes(frames: np.ndarray) -> np.ndarray:
    scale = frames.shape[2] / W
    cols = ((np.arange(7) + 0.5) * STRIPE * scale).astype(int)
    bits = frames[:, frames.shape[1] // 2, cols, 0] > 128
    return (bits * (1 << np.arange(7))).sum(1)


def sized_barcode(width: int, height: int):
    """Barcode frames stretched to ``width`` x ``height`` (read_barcodes reads any width)."""
    cols = (np.arange(width) * W // width).clip(0, W - 1)
    rows = (np.arange(height) * H // height).clip(0, H - 1)
    return lambda k: np.ascontiguousarray(barcode(k)[rows][:, cols])


def write_video(path, fps=Fraction(10), seconds=3.0, rate=44100, channels=2, audio=None, video=True,
                acodec="aac", sample_fmt="fltp", frame=barcode, size=(W, H)):  # fmt: skip
    """``frame(k) -> uint8 [height, width, 3]`` (default: barcode k) at ``fps`` and ``audio(t) -> [channels, n]``
    (default: 440 Hz at 0.6 in the left channel only); ``size`` = (width, height). Other test modules write their
    clips with it too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fps = Fraction(fps)
    if size != (W, H) and frame is barcode:
        frame = sized_barcode(*size)
    with av.open(str(path), "w") as out:
        vs = None
        if video:
            vs = out.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        aus = None
        if audio is not False:
            aus = out.add_stream(acodec, rate=rate)
            aus.layout = "stereo" if channels == 2 else "mono"
        if vs is not None:
            for k in range(int(round(seconds * fps))):
                f = av.VideoFrame.from_ndarray(frame(k), format="rgb24")
                f.pts, f.time_base = k, 1 / fps
                for p in vs.encode(f):
                    out.mux(p)
            for p in vs.encode():
                out.mux(p)
        if aus is not None:
            t = np.arange(int(seconds * rate)) / rate
            if audio is None:
                tone = 0.6 * np.sin(2 * np.pi * 440 * t)
                data = np.stack([tone, np.zeros_like(tone)])[:channels]
            else:
                data = np.asarray(audio(t), dtype=np.float64).reshape(channels, -1)
            if sample_fmt == "s16":
                arr = (np.clip(data, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
            else:
                arr = data.astype(np.float32)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=sample_fmt, layout=aus.layout.name)
            af.sample_rate, af.pts = rate, 0
            for p in aus.encode(af):
                out.mux(p)
            for p in aus.encode():
                out.mux(p)
    return path


def expected_index(fps: float, video_seconds: float) -> np.ndarray:
    t = np.arange(100) / 10
    t = np.where(t >= video_seconds, np.mod(t, video_seconds), t)
    return np.floor(t * fps + 1e-6).astype(int)


# ----------------------------------------------------------------------------------------------------------------
# decoding


@pytest.mark.parametrize("fps", [Fraction(15, 2), Fraction(30000, 1001)], ids=["7.5fps", "29.97fps"])
def test_short_stereo_44k_clip_at_odd_rate_decodes_to_10s_16k_mono_100_frames(tmp_path, fps):
    path = write_video(tmp_path / "clip.mp4", fps=fps, seconds=3.0, rate=44100, channels=2)
    clip = V.decode_clip(path)
    # audio: 10 s, 16 kHz, mono = channel mean (left 0.6 sine, right silent -> 0.3 sine), tiled from ~3 s
    assert clip.audio.shape == (160_000,) and clip.audio.dtype == np.float32
    assert clip.audio_rate == 44100 and clip.audio_channels == 2 and clip.tiled
    assert abs(clip.audio_seconds - 3.0) < 0.05
    assert abs(np.sqrt(np.mean(clip.audio[:40_000] ** 2)) - 0.3 / np.sqrt(2)) < 0.01
    assert np.argmax(np.abs(np.fft.rfft(clip.audio[:16_000]))) == 440  # 1 Hz bins over 1 s
    period = int(round(clip.audio_seconds * 16_000))
    np.testing.assert_array_equal(clip.audio[period : 2 * period], clip.audio[:period])  # tiled, as the authors do
    # frames: 100 at 10 fps whatever the source rate, each the source frame on screen at i / 10 s, tiled after ~3 s
    assert clip.frames.shape == (100, H, W, 3) and clip.frames.dtype == np.uint8
    assert abs(clip.source_fps - float(fps)) < 1e-6
    assert clip.source_frames == int(round(3.0 * fps))
    assert abs(clip.video_seconds - clip.source_frames / float(fps)) < 1e-6
    shown = read_barcodes(clip.frames)
    np.testing.assert_array_equal(shown, clip.frame_index)
    np.testing.assert_array_equal(shown, expected_index(float(fps), clip.video_seconds))
    if fps < 10:  # fewer than 10 frames a second: frames repeat, none is skipped
        assert len(np.unique(shown[:20])) < 20 and set(range(shown[:20].max() + 1)) <= set(shown[:20])


def test_full_video_is_cut_from_its_start_with_audio_aligned(tmp_path):
    # 12 s at 25 fps, mono 48 kHz: silence before 3.0 s, a 1 kHz tone after
    path = write_video(tmp_path / "full.mp4", fps=25, seconds=12.0, rate=48000, channels=1,
                       audio=lambda t: 0.5 * np.sin(2 * np.pi * 1000 * t) * (t >= 3.0))  # fmt: skip
    clip = V.decode_clip(path, start=1.5)
    assert not clip.tiled and clip.audio.shape == (160_000,) and clip.start == 1.5
    shown = read_barcodes(clip.frames)
    on_screen = 37 + (np.arange(100) * 2.5 + 0.5 + 1e-6).astype(int)  # 1.5 s * 25 fps = frame 37.5
    np.testing.assert_array_equal(shown, on_screen % 128)  # 7-bit barcodes
    env = np.abs(clip.audio).reshape(100, 1600).max(1)  # per 0.1 s
    assert env[:14].max() < 0.02 and env[16:].min() > 0.4  # the tone starts 1.5 s into the clip
    # resizing while decoding keeps the frames identifiable
    small = V.decode_clip(path, start=1.5, size=32, audio=False)
    assert small.frames.shape == (100, 32, 56, 3) and small.audio is None
    np.testing.assert_array_equal(read_barcodes(small.frames), shown)


def test_packed_int16_audio_in_mkv(tmp_path):
    path = write_video(tmp_path / "clip.mkv", fps=10, seconds=10.0, rate=22050, channels=2, acodec="pcm_s16le",
                       sample_fmt="s16", audio=lambda t: np.stack([0.5 * np.sin(2 * np.pi * 300 * t)] * 2))  # fmt: skip
    clip = V.decode_clip(path)
    assert clip.audio_rate == 22050 and clip.audio_channels == 2 and not clip.tiled
    np.testing.assert_array_equal(read_barcodes(clip.frames), np.arange(100))  # 10 fps source: frame i is frame i
    assert np.argmax(np.abs(np.fft.rfft(clip.audio[:16_000]))) == 300
    assert abs(np.abs(clip.audio).max() - 0.5) < 0.02


def test_missing_and_corrupt_videos_raise_one_line_errors_naming_the_file(tmp_path):
    good = write_video(tmp_path / "good.mp4", seconds=2.0)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "garbage.mp4").write_bytes(os.urandom(4096))
    silent_video = write_video(tmp_path / "noaudio.mp4", audio=False)
    import soundfile as sf

    sf.write(tmp_path / "sound.wav", np.zeros(1600, np.float32) + 0.1, 16000)
    cases = {"missing.mp4": "no such file", "empty.mp4": "empty file", "garbage.mp4": "not a readable video",
             "truncated.mp4": "", "noaudio.mp4": "no audio track", "sound.wav": "no video stream"}  # fmt: skip
    for name, reason in cases.items():
        with pytest.raises(V.VideoError) as err:
            V.decode_clip(tmp_path / name)
        msg = str(err.value)
        assert str(tmp_path / name) in msg and reason in msg and "\n" not in msg, msg
    # the track-less video is still usable for frames only
    assert V.decode_clip(silent_video, audio=False).frames.shape[0] == 100


# ----------------------------------------------------------------------------------------------------------------
# index and file names


def test_read_index_vggsound_headerless_and_named_columns(tmp_path):
    vgg = tmp_path / "vggsound.csv"
    vgg.write_text('---g-f_I2yQ,1,people marching,test\n--0PQM4-hqg,30,"race car, auto racing",train\n'
                   "abc_def-123,12,race car, auto racing,train\n\n")  # fmt: skip
    recs = V.read_index(vgg)
    assert [(r.youtube_id, r.start, r.label, r.split) for r in recs] == [
        ("---g-f_I2yQ", 1.0, "people marching", "test"),
        ("--0PQM4-hqg", 30.0, "race car, auto racing", "train"),
        ("abc_def-123", 12.0, "race car, auto racing", "train"),
    ]
    assert recs[1].clip_id == "--0PQM4-hqg_30000_40000"  # the authors' SSL JSON key
    named = tmp_path / "vegas.csv"
    named.write_text("split,YTID,class,start_seconds\ntrain,xyz,dog,2.5\n")
    (r,) = V.read_index(named)
    assert (r.youtube_id, r.start, r.label, r.split, r.clip_id) == ("xyz", 2.5, "dog", "train", "xyz_2500_12500")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,1,x,train\nb,soon,x,train\n")
    with pytest.raises(ValueError, match=r"bad\.csv:2"):
        V.read_index(bad)


def test_resolver_accepts_the_known_file_namings(tmp_path):
    root = tmp_path / "videos"
    names = {"mirror": "sub/a/AAAAAAAAAAA_000030.mp4", "secs": "BBBBBBBBBBB_12_22.mkv",
             "ms": "deep/x/y/CCCCCCCCCCC_5000_15000.mp4", "plain": "DDDDDDDDDDD.mp4"}  # fmt: skip
    for name in names.values():
        write_video(root / name, seconds=1.0)
    recs = [V.ClipRecord("AAAAAAAAAAA", 30, "a"), V.ClipRecord("BBBBBBBBBBB", 12, "b"),
            V.ClipRecord("CCCCCCCCCCC", 5, "c"), V.ClipRecord("DDDDDDDDDDD", 40, "d"),
            V.ClipRecord("EEEEEEEEEEE", 0, "e")]  # fmt: skip
    folder = V.VideoFolder(root, recs)
    assert folder.resolve(recs[0]) == (root / names["mirror"], 0.0)
    assert folder.resolve(recs[1]) == (root / names["secs"], 0.0)
    assert folder.resolve(recs[2]) == (root / names["ms"], 0.0)
    assert folder.resolve(recs[3]) == (root / names["plain"], 40.0)  # a full video: cut from the start time
    assert folder.missing() == [recs[4]]
    with pytest.raises(V.VideoError, match="EEEEEEEEEEE_000000.*EEEEEEEEEEE_0_10000"):
        folder.resolve(recs[4])
    # the plain file is only 1 s long: taken as an already cut clip instead of failing
    clip = folder.load(recs[3])
    assert clip.start == 0.0 and clip.notes and clip.frames.shape[0] == 100
    # without a CSV, ids and starts are read from the names
    parsed = {(r.youtube_id, r.start) for r in V.VideoFolder(root).records}
    assert parsed == {("AAAAAAAAAAA", 30.0), ("BBBBBBBBBBB", 12.0), ("CCCCCCCCCCC", 5.0), ("DDDDDDDDDDD", 0.0)}
    assert len(V.VideoFolder(root, recs, labels=["a", "b"])) == 2


# ----------------------------------------------------------------------------------------------------------------
# SSL JSON


def test_topk_json_formats_round_trip_and_validation(tmp_path):
    scores = np.zeros(100)
    scores[[47, 46, 45, 23, 42, 9, 44, 56, 27, 17]] = np.arange(10, 0, -1)
    boxes = np.tile([0.0, 0.0, 1.0, 1.0], (100, 1))
    boxes[47] = [10, 20, 110, 120]
    entry = V.topk_entry(scores, boxes)
    assert entry == {"top1_box": [10.0, 20.0, 110.0, 120.0], "top10_moments": [47, 46, 45, 23, 42, 9, 44, 56, 27, 17]}
    entries = {"9fhhMaXTraI_44000_54000": entry, "G_JwMzRLRNo_252000_262000": V.topk_entry(np.arange(100.0))}
    for fmt in ("s2v", "authors"):
        path = V.write_topk_json(tmp_path / f"{fmt}.json", entries, format=fmt)
        assert V.read_topk_json(path) == entries
    assert json.loads((tmp_path / "s2v.json").read_text())["9fhhMaXTraI_44000_54000"]["top1_box"] == [10, 20, 110, 120]
    assert isinstance(json.loads((tmp_path / "authors.json").read_text()), list)
    # the README's plain layout {clip: [frames]}: the authors', numbered from 1 unless the file says otherwise
    (tmp_path / "plain.json").write_text(json.dumps({"k_0_10000": [3, 2, 1]}))
    plain = V.read_topk_json(tmp_path / "plain.json")
    assert plain == {"k_0_10000": {"top1_box": None, "top10_moments": [2, 1, 0]}} and plain.frame_base == 1
    assert V.read_topk_json(tmp_path / "plain.json", frame_base=0)["k_0_10000"]["top10_moments"] == [3, 2, 1]
    bad_entries = ({"c": {"top1_box": [1, 2, 3], "top10_moments": [1]}}, {"c": {"top10_moments": [1.5]}},
                   {"c": {"top10_moments": [100]}}, {"c": {"top10_moments": []}}, {"c": "soon"})  # fmt: skip
    for bad in bad_entries:  # strict: the first bad entry fails the file, naming it
        (tmp_path / "bad.json").write_text(json.dumps({**bad, "ok_0_10000": {"top10_moments": [0, 5]}}))
        with pytest.raises(ValueError, match=r"bad\.json: clip c"):
            V.read_topk_json(tmp_path / "bad.json", strict=True)
        # default: skipped and counted, the good entries kept
        got = V.read_topk_json(tmp_path / "bad.json")
        assert list(got) == ["ok_0_10000"] and [s["id"] for s in got.skipped] == ["c"], bad
        assert "clip c" in got.skipped[0]["error"] and "\n" not in got.skipped[0]["error"]
    (tmp_path / "notjson.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        V.read_topk_json(tmp_path / "notjson.json")
    with pytest.raises(ValueError, match="NaN"):
        V.topk_entry([0.1, float("nan")])


def test_frame_numbering_is_decided_stated_and_applied(tmp_path):
    """Inside the library frame i is the one on screen at i / 10 s (0-99). A file numbered from 1 (the authors', by
    their README's "47th frame" and ffmpeg's numbering) is shifted on reading; the content decides when it can."""
    authors = [{"a_0_10000": [0, 0, 1, 1]}, {"a_0_10000": [48, 1, 2], "b_0_10000": [100, 7]}]
    (tmp_path / "authors.json").write_text(json.dumps(authors))
    got = V.read_topk_json(tmp_path / "authors.json")
    assert got.frame_base == 1 and "frame 100" in got.frame_base_reason
    assert got["a_0_10000"]["top10_moments"] == [47, 0, 1] and got["b_0_10000"]["top10_moments"] == [99, 6]
    authors[1]["b_0_10000"] = [0, 7]  # a 0: numbered from 0
    (tmp_path / "authors.json").write_text(json.dumps(authors))
    got = V.read_topk_json(tmp_path / "authors.json")
    assert got.frame_base == 0 and got["a_0_10000"]["top10_moments"] == [48, 1, 2]
    authors[1]["b_0_10000"] = [5, 7]  # nothing decides: the authors' layout counts from 1
    (tmp_path / "authors.json").write_text(json.dumps(authors))
    got = V.read_topk_json(tmp_path / "authors.json")
    assert got.frame_base == 1 and "47th frame" in got.frame_base_reason
    # our own layout is written from 0 and read back as written; the authors' layout is written from 1
    entries = {"a_0_10000": {"top1_box": None, "top10_moments": [47, 1]}}
    V.write_topk_json(tmp_path / "s2v.json", entries)
    V.write_topk_json(tmp_path / "auth.json", entries, format="authors")
    assert json.loads((tmp_path / "s2v.json").read_text())["a_0_10000"]["top10_moments"] == [47, 1]
    assert json.loads((tmp_path / "auth.json").read_text())[1]["a_0_10000"] == [48, 2]
    assert V.read_topk_json(tmp_path / "s2v.json") == V.read_topk_json(tmp_path / "auth.json") == entries
    # and the frame it names is the one cached: a 10 fps barcode video, SSL file from 1 naming "the 48th frame"
    rec = V.ClipRecord("numbered001", 0.0)
    write_video(tmp_path / "v" / "numbered001_000000.mp4", fps=10, seconds=10.0)
    (tmp_path / "one.json").write_text(json.dumps([{rec.clip_id: [0, 0, 1, 1]}, {rec.clip_id: [48, 3]}]))
    cache = V.precompute_features(V.VideoFolder(tmp_path / "v", [rec]), FrameNumberEncoder(), tmp_path / "c",
                                  topk=V.read_topk_json(tmp_path / "one.json"), progress=False)  # fmt: skip
    assert cache.frames[0, 0] == 47 and cache.embeds[0, 0, 0] == 47 and cache.meta["frame_base"] == 0


# ----------------------------------------------------------------------------------------------------------------
# feature cache


class FrameNumberEncoder:
    """A stand-in frozen image encoder: embeds a frame as [its barcode number, mean brightness, 1]."""

    dim = 3

    def __init__(self):
        self.calls = []

    def encode(self, frames):
        self.calls.append(len(frames))
        k = read_barcodes(np.asarray(frames)).astype(np.float32)
        return torch.tensor(np.stack([k, np.asarray(frames).mean((1, 2, 3)) / 255, np.ones_like(k)], 1))


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("vgg")
    recs = []
    for i, fps in enumerate([10, Fraction(15, 2), 25, 10]):
        rec = V.ClipRecord(f"vid{i:08d}xy", 10 * i, f"label{i % 2}", "train")
        write_video(root / f"{rec.youtube_id}_{int(rec.start):06d}.mp4", fps=fps, seconds=2.0 + i, channels=1 + i % 2)
        recs.append(rec)
    (root / "vid00000004xy_000040.mp4").write_bytes(b"not a video at all")
    recs.append(V.ClipRecord("vid00000004xy", 40, "label0", "train"))  # corrupt
    recs.append(V.ClipRecord("vid00000005xy", 50, "label1", "train"))  # missing
    ssl = {r.clip_id: {"top1_box": [0, 0, 1, 1], "top10_moments": [12 + j, 3, 5]} for j, r in enumerate(recs)}
    del ssl[recs[3].clip_id]  # no SSL entry
    return V.VideoFolder(root, recs), ssl


def test_precompute_features_caches_selected_frame_embeddings_and_audio(clip_folder, tmp_path):
    folder, ssl = clip_folder
    enc = FrameNumberEncoder()
    cache = V.precompute_features(folder, enc, tmp_path / "cache", topk=ssl, method="top1", batch_clips=2,
                                  progress=False)  # fmt: skip
    recs = folder.records
    assert cache.ids == [recs[i].clip_id for i in range(3)]
    assert cache.embeds.shape == (3, 1, 3) and cache.frames.shape == (3, 1) and cache.audio.shape == (3, 160_000)
    assert cache.audio.dtype == np.float16
    # the top-1 SSL frame (10 fps numbering) was encoded: its barcode is the source frame on screen at that time
    for j, fps in enumerate([10, 7.5, 25]):
        top1 = 12 + j
        assert cache.frames[j, 0] == top1
        assert cache.embeds[j, 0, 0] == expected_index(fps, (2.0 + j) if fps != 7.5 else int(3 * 7.5) / 7.5)[top1]
    np.testing.assert_allclose(cache.get(recs[1].clip_id)["audio"], folder.load(1).audio, atol=1e-3)
    failed = {f["id"]: f["error"] for f in cache.failed}
    assert set(failed) == {recs[3].clip_id, recs[4].clip_id, recs[5].clip_id}
    assert "no SSL top-k entry" in failed[recs[3].clip_id]
    assert "not a readable video" in failed[recs[4].clip_id] and "vid00000004xy_000040.mp4" in failed[recs[4].clip_id]
    assert "no video file" in failed[recs[5].clip_id]
    assert enc.calls == [2, 1]  # one encoder batch per chunk of clips (chunk 2 has one good clip)
    # reloading: memory-mapped, same content
    again = V.FeatureCache(tmp_path / "cache")
    assert isinstance(again.embeds, np.memmap) and again.ids == cache.ids and again.meta["method"] == "top1"
    with pytest.raises(V.VideoError, match="vid00000003xy_30000_40000"):
        V.precompute_features(folder, enc, tmp_path / "c2", topk=ssl, on_error="raise", progress=False)


def test_middle_and_topk_selection_and_shard_merge_equal_one_run(clip_folder, tmp_path):
    folder, ssl = clip_folder
    mid = V.precompute_features(folder, FrameNumberEncoder(), tmp_path / "mid", method="middle", audio=False,
                                progress=False)  # fmt: skip
    assert mid.audio is None and (mid.frames[:, 0] == 50).all() and len(mid) == 4  # only missing/corrupt fail
    topk = V.precompute_features(folder, FrameNumberEncoder(), tmp_path / "topk", topk=ssl, method="topk", k=3,
                                 audio=False, batch_clips=1, workers=2, progress=False)  # fmt: skip
    assert topk.embeds.shape == (3, 3, 3) and topk.frames[0].tolist() == [12, 3, 5]
    # two "ranks" by hand, merged in index order: identical to the single run (ids, arrays, failures)
    whole = V.precompute_features(folder, FrameNumberEncoder(), tmp_path / "whole", topk=ssl, batch_clips=2,
                                  progress=False)  # fmt: skip
    parts = [V.precompute_features(folder, FrameNumberEncoder(), tmp_path / f"part{r}", topk=ssl, batch_clips=2,
                                   rank=r, world=2, progress=False) for r in range(2)]  # fmt: skip
    assert sorted(parts[0].ids + parts[1].ids) == sorted(whole.ids) and parts[0].ids and parts[1].ids
    merged = V.merge_caches([p.folder for p in parts], tmp_path / "merged", order=[r.clip_id for r in folder.records])
    assert merged.ids == whole.ids and merged.failed == whole.failed
    np.testing.assert_array_equal(merged.embeds, whole.embeds)
    np.testing.assert_array_equal(merged.frames, whole.frames)
    np.testing.assert_array_equal(merged.audio, whole.audio)
    # rewriting a cache replaces it atomically
    V.FeatureCache.write(tmp_path / "merged", ["x"], np.zeros((1, 1, 3)), np.zeros((1, 1)))
    assert V.FeatureCache(tmp_path / "merged").ids == ["x"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".merged")]


class MixedSizeEncoder(FrameNumberEncoder):
    """Takes a list of pictures of different sizes in one call, as the real encoders do (``mixed_sizes``)."""

    mixed_sizes = True

    def encode(self, frames):
        assert isinstance(frames, list)
        out = torch.cat([super(MixedSizeEncoder, self).encode(f[None]) for f in frames])
        del self.calls[-len(frames) :]
        self.calls.append(len(frames))
        return out


def test_clips_of_several_resolutions_are_all_cached(tmp_path):
    """Real VGGSound clips come in several aspect ratios: one chunk of clips of four sizes is encoded without any
    stacking error, each row the right frame, in index order."""
    sizes = [(112, 64), (64, 48), (48, 96), (160, 90), (112, 64)]
    recs = []
    for i, size in enumerate(sizes):
        rec = V.ClipRecord(f"size{i:07d}x", float(i))
        write_video(tmp_path / "v" / f"{rec.youtube_id}_{i:06d}.mp4", fps=10, seconds=4.0, size=size, channels=1)
        recs.append(rec)
    ssl = {r.clip_id: {"top1_box": None, "top10_moments": [10 + i, 30]} for i, r in enumerate(recs)}
    folder = V.VideoFolder(tmp_path / "v", recs)
    assert folder.load(2, audio=False).frames.shape[1:] == (96, 48, 3)
    grouped = FrameNumberEncoder()  # plain encoder: one call per picture size, rows put back in order
    a = V.precompute_features(folder, grouped, tmp_path / "a", topk=ssl, method="topk", k=2, batch_clips=8,
                              progress=False)  # fmt: skip
    assert a.ids == [r.clip_id for r in recs] and not a.failed
    np.testing.assert_array_equal(a.embeds[:, :, 0], [[10 + i, 30] for i in range(5)])
    assert sorted(grouped.calls) == [2, 2, 2, 4] and a.meta["mixed_size_batches"] == 1
    mixed = MixedSizeEncoder()  # an encoder that takes mixed sizes gets one call
    b = V.precompute_features(folder, mixed, tmp_path / "b", topk=ssl, method="topk", k=2, batch_clips=8,
                              progress=False)  # fmt: skip
    assert mixed.calls == [10]
    np.testing.assert_array_equal(a.embeds, b.embeds)


def test_folder_names_give_vegas_labels_and_only_existing_files_are_drawn(tmp_path):
    root = tmp_path / "VEGAS"
    for path in ("dog/videos/dogclip0001.mp4", "dog/videos/dogclip0002.mp4", "train/baby_cry/babyclip001.mp4",
                 "chainsaw/chainsawclip_000010.mp4", "loose0001.mp4"):  # fmt: skip
        write_video(root / path, seconds=1.0)
    recs = {r.youtube_id: (r.label, r.split, r.start) for r in V.VideoFolder(root).records}
    assert recs == {"dogclip0001": ("dog", "", 0.0), "dogclip0002": ("dog", "", 0.0),
                    "babyclip001": ("baby_cry", "train", 0.0), "chainsawclip": ("chainsaw", "", 10.0),
                    "loose0001": ("", "", 0.0)}  # fmt: skip
    assert V.records_from_files(root, labels_from_folders=False)[0].label == ""
    index = [V.ClipRecord("dogclip0001", 0, "dog"), V.ClipRecord("gone0000001", 0, "dog"),
             V.ClipRecord("chainsawclip", 10, "chainsaw")]  # fmt: skip
    folder = V.VideoFolder(root, index)
    assert folder.existing() == [index[0], index[2]] and folder.missing() == [index[1]]


class Interrupting(FrameNumberEncoder):
    def encode(self, frames):
        if self.calls:
            raise KeyboardInterrupt
        return super().encode(frames)


def test_bad_clips_are_counted_and_an_interrupted_cache_write_leaves_nothing(clip_folder, tmp_path):
    folder, ssl = clip_folder
    audioless = write_video(folder.root / "noaudio0001_000000.mp4", audio=False, seconds=2.0)
    recs = folder.records + [V.ClipRecord("noaudio0001", 0.0)]
    ssl = {**ssl, recs[-1].clip_id: {"top1_box": None, "top10_moments": [1]}}
    try:
        cache = V.precompute_features(V.VideoFolder(folder.root, recs), FrameNumberEncoder(), tmp_path / "c",
                                      topk=ssl, batch_clips=2, progress=False)  # fmt: skip
    finally:
        audioless.unlink()
    assert cache.meta["failure_counts"] == {"no_ssl_entry": 1, "corrupt": 1, "missing_file": 1, "no_audio": 1}
    assert all("\n" not in f["error"] for f in cache.failed)
    before = {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()}
    # Ctrl-C in the middle of a rewrite: the old cache stays as it was, and no temporary folder is left behind
    with pytest.raises(KeyboardInterrupt):
        V.precompute_features(folder, Interrupting(), tmp_path / "c", topk=ssl, batch_clips=2, progress=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()} == before
    with pytest.raises(KeyboardInterrupt):
        V.precompute_features(folder, Interrupting(), tmp_path / "fresh", topk=ssl, batch_clips=2, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_cache_writer_streams_rows_and_shrinks_to_what_was_written(tmp_path):
    rng = np.random.default_rng(0)
    with V.CacheWriter(tmp_path / "c", capacity=50, k=2, dim=None, samples=100) as w:
        for i in range(0, 30, 7):
            n = min(7, 30 - i)
            w.add_rows([f"c{j}" for j in range(i, i + n)], rng.standard_normal((n, 2, 5)), np.full((n, 2), i),
                       rng.standard_normal((n, 100)))  # fmt: skip
        with pytest.raises(ValueError, match="unique"):
            w.add_rows(["c0"], np.zeros((1, 2, 5)), np.zeros((1, 2)), np.zeros((1, 100)))
        cache = w.commit({"note": 1})
    assert len(cache) == 30 and cache.embeds.shape == (30, 2, 5) and cache.audio.shape == (30, 100)
    assert cache.meta["note"] == 1 and cache.frames[29, 0] == 28
    for name in ("embeds", "frames", "audio"):  # valid .npy files of exactly 30 rows, readable without a memory map
        arr = np.load(tmp_path / "c" / f"{name}.npy")
        assert len(arr) == 30 and (tmp_path / "c" / f"{name}.npy").stat().st_size == 128 + arr.nbytes


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_written_clip_decodes(tmp_path):
    path = tmp_path / "ff.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=12.5:duration=4",
                    "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=32000:duration=4", "-ac", "2",
                    "-shortest", str(path)], check=True, timeout=60)  # fmt: skip
    clip = V.decode_clip(path)
    assert clip.audio.shape == (160_000,) and clip.frames.shape == (100, 64, 96, 3)
    assert abs(clip.source_fps - 12.5) < 1e-6 and clip.audio_rate == 32000 and clip.tiled
    assert np.argmax(np.abs(np.fft.rfft(clip.audio[:16_000]))) == 500
