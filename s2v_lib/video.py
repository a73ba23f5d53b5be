"""Real audio-visual data: VGGSound / VEGAS-style folders of mp4 clips, decoding, and feature caches (paper guide 1-2).

    folder = VideoFolder("vggsound/video", index="vggsound.csv", split="train")
    clip = folder.load(0)          # DecodedClip: audio float32 [160000] (10 s, 16 kHz mono), frames uint8 [100, H, W, 3]
    ssl = read_topk_json("top1_boxes_top10_moments.json")
    cache = precompute_features(folder, full.load_unclip_image_encoder(), "cache/vggsound-train", topk=ssl)
    cache.embeds[i, 0]             # the SSL-selected frame's image embedding of clip cache.ids[i]

**Index.** :func:`read_index` reads the CSV (``youtube_id, start_seconds, label, split``; VGGSound's has no header,
others name their columns - both are accepted, and an unquoted label containing commas too).

**Files.** VGGSound is no longer served by its authors and mirrors name files differently, so :class:`VideoFolder`
scans the folder once (recursively) and tries, for each clip, the known names in turn:
``{id}_{start:06d}`` (the Hugging Face mirror), ``{id}_{start}_{start+10}``, ``{id}_{start_ms}_{end_ms}`` (the key of
the authors' SSL JSON), ``{id}_{start}``, and ``{id}`` (a full video: the clip is cut from ``start``, unless the file is
shorter than that, when it is taken as already cut). Extensions: mp4, mkv, webm, avi, mov, m4v. Many indexed videos
are gone: :meth:`VideoFolder.existing` / :meth:`VideoFolder.missing` tell them apart, so that clips are drawn from
files that exist. Without a CSV, ids come from the file names and labels (and splits) from the folder names
(:func:`folder_label`: VEGAS keeps one folder per category).

**Decoding** (:func:`decode_clip`, PyAV): audio to float32 mono (channel mean) at 16 kHz, exactly 10 s - shorter
tracks are *tiled* (as the authors do) and longer ones cut; frames at 10 fps whatever the source rate: sampled frame i
is the source frame *on screen* at ``i / 10`` s (repeating frames when the source has fewer than 10 per second, and
tiling the video like the audio when it is shorter than 10 s), so the authors' frame numbers (10 fps, 0-99) are always
valid. Frames keep the file's size (clips come in several aspect ratios), or are resized to a short side of ``size``.
The true frame rate, frame count and durations are recorded. Missing, empty, corrupt or track-less files raise
:class:`VideoError`, one line naming the file.

**Caches.** :func:`precompute_features` decodes each clip once, picks its frames (SSL top-1 / top-k from the JSON, or the
middle frame), encodes them with the frozen image encoder (pictures of several sizes in one batch:
:func:`encode_frames`) and writes a :class:`FeatureCache` folder of ``.npy`` arrays (memory-mappable: embeddings,
frame numbers, optionally 16 kHz float16 audio) so that training reads features, not videos. Rows go to disk as they
come (:class:`CacheWriter`): memory stays flat however many clips (measured: docs/full_profile.md), and a cache
folder only appears complete. Clips that fail are listed, with the reason, in the cache's ``meta["failed"]`` and
counted by kind in ``meta["failure_counts"]``. Work can be split by rank (``s2v_lib.distributed``) with a result
identical to one process.

**SSL JSON.** :func:`write_topk_json` / :func:`read_topk_json`: ``{clip_id: {"top1_box": [x0, y0, x1, y1],
"top10_moments": [frame numbers, best first]}}``. The reader also accepts the authors' released
``top1_boxes_top10_moments.json``, a two-element list ``[{clip_id: box}, {clip_id: [10 frame numbers]}]`` (an
inference from third-party code that reads element ``[1]`` as the moments; the file itself is not available here),
and a plain ``{clip_id: [frame numbers]}``. Clip ids are the authors' keys, ``{youtube_id}_{start_ms}_{end_ms}``
(e.g. ``9fhhMaXTraI_44000_54000``), so their file applies as is. Frame numbers are 0-based inside the library; the
authors' file is read as numbered from 1 unless its content says otherwise (:func:`read_topk_json` states what it
decided and why). Malformed entries are skipped and counted, not fatal. The SSL scores come from ``s2v_lib.ssl``:
:func:`topk_entry` turns one clip's per-frame scores (and boxes) into an entry.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLIP_SECONDS = 10.0
FPS = 10.0
SAMPLE_RATE = 16_000
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
CACHE_FORMAT = 1


class VideoError(ValueError):
    """A video that cannot be used, with the file and the reason in one line."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


# ----------------------------------------------------------------------------------------------------------------
# the index


def _num(x: float) -> str:
    """30.0 -> '30', 2.5 -> '2.5' (how start times appear in file names)."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class ClipRecord:
    """One row of the index: a ``seconds``-long clip of YouTube video ``youtube_id`` starting at ``start`` s."""

    youtube_id: str
    start: float = 0.0
    label: str = ""
    split: str = ""
    seconds: float = CLIP_SECONDS

    @property
    def clip_id(self) -> str:
        """The authors' key: ``{youtube_id}_{start_ms}_{end_ms}``."""
        ms = int(round(self.start * 1000))
        return f"{self.youtube_id}_{ms}_{ms + int(round(self.seconds * 1000))}"

    def candidate_stems(self) -> list[tuple[str, str]]:
        """(file stem, pattern) pairs to try, most specific first."""
        s, e = self.start, self.start + self.seconds
        ms = int(round(s * 1000))
        out = []
        if float(s).is_integer():
            out.append((f"{self.youtube_id}_{int(s):06d}", "{id}_{start:06d}"))
            out.append((f"{self.youtube_id}_{int(s):06d}_{int(e):06d}", "{id}_{start:06d}_{end:06d}"))
        out += [
            (f"{self.youtube_id}_{_num(s)}_{_num(e)}", "{id}_{start}_{end}"),
            (f"{self.youtube_id}_{ms}_{ms + int(round(self.seconds * 1000))}", "{id}_{start_ms}_{end_ms}"),
            (f"{self.youtube_id}_{_num(s)}", "{id}_{start}"),
            (self.youtube_id, "{id}"),
        ]
        seen, unique = set(), []
        for stem, pattern in out:
            if stem not in seen:
                seen.add(stem)
                unique.append((stem, pattern))
        return unique


_ALIASES = {
    "id": ("id", "youtube_id", "youtubeid", "ytid", "yt_id", "video_id", "videoid", "vid", "youtube id"),
    "start": ("start", "start_seconds", "start_second", "start_time", "start_sec", "start_s", "onset", "begin"),
    "label": ("label", "labels", "class", "category", "class_name"),
    "split": ("split", "set", "subset", "partition"),
}


def read_index(path: str | Path) -> list[ClipRecord]:
    """Rows of a VGGSound/VEGAS-style CSV as :class:`ClipRecord` (header optional; see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such index file")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [(i + 1, row) for i, row in enumerate(csv.reader(f))]
    rows = [(n, r) for n, r in rows if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        return []
    head = [c.strip().lower() for c in rows[0][1]]
    cols = {}
    if any(h in _ALIASES["id"] for h in head) and any(h in _ALIASES["start"] for h in head):
        for key, names in _ALIASES.items():
            cols[key] = next((i for i, h in enumerate(head) if h in names), None)
        rows = rows[1:]
    records = []
    for n, row in rows:
        try:
            if cols:
                get = lambda key, row=row: row[cols[key]] if cols[key] is not None and cols[key] < len(row) else ""  # noqa: E731
                yid, start, label, split = (get(key).strip() for key in ("id", "start", "label", "split"))
            else:  # VGGSound: youtube_id, start_seconds, label (may hold unquoted commas), split
                if len(row) < 2:
                    raise ValueError("expected at least youtube_id,start")
                yid, start = row[0].strip(), row[1].strip()
                label = ",".join(row[2:-1]) if len(row) >= 4 else (row[2] if len(row) == 3 else "")
                split = row[-1] if len(row) >= 4 else ""
            if not yid:
                raise ValueError("empty video id")
            start_s = float(start) if start != "" else 0.0
            if not math.isfinite(start_s) or start_s < 0:
                raise ValueError(f"bad start time {start!r}")
        except ValueError as err:
            raise ValueError(f"{path}:{n}: {err}") from None
        records.append(ClipRecord(yid, start_s, label.strip(), split.strip()))
    return records


_STEM_PATTERNS = (
    (re.compile(r"^(?P<id>.+)_(?P<a>\d+)_(?P<b>\d+)$"), "pair"),
    (re.compile(r"^(?P<id>.+)_(?P<a>\d{6})$"), "start"),
)


# folder names that say nothing about the content (VEGAS: CATEGORY/videos/ID.mp4); split names give the split
_GENERIC_FOLDERS = {"video", "videos", "vid", "vids", "clip", "clips", "mp4", "mp4s", "data", "dataset", "raw",
                    "audio", "audios", "frames", "cut", "cuts", "trimmed", "processed", "files", "media"}  # fmt: skip
_SPLIT_FOLDERS = {"train": "train", "training": "train", "test": "test", "testing": "test", "val": "val",
                  "valid": "val", "validation": "val"}  # fmt: skip


def folder_label(path: Path, root: Path) -> tuple[str, str]:
    """(label, split) of a file from the folders between ``root`` and it: the nearest folder whose name is neither
    generic (``videos``, ``clips`` ...) nor a split (``train``, ``test`` ...) is the label (VEGAS keeps one folder
    per category), a split-named folder gives the split. ("", "") for a file directly under ``root``."""
    parts = Path(path).parent.relative_to(root).parts
    label = next((d for d in reversed(parts) if d.lower() not in _GENERIC_FOLDERS | set(_SPLIT_FOLDERS)), "")
    split = next((_SPLIT_FOLDERS[d.lower()] for d in reversed(parts) if d.lower() in _SPLIT_FOLDERS), "")
    return label, split


def records_from_files(
    root: str | Path, seconds: float = CLIP_SECONDS, labels_from_folders: bool = True
) -> list[ClipRecord]:
    """Index a folder that has no CSV from its file names (``{id}_{start:06d}``, ``{id}_{s}_{e}``, ``{id}_{ms}_{ms}``);
    with ``labels_from_folders`` each clip's label (and split) comes from its folders (:func:`folder_label`)."""
    root = Path(root)
    records = []
    for stem, path in sorted(_scan(root).items()):
        label, split = folder_label(path, root) if labels_from_folders else ("", "")
        rec = ClipRecord(stem, 0.0, label, split, seconds=seconds)
        for pattern, kind in _STEM_PATTERNS:
            m = pattern.match(stem)
            if not m:
                continue
            a = int(m["a"])
            if kind == "pair":
                b = int(m["b"])
                if b - a == int(round(seconds * 1000)):
                    rec = ClipRecord(m["id"], a / 1000, label, split, seconds=seconds)
                elif b - a == int(round(seconds)):
                    rec = ClipRecord(m["id"], float(a), label, split, seconds=seconds)
                else:
                    continue
            else:
                rec = ClipRecord(m["id"], float(a), label, split, seconds=seconds)
            break
        records.append(rec)
    return records


def _scan(root: Path) -> dict[str, Path]:
    """stem -> path of every video file under root (the first in sorted order wins on duplicates)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such video folder")
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS and not name.startswith("."):
                files.setdefault(stem, Path(dirpath) / name)
    return files


class VideoFolder:
    """A folder of clips (any depth) plus its index; resolves each record to a file with the known naming patterns."""

    def __init__(self, root: str | Path, index: str | Path | Sequence[ClipRecord] | None = None,
                 split: str | None = None, labels: Iterable[str] | None = None, seconds: float = CLIP_SECONDS):  # fmt: skip
        self.root = Path(root)
        self.files = _scan(self.root)
        if index is None:
            records = records_from_files(self.root, seconds)
        elif isinstance(index, str | Path):
            records = read_index(index)
        else:
            records = list(index)
        if split is not None:
            records = [r for r in records if r.split == split]
        if labels is not None:
            keep = set(labels)
            records = [r for r in records if r.label in keep]
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def resolve(self, record: ClipRecord) -> tuple[Path, float]:
        """(file, start offset inside it) for a record; VideoError naming what was tried if there is none."""
        stems = record.candidate_stems()
        for stem, pattern in stems:
            if stem in self.files:
                return self.files[stem], (record.start if pattern == "{id}" else 0.0)
        tried = ", ".join(s for s, _ in stems)
        raise VideoError(
            self.root, f"clip {record.clip_id}: no video file (tried {tried} with {'/'.join(VIDEO_EXTENSIONS)})"
        )

    def has_file(self, record: ClipRecord) -> bool:
        return any(stem in self.files for stem, _ in record.candidate_stems())

    def missing(self) -> list[ClipRecord]:
        """Records of the index whose video file is not in the folder (many VGGSound videos are gone)."""
        return [r for r in self.records if not self.has_file(r)]

    def existing(self) -> list[ClipRecord]:
        """Records whose video file is in the folder: draw training and test clips from these."""
        return [r for r in self.records if self.has_file(r)]

    def load(self, item: int | ClipRecord, **kwargs) -> DecodedClip:
        record = self.records[item] if isinstance(item, int) else item
        path, offset = self.resolve(record)
        kwargs.setdefault("seconds", record.seconds)
        return decode_clip(path, start=offset, **kwargs)

    def __getitem__(self, i: int) -> DecodedClip:
        return self.load(i)


# ----------------------------------------------------------------------------------------------------------------
# decoding


@dataclass
class DecodedClip:
    path: Path
    audio: np.ndarray | None  # float32 [seconds * sample_rate], mono
    frames: np.ndarray | None  # uint8 [seconds * fps, H, W, 3]
    frame_index: np.ndarray  # int64 [T]: which decoded source frame each sampled frame is
    source_fps: float  # the video's own frame rate
    source_frames: int  # source frames decoded inside the clip window
    video_seconds: float  # how much video the file really has in the window (before tiling)
    audio_seconds: float  # how much audio (before tiling), at sample_rate
    audio_rate: int  # the track's own sample rate
    audio_channels: int
    start: float  # where in the file the clip starts (s)
    seconds: float = CLIP_SECONDS
    fps: float = FPS
    sample_rate: int = SAMPLE_RATE
    notes: list[str] = field(default_factory=list)

    @property
    def tiled(self) -> bool:
        """True when the file held less than ``seconds`` of audio or video and the clip was tiled."""
        return min(self.audio_seconds or self.seconds, self.video_seconds or self.seconds) < self.seconds - 0.05


def _audio_array(frame) -> np.ndarray:
    """One PyAV audio frame -> float32 [channels, samples]."""
    a = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if a.ndim == 1:
        a = a[None]
    if frame.format.is_packed:  # interleaved [1, n * channels]
        a = a.reshape(-1, channels).T
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / np.iinfo(a.dtype).max
    return a.astype(np.float32, copy=False)


def _scaled_size(w: int, h: int, size: int | None) -> tuple[int, int]:
    if not size:
        return w, h
    s = size / min(w, h)
    return max(1, int(round(w * s))), max(1, int(round(h * s)))


def decode_clip(path: str | Path, start: float = 0.0, seconds: float = CLIP_SECONDS, fps: float = FPS,
                sample_rate: int = SAMPLE_RATE, frames: bool = True, audio: bool = True,
                size: int | None = None, only: Sequence[int] | None = None) -> DecodedClip:  # fmt: skip
    """Decode ``seconds`` of a video file from ``start``: 16 kHz mono audio and frames at ``fps`` (see module doc).

    ``size`` resizes frames so their short side is ``size`` pixels (None: the file's size). ``only``: convert just
    these sampled frames (10 fps numbers, 0-based) to RGB; ``frames`` then holds ``len(only)`` pictures in that order
    (``frame_index`` still covers the whole clip).
    """
    import av

    from .audio import fit_length, resample

    path = Path(path)
    if not path.exists():
        raise VideoError(path, "no such file")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file")
    try:
        container = av.open(str(path))
    except Exception as err:  # PyAV raises many kinds for non-media files
        raise VideoError(path, f"not a readable video file ({type(err).__name__})") from None
    notes: list[str] = []
    with container:
        vs = container.streams.video[0] if (frames and container.streams.video) else None
        aus = container.streams.audio[0] if (audio and container.streams.audio) else None
        if frames and vs is None:
            raise VideoError(path, "no video stream")
        if audio and aus is None:
            raise VideoError(path, "no audio track")
        duration = container.duration / av.time_base if container.duration else None
        if start > 0 and duration is not None and duration < start + 0.5:
            notes.append(f"file is {duration:.1f} s, shorter than the start {start:g} s: taken as an already cut clip")
            start = 0.0
        end = start + seconds
        if start > 0:
            try:
                container.seek(int(start * av.time_base), backward=True, any_frame=False)
            except Exception as err:
                raise VideoError(path, f"cannot seek to {start:g} s ({type(err).__name__})") from None
        vframes: list[tuple[float, object]] = []
        achunks: list[tuple[float, np.ndarray]] = []
        rate = channels = 0
        v_done, a_done = vs is None, aus is None
        n_video = 0
        try:
            for packet in container.demux(*[s for s in (vs, aus) if s is not None]):
                if packet.stream is vs and v_done or packet.stream is aus and a_done:
                    continue
                for frame in packet.decode():
                    if packet.stream is vs:
                        t = frame.time if frame.time is not None else n_video / float(vs.average_rate or fps)
                        n_video += 1
                        if t >= end:
                            v_done = True
                            break
                        if t <= start + 1e-6 and vframes and vframes[-1][0] <= start + 1e-6:
                            vframes[-1] = (t, frame)  # keep only the frame on screen at the start
                        else:
                            vframes.append((t, frame))
                    else:
                        t = frame.time if frame.time is not None else 0.0
                        a = _audio_array(frame)
                        rate, channels = frame.sample_rate, a.shape[0]
                        if t >= end:
                            a_done = True
                            break
                        achunks.append((t, a))
                if v_done and a_done:
                    break
        except av.error.FFmpegError as err:
            raise VideoError(path, f"corrupt or truncated video ({type(err).__name__}: {str(err)[:120]})") from None

        # -- audio: align to the clip start, cut, downmix, resample, tile
        wave, audio_seconds = None, 0.0
        if aus is not None:
            if not achunks:
                raise VideoError(path, "audio track holds no samples")
            rate = rate or aus.rate
            data = np.concatenate([a for _, a in achunks], axis=1)
            offset = int(round((achunks[0][0] - start) * rate))
            data = data[:, -offset:] if offset < 0 else np.pad(data, ((0, 0), (offset, 0)))
            data = data[:, : int(round(seconds * rate))]
            if data.shape[1] == 0:
                raise VideoError(path, f"no audio between {start:g} s and {end:g} s")
            if not np.all(np.isfinite(data)):
                raise VideoError(path, "audio contains NaN or infinite samples")
            mono = resample(data.mean(axis=0), int(rate), sample_rate)
            audio_seconds = len(mono) / sample_rate
            import torch

            wave = fit_length(torch.as_tensor(mono), int(round(seconds * sample_rate))).numpy().astype(np.float32)

        # -- video: the source frame on screen at each 10 fps time, tiling short videos
        n_out = int(round(seconds * fps))
        source_fps, video_seconds, index, images = 0.0, 0.0, np.zeros(n_out, np.int64), None
        if vs is not None:
            if not vframes:
                raise VideoError(path, "no video frames decoded")
            times = np.array([t for t, _ in vframes]) - start
            declared = float(vs.average_rate) if vs.average_rate else 0.0
            measured = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
            source_fps = declared or measured or fps
            video_seconds = min(seconds, max(times[-1], 0.0) + 1.0 / source_fps)
            targets = np.arange(n_out) / fps
            targets = np.where(targets >= video_seconds, np.mod(targets, video_seconds), targets)
            index = np.clip(np.searchsorted(times, targets + 1e-6, side="right") - 1, 0, len(times) - 1)
            first = vframes[0][1]
            w, h = _scaled_size(first.width, first.height, size)
            converted: dict[int, np.ndarray] = {}
            wanted = list(range(n_out)) if only is None else [int(i) for i in only]
            if wanted and (min(wanted) < 0 or max(wanted) >= n_out):
                raise VideoError(path, f"frame {max(wanted)} asked for; the clip has {n_out} frames at {fps:g} fps")
            images = np.empty((len(wanted), h, w, 3), np.uint8)
            for i, k in enumerate(index[wanted]):
                if k not in converted:
                    frame = vframes[k][1]
                    converted[k] = frame.to_ndarray(format="rgb24", width=w, height=h)
                images[i] = converted[k]
    return DecodedClip(path=path, audio=wave, frames=images, frame_index=index.astype(np.int64), source_fps=source_fps,
                       source_frames=len(vframes), video_seconds=video_seconds, audio_seconds=audio_seconds,
                       audio_rate=int(rate), audio_channels=int(channels), start=start, seconds=seconds, fps=fps,
                       sample_rate=sample_rate, notes=notes)  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# SSL top-k JSON


def topk_entry(scores, boxes=None, k: int = 10) -> dict:
    """Per-frame SSL ``scores`` [T] (and ``boxes`` [T, 4]) -> ``{"top1_box": [...], "top10_moments": [k frames]}``."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or len(s) == 0:
        raise ValueError(f"expected per-frame scores [T], got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("SSL scores contain NaN or infinite values")
    order = np.argsort(-s, kind="stable")[:k]
    box = None
    if boxes is not None:
        b = np.asarray(boxes, dtype=np.float64)
        if b.shape != (len(s), 4):
            raise ValueError(f"expected boxes [T, 4] = [{len(s)}, 4], got {b.shape}")
        box = [float(v) for v in b[order[0]]]
    return {"top1_box": box, "top10_moments": [int(i) for i in order]}


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


class TopK(dict):
    """``{clip_id: {"top1_box": [4] or None, "top10_moments": [0-based frame numbers at 10 fps]}}`` as read by
    :func:`read_topk_json`, plus what the reader decided: ``frame_base`` (0 or 1: how the *file* numbers frames),
    ``frame_base_reason`` and ``skipped`` (``[{"id", "error"}]``: malformed entries left out)."""

    frame_base: int = 0
    frame_base_reason: str = ""
    skipped: list

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped = []


def write_topk_json(path: str | Path, entries: Mapping[str, Mapping], format: str = "s2v",
                    frame_base: int | None = None) -> Path:  # fmt: skip
    """Write ``{clip_id: {"top1_box", "top10_moments"}}`` (``format="s2v"``) or the authors' two-element list
    ``[{clip_id: box}, {clip_id: moments}]`` (``format="authors"``), atomically. ``entries`` number frames from 0;
    the file numbers them from ``frame_base``: 0 for ``s2v``, 1 for ``authors`` by default (see
    :func:`read_topk_json`), so each layout reads back as written."""
    path = Path(path)
    base = {"s2v": 0, "authors": 1}.get(format) if frame_base is None else frame_base
    if base not in (0, 1):
        raise ValueError(f"format must be 's2v' or 'authors' and frame_base 0 or 1, got {format!r}, {frame_base!r}")
    clean = {str(k): _check_entry(path, str(k), dict(v)) for k, v in entries.items()}
    shifted = {k: {**v, "top10_moments": [m + base for m in v["top10_moments"]]} for k, v in clean.items()}
    if format == "s2v":
        data = shifted
    elif format == "authors":
        data = [{k: v["top1_box"] for k, v in shifted.items()}, {k: v["top10_moments"] for k, v in shifted.items()}]
    else:
        raise ValueError(f"format must be 's2v' or 'authors', not {format!r}")
    _atomic_write_text(path, json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    return path


def _check_entry(path, key: str, entry: dict, n_frames: int | None = None, base: int = 0) -> dict:
    """One entry, validated, with its frame numbers moved from the file's numbering (from ``base``) to 0-based."""
    moments = entry.get("top10_moments")
    box = entry.get("top1_box")
    if not isinstance(moments, list | tuple) or not moments:
        raise ValueError(f"{path}: clip {key}: 'top10_moments' must be a non-empty list of frame numbers")
    try:
        ints = [int(m) for m in moments]
    except (TypeError, ValueError):
        raise ValueError(f"{path}: clip {key}: frame numbers must be integers, got {moments!r}") from None
    ints = [m - base for m in ints]
    if (any(m != float(x) - base for m, x in zip(ints, moments)) or min(ints) < 0
            or (n_frames and max(ints) >= n_frames)):  # fmt: skip
        lo = base
        hi = f"{n_frames + base - 1}" if n_frames else "T"
        raise ValueError(f"{path}: clip {key}: frame numbers must be integers in [{lo}, {hi}] (numbered from {base}), "
                         f"got {moments!r}")  # fmt: skip
    if box is not None:
        if isinstance(box, list | tuple) and len(box) == 1 and isinstance(box[0], list | tuple):
            box = box[0]
        try:
            box = [float(v) for v in box]
        except (TypeError, ValueError):
            raise ValueError(f"{path}: clip {key}: 'top1_box' must be 4 numbers, got {box!r}") from None
        if len(box) != 4 or not all(math.isfinite(v) for v in box):
            raise ValueError(f"{path}: clip {key}: 'top1_box' must be 4 finite numbers [x0, y0, x1, y1], got {box!r}")
    return {"top1_box": box, "top10_moments": ints}


def _frame_base(entries: Mapping[str, dict], layout: str, n_frames: int | None) -> tuple[int, str]:
    """How a file numbers its frames, decided by its content where it can be: a 0 proves numbering from 0, the
    number ``n_frames`` (100) proves numbering from 1. Otherwise by layout: the authors' (a two-element list, or the
    plain ``{clip: [frames]}`` of their README) from 1, ours from 0."""
    seen = set()
    for v in entries.values():
        for m in v.get("top10_moments") or []:
            if isinstance(m, int | float) and float(m).is_integer():
                seen.add(int(m))
    if 0 in seen:
        return 0, "the file holds frame 0"
    if n_frames and n_frames in seen:
        return 1, f"the file holds frame {n_frames} and no frame 0"
    if layout == "s2v":
        return 0, "s2v layout (written from 0) and no frame decides"
    return 1, ("the authors' layout and no frame decides: their README calls 47 'the 47th frame' of a 10 fps "
               "extraction, whose usual tool (ffmpeg's image2) numbers files from 1")  # fmt: skip


def read_topk_json(path: str | Path, n_frames: int | None = int(CLIP_SECONDS * FPS), frame_base: int | str = "auto",
                   strict: bool = False) -> TopK:  # fmt: skip
    """SSL top-k file -> :class:`TopK` ``{clip_id: {"top1_box": [4] or None, "top10_moments": [0-based ints]}}``
    (any of the accepted layouts, see the module docstring).

    **Frame numbers.** Inside the library frame ``i`` is the one on screen at ``i / 10`` s (0-based, 0-99). The
    file's numbering is ``frame_base`` (0 or 1); ``"auto"`` decides it from the content where it can (a 0 means
    from 0, a 100 means from 1), else from the layout (:func:`_frame_base`). What was decided is in
    ``.frame_base`` / ``.frame_base_reason``.

    **Bad entries** (not a list, not integers, out of range, a bad box) are skipped and listed in ``.skipped``;
    ``strict=True`` raises a ValueError naming the file and clip instead. A file that is not valid JSON, or not one
    of the layouts, always raises."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such SSL top-k file") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if isinstance(data, list):
        if len(data) != 2 or not all(isinstance(d, dict) for d in data):
            raise ValueError(f"{path}: a list must be the authors' [{{clip: box}}, {{clip: moments}}] pair")
        boxes, moments = data
        sample = next(iter(moments.values()), None)
        if isinstance(sample, list) and len(sample) == 4 and len(next(iter(boxes.values()), [])) > 4:
            boxes, moments = moments, boxes
        entries = {k: {"top1_box": boxes.get(k), "top10_moments": v} for k, v in moments.items()}
        layout = "authors"
    elif isinstance(data, dict):
        layout = "s2v" if data and all(isinstance(v, dict) for v in data.values()) else "plain"
        entries = {k: (v if isinstance(v, dict) else {"top1_box": None, "top10_moments": v}) for k, v in data.items()}
    else:
        raise ValueError(f"{path}: expected a JSON object or the authors' two-element list")
    if frame_base == "auto":
        base, reason = _frame_base(entries, layout, n_frames)
    elif frame_base in (0, 1):
        base, reason = int(frame_base), "given"
    else:
        raise ValueError(f"frame_base must be 0, 1 or 'auto', not {frame_base!r}")
    out = TopK()
    out.frame_base, out.frame_base_reason = base, reason
    for k, v in entries.items():
        try:
            out[str(k)] = _check_entry(path, str(k), dict(v), n_frames, base)
        except (ValueError, TypeError) as err:
            if strict:
                raise ValueError(str(err)) from None
            out.skipped.append({"id": str(k), "error": str(err).splitlines()[0]})
    return out


def select_frames(clip_id: str, topk: Mapping[str, Mapping] | None = None, method: str = "top1", k: int = 1,
                  n_frames: int = int(CLIP_SECONDS * FPS)) -> np.ndarray:  # fmt: skip
    """Frame numbers (at 10 fps) to encode for a clip: ``middle`` (the baseline) or ``top1`` (SSL): one frame;
    ``topk``: the SSL's best ``k``."""
    if method == "middle":
        return np.array([n_frames // 2], dtype=np.int64)
    if method not in ("top1", "topk"):
        raise ValueError(f"method must be 'middle', 'top1' or 'topk', not {method!r}")
    if topk is None:
        raise ValueError(f"method {method!r} needs the SSL top-k entries (read_topk_json)")
    if clip_id not in topk:
        raise KeyError(f"clip {clip_id} has no SSL top-k entry")
    moments = list(topk[clip_id]["top10_moments"])
    want = 1 if method == "top1" else k
    if len(moments) < want:
        raise ValueError(f"clip {clip_id}: {len(moments)} SSL frames, {want} wanted")
    out = np.array(moments[:want], dtype=np.int64)
    if out.max() >= n_frames:
        raise ValueError(f"clip {clip_id}: SSL frame {out.max()} is beyond the clip's {n_frames} frames")
    return out


# ----------------------------------------------------------------------------------------------------------------
# the feature cache


class FeatureCache:
    """A folder of memory-mappable arrays, one row per clip, in index order:

    ``ids.json`` (clip ids) · ``embeds.npy`` [N, K, D] (image embeddings of the selected frames) ·
    ``frames.npy`` int16 [N, K] (their frame numbers at 10 fps, from 0) · ``audio.npy`` float16 [N, S] (optional,
    16 kHz mono, 10 s) · ``meta.json`` (encoder, selection method, failures and their counts ...).

    A cache folder only ever appears complete: it is written in a hidden temporary folder beside it and renamed into
    place at the end (:class:`CacheWriter`); an interrupted write leaves no cache (and no temporary folder, unless
    the process was killed outright).
    """

    def __init__(self, folder: str | Path, mmap: bool = True):
        self.folder = Path(folder)
        if not (self.folder / "ids.json").exists():
            raise FileNotFoundError(
                f"{self.folder}: not a feature cache (no ids.json); build it with precompute_features"
            )
        mode = "r" if mmap else None
        self.ids: list[str] = json.loads((self.folder / "ids.json").read_text())
        self.meta: dict = json.loads((self.folder / "meta.json").read_text())
        self.embeds = np.load(self.folder / "embeds.npy", mmap_mode=mode)
        self.frames = np.load(self.folder / "frames.npy", mmap_mode=mode)
        audio = self.folder / "audio.npy"
        self.audio = np.load(audio, mmap_mode=mode) if audio.exists() else None
        if not (len(self.ids) == len(self.embeds) == len(self.frames)) or (
            self.audio is not None and len(self.audio) != len(self.ids)
        ):
            raise ValueError(f"{self.folder}: damaged feature cache (row counts differ); rebuild it")
        self.index = {c: i for i, c in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self.index

    def get(self, clip_id: str) -> dict:
        i = self.index[clip_id]
        out = {"embeds": np.asarray(self.embeds[i]), "frames": np.asarray(self.frames[i])}
        if self.audio is not None:
            out["audio"] = np.asarray(self.audio[i])
        return out

    @property
    def failed(self) -> list[dict]:
        return self.meta.get("failed", [])

    @staticmethod
    def write(folder: str | Path, ids: Sequence[str], embeds: np.ndarray, frames: np.ndarray,
              audio: np.ndarray | None = None, meta: dict | None = None) -> FeatureCache:  # fmt: skip
        """Write a cache folder from whole arrays, atomically (through a :class:`CacheWriter`)."""
        embeds, frames = np.asarray(embeds), np.asarray(frames, dtype=np.int16)
        if len(ids) != len(embeds) or len(ids) != len(frames) or (audio is not None and len(audio) != len(ids)):
            raise ValueError("ids, embeds, frames (and audio) must have one row per clip")
        if embeds.ndim != 3 or frames.ndim != 2:
            raise ValueError(f"expected embeds [N, K, D] and frames [N, K], got {embeds.shape} and {frames.shape}")
        writer = CacheWriter(folder, len(ids), k=embeds.shape[1], dim=embeds.shape[2], dtype=embeds.dtype,
                             samples=None if audio is None else np.shape(audio)[1])  # fmt: skip
        with writer:
            block = 1024
            for i in range(0, len(ids), block):
                writer.add_rows(ids[i : i + block], embeds[i : i + block], frames[i : i + block],
                                None if audio is None else audio[i : i + block])  # fmt: skip
            return writer.commit(meta)


class _NpyRows:
    """A preallocated ``.npy`` file written (or read) row by row with positional I/O: no memory map is held, so the
    process's resident memory stays bounded however large the file grows (the data goes through the page cache)."""

    def __init__(self, path: Path, dtype, row_shape: tuple, capacity: int | None = None):
        self.path, self.dtype, self.row_shape = Path(path), np.dtype(dtype), tuple(row_shape)
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        if capacity is not None:  # create (sparse: only written rows take disk space)
            mm = np.lib.format.open_memmap(self.path, mode="w+", dtype=self.dtype, shape=(capacity, *self.row_shape))
            self.offset, self.capacity = int(mm.offset), capacity
            del mm
        else:
            with open(self.path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(f)
                if fortran:
                    raise ValueError(f"{self.path}: Fortran-ordered arrays are not supported")
                self.offset, self.capacity, self.dtype, self.row_shape = f.tell(), shape[0], dtype, tuple(shape[1:])
                self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self.fd = os.open(self.path, os.O_RDWR if capacity is not None else os.O_RDONLY)

    def write(self, start: int, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape or start + len(rows) > self.capacity:
            raise ValueError(
                f"{self.path.name}: rows {rows.shape} at {start} do not fit [{self.capacity}, {self.row_shape}]"
            )
        data = memoryview(rows).cast("B")
        pos = self.offset + start * self.row_bytes
        while len(data):
            n = os.pwrite(self.fd, data, pos)
            data, pos = data[n:], pos + n

    def read(self, start: int, count: int = 1) -> np.ndarray:
        n = count * self.row_bytes
        buf = os.pread(self.fd, n, self.offset + start * self.row_bytes)
        if len(buf) != n:
            raise ValueError(f"{self.path}: truncated (row {start + count} of {self.capacity})")
        return np.frombuffer(buf, dtype=self.dtype).reshape(count, *self.row_shape)

    def close(self, rows: int | None = None) -> None:
        """Close; with ``rows`` < capacity, shrink the file to its first ``rows`` rows (header rewritten in place)."""
        if self.fd is None:
            return
        if rows is not None and rows != self.capacity:
            _shrink_npy(self.fd, self.offset, rows, self.row_shape, self.dtype, self.row_bytes)
        os.close(self.fd)
        self.fd = None


def _shrink_npy(fd: int, offset: int, rows: int, row_shape: tuple, dtype, row_bytes: int) -> None:
    """Give an open ``.npy`` file the shape ``(rows, *row_shape)``: a header of exactly the same length (fewer digits,
    more padding: the format allows it) and the data cut after ``rows`` rows."""
    start = 10 if os.pread(fd, 2, 6) == b"\x01\x00" else 12  # header text starts after magic, version, length
    text = repr({"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                 "shape": (rows, *row_shape)})  # fmt: skip
    length = offset - start
    if len(text) + 1 > length:
        raise ValueError("cannot shrink the .npy header in place")
    os.pwrite(fd, (text.ljust(length - 1) + "\n").encode("latin1"), start)
    os.ftruncate(fd, offset + rows * row_bytes)


class CacheWriter:
    """Writes a :class:`FeatureCache` row by row with bounded memory: ``.npy`` files preallocated for ``capacity``
    rows in a hidden temporary folder beside ``folder`` (``.NAME.tmp-*``), rows written as they come, and
    :meth:`commit` shrinks them to the rows written and renames the folder into place (replacing an older cache).
    Leaving the ``with`` block without a commit (an error, Ctrl-C) removes the temporary folder: nothing
    half-written is ever left where a cache is expected.

    ``dim`` may be None until the first rows arrive (the encoder's output size)."""

    def __init__(self, folder: str | Path, capacity: int, k: int, dim: int | None, dtype=np.float32,
                 samples: int | None = None):  # fmt: skip
        self.folder = Path(folder)
        self.capacity, self.k, self.dim, self.dtype, self.samples = int(capacity), int(k), dim, np.dtype(dtype), samples
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(dir=self.folder.parent, prefix=f".{self.folder.name}.tmp-"))
        self.ids: list[str] = []
        self._seen: set[str] = set()
        self._files: dict[str, _NpyRows] = {}
        if dim is not None:
            self._open(dim)

    def _open(self, dim: int) -> None:
        self.dim = int(dim)
        self._files["embeds"] = _NpyRows(self.tmp / "embeds.npy", self.dtype, (self.k, self.dim), self.capacity)
        self._files["frames"] = _NpyRows(self.tmp / "frames.npy", np.int16, (self.k,), self.capacity)
        if self.samples is not None:
            self._files["audio"] = _NpyRows(self.tmp / "audio.npy", np.float16, (self.samples,), self.capacity)

    def __len__(self) -> int:
        return len(self.ids)

    def add_rows(self, ids: Sequence[str], embeds, frames, audio=None) -> None:
        """Append rows: ``embeds`` [n, k, dim], ``frames`` [n, k], ``audio`` [n, samples] (when the cache has audio)."""
        embeds = np.asarray(embeds)
        if not self._files:
            self._open(embeds.shape[-1])
        if len(ids) != len(embeds) or len(ids) != len(frames) or (self.samples is not None and audio is None):
            raise ValueError("ids, embeds, frames (and audio) must have one row per clip")
        for cid in ids:
            if cid in self._seen:
                raise ValueError(f"clip ids must be unique ({cid} twice)")
            self._seen.add(cid)
        n = len(self.ids)
        self._files["embeds"].write(n, embeds.reshape(len(ids), self.k, self.dim))
        self._files["frames"].write(n, np.asarray(frames).reshape(len(ids), self.k))
        if self.samples is not None:
            self._files["audio"].write(n, np.asarray(audio))
        self.ids.extend(str(c) for c in ids)

    def commit(self, meta: dict | None = None) -> FeatureCache:
        if not self._files:
            self._open(self.dim or 0)
        for f in self._files.values():
            f.close(rows=len(self.ids))
        (self.tmp / "ids.json").write_text(json.dumps(self.ids))
        (self.tmp / "meta.json").write_text(json.dumps({"format": CACHE_FORMAT, **(meta or {})}, indent=1, default=str))
        os.chmod(self.tmp, 0o755)
        old = None
        if self.folder.exists():
            old = self.folder.with_name(f".{self.folder.name}.old-{os.getpid()}")
            os.replace(self.folder, old)
        os.replace(self.tmp, self.folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return FeatureCache(self.folder)

    def abort(self) -> None:
        for f in self._files.values():
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc) -> None:
        if self.tmp.exists():  # not committed: an error or an interruption
            self.abort()


def merge_caches(parts: Sequence[str | Path], out: str | Path, order: Sequence[str] | None = None,
                 meta: dict | None = None, block: int = 256) -> FeatureCache:  # fmt: skip
    """Concatenate cache folders (e.g. one per rank) into ``out``, rows in ``order`` (clip ids; default: as given),
    streaming runs of consecutive rows (bounded memory, whatever the size). ``meta["failed"]`` lists are merged in
    the same order and their reasons counted."""
    caches = [FeatureCache(p, mmap=True) for p in parts]
    where = {}
    for c, cache in enumerate(caches):
        for i, cid in enumerate(cache.ids):
            if cid in where:
                raise ValueError(f"clip {cid} is in two parts ({parts[where[cid][0]]} and {parts[c]})")
            where[cid] = (c, i)
    failed = [f for cache in caches for f in cache.failed]
    if order is not None:
        rank = {cid: i for i, cid in enumerate(order)}
        ids = sorted(where, key=lambda cid: rank.get(cid, len(rank)))
        failed.sort(key=lambda f: rank.get(f.get("id"), len(rank)))
    else:
        ids = list(where)
    first = caches[0] if caches else None
    k, dim = (first.embeds.shape[1], first.embeds.shape[2]) if first is not None else (1, 0)
    has_audio = bool(caches) and all(c.audio is not None for c in caches)
    samples = first.audio.shape[1] if has_audio else None
    readers = [{name: _NpyRows(c.folder / f"{name}.npy", None, ()) for name in ("embeds", "frames", "audio")
                if name != "audio" or has_audio} for c in caches]  # fmt: skip
    base = {k_: v for k_, v in (first.meta if first else {}).items() if k_ not in ("failed", "rank", "world", "format")}
    try:
        with CacheWriter(out, len(ids), k, dim, first.embeds.dtype if first else np.float32, samples) as writer:
            i = 0
            while i < len(ids):  # a run of rows that are consecutive in one part: one read per array
                c, r = where[ids[i]]
                j = i + 1
                while j < len(ids) and j - i < block and where[ids[j]] == (c, r + j - i):
                    j += 1
                rows = {name: rd.read(r, j - i) for name, rd in readers[c].items()}
                writer.add_rows(ids[i:j], rows["embeds"], rows["frames"], rows.get("audio"))
                i = j
            return writer.commit({**base, **(meta or {}), "failed": failed, "failure_counts": failure_counts(failed)})
    finally:
        for rd in readers:
            for f in rd.values():
                f.close()


# reasons a clip is left out of a cache, as counted in meta["failure_counts"]: (name, words that identify it)
FAILURE_KINDS = (
    ("missing_file", ("no video file", "no such file")),
    ("no_ssl_entry", ("no ssl top-k entry",)),
    ("no_audio", ("no audio track", "audio track holds no samples", "no audio between")),
    ("no_video", ("no video stream", "no video frames")),
    ("corrupt", ("corrupt", "not a readable", "empty file", "cannot seek", "nan or infinite")),
)


def failure_counts(failed: Sequence[Mapping]) -> dict[str, int]:
    """``{reason: count}`` of a cache's ``meta["failed"]`` list (:data:`FAILURE_KINDS`, else ``other``)."""
    counts: dict[str, int] = {}
    for f in failed:
        text = str(f.get("error", "")).lower()
        kind = next((name for name, words in FAILURE_KINDS if any(w in text for w in words)), "other")
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _decode_for_cache(args) -> tuple[str, object]:
    folder, record, topk, method, k, want_audio, size = args
    try:
        idx = select_frames(record.clip_id, topk, method, k, n_frames=int(round(record.seconds * FPS)))
        clip = folder.load(record, audio=want_audio, size=size, only=idx)
        return record.clip_id, (idx, clip.frames, clip.audio)
    except (VideoError, KeyError, ValueError) as err:
        msg = err.args[0] if isinstance(err, KeyError) else str(err)
        return record.clip_id, str(msg).splitlines()[0]


def encode_frames(encoder, pictures: Sequence[np.ndarray]) -> tuple[np.ndarray, bool]:
    """Embed a list of uint8 pictures [H, W, 3] that may differ in size (real clips come in several aspect ratios):
    one ``encoder.encode`` call when they share a size or the encoder takes mixed sizes (``mixed_sizes = True``:
    it preprocesses each picture itself), else one call per size, the rows put back in order.
    Returns (float embeddings [n, D], whether the sizes were mixed)."""

    def run(x):
        e = encoder.encode(x)
        return e.detach().float().cpu().numpy() if hasattr(e, "detach") else np.asarray(e, np.float32)

    shapes = [p.shape for p in pictures]
    if len(set(shapes)) <= 1:
        return run(np.stack(pictures)), False
    if getattr(encoder, "mixed_sizes", False):
        return run(list(pictures)), True
    out = None
    for shape in dict.fromkeys(shapes):
        rows = [i for i, s in enumerate(shapes) if s == shape]
        e = run(np.stack([pictures[i] for i in rows]))
        out = np.zeros((len(pictures), e.shape[-1]), e.dtype) if out is None else out
        out[rows] = e
    return out, True


def _bounded_map(pool, fn, items, ahead: int):
    """``pool.map`` that keeps at most ``ahead`` results pending (``Executor.map`` submits everything at once, and
    decoded clips waiting for a slow encoder would pile up in memory)."""
    from collections import deque

    items, pending = iter(items), deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def precompute_features(folder: VideoFolder, encoder, out: str | Path, topk: Mapping[str, Mapping] | None = None,
                        method: str = "top1", k: int = 1, audio: bool = True, batch_clips: int = 16,
                        rank: int = 0, world: int = 1, workers: int = 0, size: int | None = None,
                        dtype=np.float32, on_error: str = "skip", progress: bool = True) -> FeatureCache:  # fmt: skip
    """Decode, select, encode and cache every clip of ``folder`` (see module docstring).

    The clips are taken in chunks of ``batch_clips`` consecutive records, one ``encoder.encode`` call per chunk
    (:func:`encode_frames`: pictures of several sizes are fine); with ``world > 1`` this process does chunks
    ``rank, rank + world, ...`` only, so every encoder call sees the same batch as in a single-process run and merged
    shards equal the single-process result exactly (``s2v_lib.distributed``). ``workers`` threads decode videos
    ahead of the encoder (at most ``2 * workers`` clips ahead). Rows go straight to disk (:class:`CacheWriter`), so
    memory does not grow with the number of clips. ``on_error="skip"`` lists failing clips (missing file, corrupt or
    audio-less video, no SSL entry) in ``meta["failed"]`` with their counts in ``meta["failure_counts"]``;
    ``"raise"`` stops at the first (and leaves no cache).
    """
    from .progress import progress as bar

    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', not {on_error!r}")
    records = folder.records
    chunks = [records[i : i + batch_clips] for i in range(0, len(records), max(1, batch_clips))]
    mine = [c for j, c in enumerate(chunks) if j % world == rank]
    n_mine = sum(len(c) for c in mine)
    n_k = k if method == "topk" else 1
    seconds = records[0].seconds if records else CLIP_SECONDS
    samples = int(round(seconds * SAMPLE_RATE)) if audio else None
    failed, mixed = [], 0
    pool = None
    if workers > 0:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(workers)
    try:
        with CacheWriter(out, n_mine, n_k, None, dtype, samples) as writer:
            jobs = ((folder, r, topk, method, k, audio, size) for chunk in mine for r in chunk)
            results = _bounded_map(pool, _decode_for_cache, jobs, 2 * workers) if pool else map(_decode_for_cache, jobs)
            results = iter(bar(results, total=n_mine, desc=f"features (rank {rank})") if progress else results)
            for chunk in mine:
                ok = []
                for _ in chunk:
                    cid, res = next(results)
                    if isinstance(res, str):
                        if on_error == "raise":
                            raise VideoError(cid, res)
                        failed.append({"id": cid, "error": res})
                    else:
                        ok.append((cid, res))
                if not ok:
                    continue
                pictures = [p for _, res in ok for p in res[1]]
                e, was_mixed = encode_frames(encoder, pictures)
                mixed += was_mixed
                writer.add_rows([cid for cid, _ in ok], e.astype(dtype).reshape(len(ok), n_k, -1),
                                np.stack([res[0] for _, res in ok]),
                                np.stack([res[2] for _, res in ok]).astype(np.float16) if audio else None)  # fmt: skip
            if writer.dim is None:
                writer.dim = int(getattr(encoder, "dim", 0))
            meta = {
                "encoder": type(encoder).__name__, "method": method, "k": k, "fps": FPS, "frame_base": 0,
                "seconds": seconds, "sample_rate": SAMPLE_RATE, "root": str(folder.root), "n_records": len(records),
                "failed": failed, "failure_counts": failure_counts(failed), "mixed_size_batches": mixed,
                "rank": rank, "world": world, "batch_clips": batch_clips,
            }  # fmt: skip
            return writer.commit(meta)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
