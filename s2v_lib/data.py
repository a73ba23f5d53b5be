"""Clip data sets: the toy world in bulk (cached, atomic writes), frame pairing, and real files (paper guide step 1).

:class:`ToyDataset` holds many toy clips as arrays (audio as float16, frames as uint8, ground truth as numbers),
builds them in parallel, and caches them under ``data/cache`` keyed by everything that changes them. Writes are
atomic (temporary file + rename), so an interrupted run never leaves a half-written cache.

:func:`pair_frames` picks the training frame of each clip: ``middle`` (the baseline), ``random``, ``top1`` (the
sound-source-localisation pick; see ``s2v_lib.ssl``) or ``truth`` (the ground-truth best frame, used only for
evaluation). :func:`write_clip_files` writes a toy clip as real files (wav, and mp4 with an audio track via PyAV) so
the same loaders serve toy and real data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import toyworld as tw
from .config import cache_dir
from .progress import progress

CACHE_VERSION = 2  # 2: the world renders within full scale (levels -15 dB); caches of version 1 hold louder audio


@dataclass
class ToyDataset:
    """Arrays of n toy clips. ``targets[i, f]`` is :func:`toyworld.frame_targets` of clip i, frame f."""

    audio: np.ndarray  # float16 [n, N_SAMPLES]
    frames: np.ndarray  # uint8 [n, T, 32, 32, 3]
    category: np.ndarray  # int64 [n, S] (S = 1, or 2 for mixtures: -1 where a clip has one source)
    loudness_db: np.ndarray  # float32 [n]   (first source)
    pitch: np.ndarray  # float32 [n]
    n_events: np.ndarray  # int64 [n]
    visible: np.ndarray  # bool [n, T]   (first source in view)
    targets: np.ndarray  # float32 [n, T, 4, C]
    boxes: np.ndarray  # float32 [n, T, 4] first visible box of the first source (NaN where not in view)
    seed: int = 0

    def __len__(self) -> int:
        return len(self.audio)

    @property
    def label(self) -> np.ndarray:
        """Category of the first source of each clip."""
        return self.category[:, 0]

    def subset(self, idx) -> ToyDataset:
        idx = np.asarray(idx)
        kw = {f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self) if f.name != "seed"}
        return ToyDataset(seed=self.seed, **kw)

    def split(self, n_heldout: int) -> tuple[ToyDataset, ToyDataset]:
        """Train / held-out split by clip (the held-out clips are never seen in training)."""
        n = len(self)
        return self.subset(np.arange(n - n_heldout)), self.subset(np.arange(n - n_heldout, n))


def _clip_arrays(args) -> dict:
    seed, index, config = args
    clip = tw.make_clip(seed, index, config)
    cats = [s.category for s in clip.sources] + [-1] * (2 - len(clip.sources))
    src = clip.sources[0]
    boxes = np.full((len(clip.frames), 4), np.nan, dtype=np.float32)
    for f, bs in enumerate(src.boxes):
        if bs:
            boxes[f] = bs[0]
    return dict(
        audio=clip.audio.astype(np.float16),
        frames=clip.frames,
        category=np.array(cats, dtype=np.int64),
        loudness_db=np.float32(src.loudness_db),
        pitch=np.float32(src.pitch),
        n_events=np.int64(src.n_events),
        visible=np.array(src.visible, dtype=bool),
        targets=np.stack([tw.frame_targets(clip, f) for f in range(len(clip.frames))]),
        boxes=boxes,
    )


def _atomic_save_npz(path: Path, arrays: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def build_toy_dataset(n: int, seed: int = 0, config: tw.WorldConfig | None = None, workers: int = 1,
                      cache: bool = True, start: int = 0) -> ToyDataset:  # fmt: skip
    """Clips ``start .. start+n-1`` of the world with ``seed`` (cached under ``data/cache``)."""
    config = config or tw.WorldConfig()
    key = json.dumps([CACHE_VERSION, n, seed, start, dataclasses.asdict(config)], sort_keys=True)
    path = cache_dir() / f"toyworld-s{seed}-n{n}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.npz"
    if cache and path.exists():
        try:
            with np.load(path) as z:
                return ToyDataset(seed=seed, **{k: z[k] for k in z.files})
        except Exception:  # a damaged cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
    jobs = [(seed, start + i, config) for i in range(n)]
    if workers > 1:
        from multiprocessing import get_context

        with get_context("fork").Pool(workers) as pool:
            rows = list(progress(pool.imap(_clip_arrays, jobs, chunksize=64), total=n, desc="toy world"))
    else:
        rows = [_clip_arrays(j) for j in progress(jobs, desc="toy world")]
    arrays = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    if cache:
        _atomic_save_npz(path, arrays)
    return ToyDataset(seed=seed, **arrays)


# ----------------------------------------------------------------------------------------------------------------
# frame pairing (paper guide step 2)

PAIRINGS = ("middle", "random", "top1", "truth")


def truth_frame(ds: ToyDataset) -> np.ndarray:
    """Ground-truth best frame per clip, for evaluation: the frame nearest the middle that shows the source and no
    silent distractor; failing that one that shows the source; failing that the middle frame."""
    t = ds.visible.shape[1]
    n_sources = (ds.category >= 0).sum(1)[:, None]
    clean = ds.visible & (ds.targets[:, :, 0].sum(-1) <= n_sources)
    dist = np.abs(np.arange(t) - t // 2)[None].repeat(len(ds), 0).astype(float)
    dist[~ds.visible] = np.inf
    dist[ds.visible & ~clean] += t
    best = dist.argmin(1)
    best[~ds.visible.any(1)] = t // 2
    return best


def pair_frames(ds: ToyDataset, method: str = "middle", seed: int = 0, scores: np.ndarray | None = None) -> np.ndarray:
    """Index of the training frame of each clip. ``top1`` needs per-frame SSL ``scores`` [n, T]."""
    t = ds.frames.shape[1]
    if method == "middle":
        return np.full(len(ds), t // 2)
    if method == "random":
        return np.random.default_rng(seed).integers(0, t, len(ds))
    if method == "truth":
        return truth_frame(ds)
    if method == "top1":
        if scores is None:
            raise ValueError("pairing 'top1' needs per-frame scores from the SSL model (s2v_lib.ssl)")
        return np.asarray(scores).argmax(1)
    raise ValueError(f"unknown pairing {method!r}; use one of {', '.join(PAIRINGS)}")


def take_frames(ds: ToyDataset, idx: np.ndarray) -> np.ndarray:
    return ds.frames[np.arange(len(ds)), idx]


# ----------------------------------------------------------------------------------------------------------------
# real files


def write_clip_files(clip: tw.Clip, folder: str | Path, stem: str, fps: float = tw.N_FRAMES / tw.CLIP_SECONDS,
                     size: int = 128) -> dict[str, Path]:  # fmt: skip
    """Write a toy clip as ``stem.wav`` and ``stem.mp4`` (H.264 video upscaled to ``size`` px + AAC audio)."""
    import av

    from .audio import save_wav

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wav = save_wav(folder / f"{stem}.wav", clip.audio)
    mp4 = folder / f"{stem}.mp4"
    scale = max(1, size // clip.frames.shape[1])
    with av.open(str(mp4), "w") as out:
        from fractions import Fraction

        vs = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        vs.width = vs.height = clip.frames.shape[1] * scale
        vs.pix_fmt = "yuv420p"
        aus = out.add_stream("aac", rate=tw.SAMPLE_RATE)
        aus.layout = "mono"
        for frame in clip.frames:
            big = frame.repeat(scale, 0).repeat(scale, 1)
            for packet in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(big), format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        samples = clip.audio.astype(np.float32)[None]
        af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        af.sample_rate = tw.SAMPLE_RATE
        for packet in aus.encode(af):
            out.mux(packet)
        for packet in aus.encode():
            out.mux(packet)
    return {"wav": wav, "mp4": mp4}
