"""Sound-source localisation (SSL) and top-1 frame selection (paper guide step 2), measured on the toy world's truth.

Sound2Vision trains on the frame of each video that best shows what is heard, picked by an audio-visual localisation
model; the authors used "Less Can Be More" (WACV 2022) and released only the resulting top-10 frame indices, never
the SSL code. This module is our own, small, label-free SSL model in the spirit of EZ-VSL (Mo & Morgado, ECCV 2022):

* an audio encoder maps the clip's spectrogram to one unit vector :math:`a`;
* a fully convolutional visual encoder maps every frame :math:`t` to a grid of unit vectors :math:`v_{t,p}`
  (16 x 16 positions :math:`p` for a 32 x 32 frame);
* the **localisation map** of frame :math:`t` is :math:`S_t(p) = \\cos(a, v_{t,p})`;
* training is contrastive multiple-instance learning: the clip-level similarity of audio :math:`i` and video
  :math:`j` is a *maximum over frames and positions*, :math:`s_{ij} \\approx \\max_{t,p} \\cos(a_i, v_{j,t,p})`,
  and a symmetric InfoNCE over the batch (temperature :math:`\\tau = 0.03`) pulls each clip's own pair above the
  others. The max matters: in most frames the sounding object is off-screen or hidden, and silent distractors
  wander in, so a clip is a *bag* of frames and positions of which at least one shows the source; nothing says
  which. EZ-VSL takes the hard max; we take the smooth (log-sum-exp) max with bag temperature 0.1, because our
  visual encoder starts from random weights, not ImageNet, and with the hard max (one instance per pair gets a
  gradient) the loss was still at chance after 150 steps where the smooth max had learned to localise.
  No labels, no boxes and no visibility flags are used to train (ground truth is for evaluation only);
* the **per-frame score** pools the map: ``max`` (default; the same pooling as the training objective),
  ``mean``, or ``topk`` (mean of the k largest positions). Frames are ranked by score: top-1 is the training frame,
  top-10 is what the authors cache (``top1_boxes_top10_moments.json``, see :func:`write_video_topk`).

Bad input is flagged, never turned into a silently wrong pair (:func:`select_top1_frame`):
``silent`` (the loudest 64 ms of the clip is below ``SILENCE_DBFS``: nothing to localise); ``no_source_in_view``
when the best frame's score is below the model's *absent threshold* (set without labels by Otsu's method on the
bimodal distribution of frame scores of its training clips) **or** below 85% of what the same sound scores on the
frames of ~100 *other* clips (:func:`reference_best_scores`: among ordinary clips some show that kind of source, so
this is the score the sound reaches when its source is in view; it catches the look-alike silent distractors that
fool a fixed threshold); and ``single_frame`` (no choice to make: the pair is kept, counted, and still subject to the
absence checks). Flagged clips other than ``single_frame`` are skipped.

``s2v ssl --out DIR`` (:func:`run_ssl_benchmark`) measures all this on held-out clips against the ground truth, plus
the downstream effect: the same alignment training (``s2v_lib.demo``) on SSL top-1 pairs vs middle-frame pairs.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import toyworld as tw
from .audio import FrontEnd

POOLINGS = ("max", "mean", "topk")
SILENCE_DBFS = tw.NOISE_FLOOR_DB + 9.0  # loudest 64 ms window below this: nothing sounds (toy floor -57 dBFS,
# quietest source -39 dBFS)
SSL_EVAL_SEED = 4000  # held-out clips of the benchmark (never used to train the SSL model or the demo)
FLAGS = ("ok", "single_frame", "silent", "no_source_in_view")
REFERENCE_MARGIN = 0.85  # no source in view: the best frame scores below 85% of what the sound scores elsewhere


# ----------------------------------------------------------------------------------------------------------------
# the model


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class SSLModel(nn.Module):
    """Audio embedding vs every position of a frame's feature map -> localisation map (EZ-VSL style).

    ``model(spec [B,1,F,T], frames [B,T',3,H,W]) -> maps [B,T',H/2,W/2]`` of cosine similarities in [-1, 1].
    """

    def __init__(self, dim: int = 64, width: int = 16, tau: float = 0.03, bag_temperature: float = 0.1,
                 pooling: str = "max", topk: int = 4):  # fmt: skip
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        self.config = {"dim": dim, "width": width, "tau": tau, "bag_temperature": bag_temperature,
                       "pooling": pooling, "topk": topk}  # fmt: skip
        self.tau, self.bag_temperature, self.pooling, self.topk = tau, bag_temperature, pooling, topk
        w = width
        # visual: 32x32 -> 16x16 grid of dim-d features; receptive field 15 px (the largest object is ~14 px wide)
        self.visual = nn.Sequential(_block(3, w, 2), _block(w, 2 * w), _block(2 * w, 2 * w), _block(2 * w, 2 * w),
                                    nn.Conv2d(2 * w, dim, 1))  # fmt: skip
        # audio: [1, 64, 65] spectrogram -> max over time-frequency (as EZ-VSL) -> dim-d
        self.audio = nn.Sequential(_block(1, w, 2), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2), _block(4 * w, 4 * w),
                                   nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(4 * w, dim))  # fmt: skip
        # label-free "no source in view" threshold on a clip's best frame score (Otsu, set after training)
        self.register_buffer("absent_threshold", torch.tensor(-1.0))

    def embed_audio(self, spec: torch.Tensor) -> torch.Tensor:
        """[B, 1, F, T] spectrograms -> [B, dim] unit vectors."""
        return F.normalize(self.audio(spec), dim=1)

    def feature_maps(self, frames: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] float frames in [0, 1] -> [N, dim, H/2, W/2] unit vectors (one per position)."""
        return F.normalize(self.visual(frames - 0.5), dim=1)

    def forward(self, spec: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Localisation maps of each clip's own frames: [B, T, h, w] = cos(a_b, v_{b,t,p})."""
        a = self.embed_audio(spec)
        b, t = frames.shape[:2]
        v = self.feature_maps(frames.flatten(0, 1)).unflatten(0, (b, t))
        return torch.einsum("bd,btdhw->bthw", a, v)

    def pairwise(self, spec: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Every audio against every clip's frames: [B_audio, B_video, T, h, w] cosine similarities."""
        a = self.embed_audio(spec)
        b, t = frames.shape[:2]
        v = self.feature_maps(frames.flatten(0, 1)).unflatten(0, (b, t))
        return torch.einsum("ad,btdhw->abthw", a, v)


def mil_infonce(sim: torch.Tensor, tau: float = 0.03, bag_temperature: float = 0.1) -> torch.Tensor:
    """Contrastive multiple-instance loss on ``sim`` [B_audio, B_video, *bag] (bag: frames, positions).

    Clip-level similarity ``s_ij = smoothmax_bag sim[i, j]``: the log-sum-exp maximum
    ``T_b * log mean exp(sim / T_b)`` with bag temperature ``T_b`` (``0``: the hard max of EZ-VSL), then a
    symmetric InfoNCE on the logits ``s_ij / tau``."""
    s = sim.flatten(2)
    if bag_temperature > 0:
        bag = bag_temperature * (torch.logsumexp(s / bag_temperature, dim=2) - math.log(s.shape[2]))
    else:
        bag = s.max(dim=2).values
    logits = bag / tau
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def pool_map(maps, pooling: str = "max", k: int = 4):
    """Per-frame score from localisation maps [..., h, w]: ``max``, ``mean`` or ``topk`` (mean of the k largest)."""
    m = torch.as_tensor(maps, dtype=torch.float32).flatten(-2)
    if pooling == "max":
        out = m.max(-1).values
    elif pooling == "mean":
        out = m.mean(-1)
    elif pooling == "topk":
        out = m.topk(min(k, m.shape[-1]), dim=-1).values.mean(-1)
    else:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
    return out.numpy() if not torch.is_tensor(maps) else out


# ----------------------------------------------------------------------------------------------------------------
# training (run once by `s2v pretrain ssl`; notebooks and commands load the shipped model)


def frames_tensor(frames) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [0, 1]."""
    x = torch.as_tensor(np.asarray(frames))
    return x.movedim(-1, -3).float() / 255.0


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the cut that best splits a bimodal 1-d distribution into two classes (no labels)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    hist, edges = np.histogram(v, bins=bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(edges[1:][np.argmax(between)])


def train_ssl(specs: torch.Tensor, frames: np.ndarray, steps: int = 800, batch_size: int = 64, lr: float = 2e-3,
              seed: int = 0, max_seconds: float | None = None, device: str = "cpu",
              **model_kw) -> tuple[SSLModel, dict]:  # fmt: skip
    """Contrastive MIL training on (spectrogram, all frames of the same clip) pairs; no labels, no boxes."""
    from .progress import Budget

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = SSLModel(**model_kw).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    frames_u8 = torch.as_tensor(np.asarray(frames))
    budget, losses = Budget(steps, max_seconds), []
    model.train()
    for step in budget.loop("SSL (contrastive MIL)"):
        budget.set_lr(opt, lr, budget.lr_factor(step))
        idx = torch.randint(0, len(specs), (batch_size,), generator=gen)
        x = frames_tensor(frames_u8[idx]).to(device)
        flip = torch.rand(batch_size, generator=gen) < 0.5  # label-free augmentation: mirror a clip's frames
        x = torch.where(flip[:, None, None, None, None].to(device), x.flip(-1), x)
        loss = mil_infonce(model.pairwise(specs[idx].float().to(device), x), model.tau, model.bag_temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    model.eval()
    scores = frame_scores(model, (specs, frames))
    model.absent_threshold.fill_(otsu_threshold(scores))
    stats = {"steps": len(losses), "final_loss": torch.stack(losses[-20:]).mean().item(),
             "seconds": budget.elapsed(), "absent_threshold": float(model.absent_threshold)}  # fmt: skip
    return model.cpu(), stats


def pretrain_ssl(out: Path | None = None, seconds: float = 600.0, n_clips: int = 6000, seed: int = 0, workers: int = 1,
                 device: str = "cpu", steps: int = 800) -> dict:  # fmt: skip
    """``s2v pretrain ssl``: train on the pre-training world's clips (unlabeled) and ship ``toy-ssl``."""
    from .data import build_toy_dataset
    from .experiment import spectrograms
    from .pretrain import PRETRAIN_SEED, PRETRAIN_WORLD
    from .registry import save_model

    ds = build_toy_dataset(n_clips, seed=PRETRAIN_SEED, config=PRETRAIN_WORLD, workers=workers)
    specs = spectrograms(ds)
    model, stats = train_ssl(specs, ds.frames, steps=steps, seed=seed, max_seconds=seconds, device=device)
    info = {"command": f"s2v pretrain ssl --device {device} --seconds {seconds:g} --clips {n_clips} --seed {seed}",
            "seed": seed, "world": f"seed {PRETRAIN_SEED}, {n_clips} clips (audio + {ds.frames.shape[1]} frames each)",
            "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
            "threads": torch.get_num_threads(), **stats}  # fmt: skip
    save_model(model, "toy-ssl", info, out, half=False)
    return stats


def load_ssl_model(device: str = "cpu") -> SSLModel:
    """The shipped toy SSL model (``data/models/toy-ssl.safetensors``, checked against its manifest)."""
    from .registry import load_toy_model

    return load_toy_model("toy-ssl", device=device)


# ----------------------------------------------------------------------------------------------------------------
# scoring


def _as_arrays(data) -> tuple[object, np.ndarray]:
    """A ToyDataset, or an (audio or spectrograms, frames) pair -> (audio-ish, frames uint8 [n, T, H, W, 3])."""
    if hasattr(data, "audio") and hasattr(data, "frames"):
        return data.audio, np.asarray(data.frames)
    audio, frames = data
    return audio, np.asarray(frames)


def _spectrograms(audio, batch: int = 512) -> torch.Tensor:
    """Waveforms [n, N] (toy: 2 s at 16 kHz) -> [n, 1, F, T]; spectrogram tensors pass through unchanged."""
    if torch.is_tensor(audio) and audio.ndim == 4:
        return audio
    a = np.asarray(audio)
    if a.ndim == 1:
        a = a[None]
    fe = FrontEnd.preset("toy")
    if a.shape[1] != fe.n_samples:  # real clips (10 s): same window and hop, the whole clip
        fe = FrontEnd(clip_seconds=a.shape[1] / fe.sample_rate)
    return torch.cat([fe(a[i : i + batch].astype(np.float32)) for i in range(0, len(a), batch)])


@torch.no_grad()
def localisation_maps(model: SSLModel, data, batch_size: int = 128, size: int | None = None) -> np.ndarray:
    """Localisation maps [n, T, h, w] (cosine of the clip's audio with each frame position), optionally upsampled
    bilinearly to ``size`` x ``size`` pixels. ``data``: a ToyDataset or an (audio, frames uint8 [n,T,H,W,3]) pair."""
    model.eval()
    audio, frames = _as_arrays(data)
    specs = _spectrograms(audio)
    out = []
    for i in range(0, len(frames), batch_size):
        m = model(specs[i : i + batch_size].float(), frames_tensor(frames[i : i + batch_size]))
        if size is not None:
            m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
        out.append(m.numpy())
    return np.concatenate(out) if out else np.zeros((0, frames.shape[1], 1, 1), np.float32)


@torch.no_grad()
def frame_scores(model: SSLModel, data, pooling: str | None = None, batch_size: int = 128) -> np.ndarray:
    """Per-frame SSL scores [n, T]: each frame's localisation map pooled (``model.pooling`` unless given)."""
    model.eval()
    pooling = pooling or model.pooling
    audio, frames = _as_arrays(data)
    specs = _spectrograms(audio)
    out = []
    for i in range(0, len(frames), batch_size):
        m = model(specs[i : i + batch_size].float(), frames_tensor(frames[i : i + batch_size]))
        out.append(pool_map(m, pooling, model.topk).numpy())
    return np.concatenate(out) if out else np.zeros((0, frames.shape[1]), np.float32)


# ----------------------------------------------------------------------------------------------------------------
# ground truth and localisation metrics (evaluation only)


def source_masks(seed: int, n: int, config: tw.WorldConfig | None = None, start: int = 0) -> np.ndarray:
    """bool [n, T, 32, 32]: pixels inside *any* visible box of a sounding source (all copies of a many-event
    source, both sources of a mixture), regenerated from the world (``ToyDataset.boxes`` keeps only the first box)."""
    cfg = config or tw.WorldConfig()
    centre = np.arange(tw.IMAGE_SIZE) + 0.5
    out = np.zeros((n, cfg.n_frames, tw.IMAGE_SIZE, tw.IMAGE_SIZE), dtype=bool)
    for i in range(n):
        clip = tw.make_clip(seed, start + i, cfg)
        for src in clip.sources:
            for f, boxes in enumerate(src.boxes):
                for x0, y0, x1, y1 in boxes:
                    out[i, f] |= ((centre[:, None] >= y0) & (centre[:, None] <= y1)) & ((centre >= x0) & (centre <= x1))
    return out


def pointing_game(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per map: does its peak fall inside the sounding object? ``maps`` [N, H, W] at the masks' resolution."""
    flat = np.asarray(maps).reshape(len(maps), -1)
    return np.asarray(masks).reshape(len(masks), -1)[np.arange(len(flat)), flat.argmax(1)]


def ciou(maps: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per map: IoU of the map binarised at ``threshold`` of its own min-max range with the object mask
    (cIoU of the SSL literature, ``|P & G| / (|G| + |P & ~G|)``; 0.5 of the range, not the median used on
    224 x 224 benchmarks, because a toy object covers 2-20% of the frame)."""
    m = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    lo, hi = m.min(1, keepdims=True), m.max(1, keepdims=True)
    pred = (m - lo) >= threshold * np.maximum(hi - lo, 1e-12)
    gt = np.asarray(masks).reshape(len(masks), -1)
    return (pred & gt).sum(1) / np.maximum(gt.sum(1) + (pred & ~gt).sum(1), 1)


def auc_ciou(ious: np.ndarray) -> float:
    """Area under the success curve: fraction of maps with cIoU >= t, for t in 0, 0.05, ..., 1 (trapezoid)."""
    t = np.linspace(0, 1, 21)
    success = np.array([(np.asarray(ious) >= x).mean() for x in t])
    return float(np.sum(0.5 * (success[1:] + success[:-1]) * np.diff(t)))


# ----------------------------------------------------------------------------------------------------------------
# ranking and selection (with bad input flagged, never silently paired)


def topk_frames(scores, k: int = 10) -> np.ndarray:
    """Frame indices [n, min(k, T)], best first (ties: the earlier frame first)."""
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def loudest_window_dbfs(audio, window: int = 1024) -> np.ndarray:
    """Level in dBFS of the loudest ``window``-sample stretch (64 ms at 16 kHz) of each waveform [n, N]."""
    a = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    w = min(window, a.shape[1]) if a.shape[1] else 1
    n = a.shape[1] // w
    if n == 0:
        return np.full(len(a), -np.inf)
    power = np.square(a[:, : n * w].reshape(len(a), n, w), dtype=np.float64).mean(-1).max(-1)
    return 10 * np.log10(power + 1e-20)


def is_silent(audio, silence_dbfs: float = SILENCE_DBFS) -> np.ndarray:
    """bool [n]: nothing in the clip rises above ``silence_dbfs`` (there is no sound source to localise)."""
    return loudest_window_dbfs(audio) < silence_dbfs


@dataclass
class Selection:
    """Top-1 frame per clip, or a reason not to pair it. ``frame`` is -1 where the clip is skipped."""

    frame: np.ndarray  # int64 [n]
    score: np.ndarray  # float [n]: the best frame's score (NaN where the audio is silent)
    flag: np.ndarray  # str [n]: one of FLAGS
    topk: np.ndarray = field(default=None)  # int [n, k]: the ranking, best first

    @property
    def keep(self) -> np.ndarray:
        return self.frame >= 0

    def counts(self) -> dict[str, int]:
        return {f: int((self.flag == f).sum()) for f in FLAGS}

    def summary(self) -> str:
        c = self.counts()
        return (f"{len(self.frame)} clips: {int(self.keep.sum())} paired (of which {c['single_frame']} single-frame, "
                f"no choice made); skipped {c['silent']} silent, {c['no_source_in_view']} with no source in view")  # fmt: skip


def select_top1_frame(scores, audio=None, absent_threshold: float | None = None, reference_best=None,
                      margin: float = REFERENCE_MARGIN, k: int = 10, silence_dbfs: float = SILENCE_DBFS) -> Selection:  # fmt: skip
    """The training frame of each clip: the SSL top-1, unless the clip must be skipped.

    Flags, checked in this order: ``silent`` (``audio`` given and nothing sounds: skipped), ``no_source_in_view``
    (skipped: the best score is below ``absent_threshold``, e.g. ``model.absent_threshold``, or below ``margin``
    times ``reference_best``, the same sound's best score over frames of *other* clips, see
    :func:`reference_best_scores`), ``single_frame`` (kept: there was no choice to make), else ``ok``.
    ``scores`` is [n, T] (or [T] for one clip)."""
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if s.shape[1] == 0:
        raise ValueError("no frames to choose from (scores have shape [n, 0])")
    if not np.all(np.isfinite(s)):
        raise ValueError("SSL scores contain NaN or infinite values")
    order = topk_frames(s, k)
    best = s[np.arange(len(s)), order[:, 0]]
    flag = np.full(len(s), "ok", dtype=object)
    if s.shape[1] == 1:
        flag[:] = "single_frame"
    absent = np.zeros(len(s), bool)
    if absent_threshold is not None:
        absent |= best < float(absent_threshold)
    if reference_best is not None:
        absent |= best < margin * np.asarray(reference_best, dtype=np.float64)
    flag[absent] = "no_source_in_view"
    if audio is not None:
        silent = is_silent(audio, silence_dbfs)
        if len(silent) != len(s):
            raise ValueError(f"{len(silent)} waveforms for {len(s)} clips of scores")
        flag[silent] = "silent"
        best = np.where(silent, np.nan, best)
    frame = np.where(np.isin(flag, ("ok", "single_frame")), order[:, 0], -1)
    return Selection(frame.astype(np.int64), best, flag.astype(str), order)


@torch.no_grad()
def reference_best_scores(model: SSLModel, data, reference=None, n_reference: int = 128, seed: int = 0,
                          batch_size: int = 32) -> np.ndarray | None:  # fmt: skip
    """For each clip's sound, its best score over all frames of up to ``n_reference`` *other* clips.

    This is what the sound scores when its source is in view: among ~100 ordinary clips some show the same kind of
    source. A clip whose own best frame scores far below that (``< margin x``) does not show its source, even where
    a look-alike silent object fools the absolute threshold. No labels are used. ``reference`` defaults to ``data``
    itself (each clip excluded from its own reference); with fewer than 32 reference clips the check is not made
    (returns None)."""
    audio, _ = _as_arrays(data)
    same = reference is None
    reference = data if same else reference
    ref_audio, ref_frames = _as_arrays(reference)
    if len(ref_frames) < 32:
        return None
    pick = np.random.default_rng(seed).permutation(len(ref_frames))[:n_reference]
    model.eval()
    v = model.feature_maps(frames_tensor(ref_frames[pick]).flatten(0, 1))  # [R*T, D, h, w]
    v = v.unflatten(0, (len(pick), -1)).permute(0, 1, 3, 4, 2).flatten(1, 3)  # [R, T*h*w, D]
    specs = _spectrograms(audio)
    out = []
    for i in range(0, len(specs), batch_size):
        a = model.embed_audio(specs[i : i + batch_size].float())
        best = torch.einsum("nd,rpd->nrp", a, v).max(-1).values  # [n, R]
        if same:  # never compare a clip with itself
            rows = torch.arange(i, i + len(a))
            best[rows[:, None] == torch.as_tensor(pick)[None]] = -1.0
        out.append(best.max(-1).values.numpy())
    return np.concatenate(out)


def select_training_frames(model: SSLModel, data, k: int = 10, reference=None) -> Selection:
    """Score every frame of a ToyDataset (or an (audio, frames) pair) and select: :func:`select_top1_frame` with the
    silence check, the model's absent threshold, and the comparison with other clips (:func:`reference_best_scores`,
    against ``reference`` clips, by default the other clips of ``data``)."""
    audio, _ = _as_arrays(data)
    ref = reference_best_scores(model, data, reference)
    return select_top1_frame(frame_scores(model, data), audio, float(model.absent_threshold), ref, k=k)


# ----------------------------------------------------------------------------------------------------------------
# real video: rank frames sampled at 10 fps and cache the top-10 (the authors' top1_boxes_top10_moments.json)


def map_box(heat: np.ndarray, threshold: float = 0.5) -> tuple[float, float, float, float]:
    """Box [x0, y0, x1, y1] (in map cells) of the region around the map's peak that stays above ``threshold`` of
    the map's min-max range (4-connected)."""
    h = np.asarray(heat, dtype=np.float64)
    lo, hi = h.min(), h.max()
    mask = (h - lo) >= threshold * max(hi - lo, 1e-12)
    region = np.zeros_like(mask)
    region[np.unravel_index(h.argmax(), h.shape)] = True
    while True:  # grow from the peak inside the mask
        grown = region.copy()
        grown[1:] |= region[:-1]
        grown[:-1] |= region[1:]
        grown[:, 1:] |= region[:, :-1]
        grown[:, :-1] |= region[:, 1:]
        grown &= mask
        if (grown == region).all():
            break
        region = grown
    ys, xs = np.nonzero(region)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def rank_clip_frames(model: SSLModel, audio: np.ndarray, frames: np.ndarray, k: int = 10) -> dict:
    """One clip (16 kHz mono audio [N], uint8 frames [T, H, W, 3] of any size) -> ``video.topk_entry``: the top-k
    frame indices and the top-1 frame's box in that frame's pixels. Frames are resized to the model's 32 x 32."""
    return _rank_clip(model, audio, frames, k)[0]


def _rank_clip(model: SSLModel, audio: np.ndarray, frames: np.ndarray, k: int) -> tuple[dict, float]:
    from .video import topk_entry

    frames = np.asarray(frames)
    h, w = frames.shape[1:3]
    small = _resize_frames(frames)
    maps = localisation_maps(model, (np.asarray(audio, dtype=np.float32)[None], small[None]))[0]  # [T, h', w']
    scores = pool_map(maps, model.pooling, model.topk)
    sy, sx = h / maps.shape[1], w / maps.shape[2]
    boxes = np.array([[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] for b in map(map_box, maps)])
    return topk_entry(scores, boxes, k), float(scores.max())


def write_video_topk(model: SSLModel, folder, path: str | Path, k: int = 10, format: str = "s2v",
                     size: int | None = 64) -> dict:  # fmt: skip
    """Rank the frames (10 fps) of every clip of a ``video.VideoFolder`` and write the top-``k`` JSON
    (``video.write_topk_json``; ``format="authors"`` gives the layout of ``top1_boxes_top10_moments.json``).
    Clips that cannot be decoded, silent clips and clips with no source in view are skipped and counted (clips are
    decoded one at a time, so only the model's absolute threshold applies here, not the comparison with other clips
    of :func:`select_training_frames`)."""
    from .progress import progress
    from .video import VideoError, write_topk_json

    entries, skipped = {}, {"unreadable": [], "silent": [], "no_source_in_view": []}
    for record in progress(folder.records, desc="SSL top-k"):
        try:
            clip = folder.load(record, size=size)
        except VideoError as err:
            skipped["unreadable"].append(f"{record.clip_id}: {err.reason}")
            continue
        if is_silent(clip.audio[None])[0]:
            skipped["silent"].append(record.clip_id)
            continue
        entry, best = _rank_clip(model, clip.audio, clip.frames, k)
        if best < float(model.absent_threshold):
            skipped["no_source_in_view"].append(record.clip_id)
            continue
        entries[record.clip_id] = entry
    write_topk_json(path, entries, format=format)
    return {"written": len(entries), **{k_: len(v) for k_, v in skipped.items()}, "skipped": skipped}


def _resize_frames(frames: np.ndarray, size: int = tw.IMAGE_SIZE) -> np.ndarray:
    """uint8 [T, H, W, 3] -> uint8 [T, size, size, 3] (antialiased bilinear), unchanged if already that size."""
    frames = np.asarray(frames)
    if frames.shape[1:3] == (size, size):
        return frames
    x = F.interpolate(frames_tensor(frames), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


# ----------------------------------------------------------------------------------------------------------------
# `s2v ssl`: localisation and selection measured on held-out toy clips, and the downstream effect of the pairing


@dataclass
class SSLBenchConfig:
    n_eval: int = 1000  # held-out clips (seed SSL_EVAL_SEED) for localisation and selection
    n_bad: int = 100  # clips of each bad-input kind (never visible, silent, single frame)
    downstream: bool = True  # also train the audio encoder on top-1 vs middle pairs and judge generated pictures
    n_train: int = 2000  # downstream training clips (the demo uses 4000; reduced to fit the 5-minute budget)
    n_val: int = 160
    n_test: int = 240
    epochs: int = 3
    sampling_steps: int = 10
    n_figure: int = 4  # clips shown in the figures
    seeds: tuple[int, ...] = (1,)  # each seed: other held-out clips and another downstream split and training seed


def evaluate_localisation(model: SSLModel, n: int = 1000, seed: int = SSL_EVAL_SEED, workers: int = 2,
                          start: int = 0) -> tuple[dict, tuple]:  # fmt: skip
    """Pointing game, cIoU and frame-selection precision on ``n`` held-out clips (clips ``start .. start + n - 1`` of
    the world ``seed``), against the ground truth. Returns (metrics with ``_per_clip``, (clips, maps at 32 x 32
    [n, T, 32, 32], frame scores [n, T]))."""
    from .data import build_toy_dataset

    ds = build_toy_dataset(n, seed=seed, workers=workers, start=start)
    masks = source_masks(seed, n, start=start)
    native = localisation_maps(model, ds)  # [n, T, 16, 16]
    maps = F.interpolate(torch.from_numpy(native), size=masks.shape[-2:], mode="bilinear", align_corners=False).numpy()
    vis = ds.visible
    pg = pointing_game(maps[vis], masks[vis])
    ious = ciou(maps[vis], masks[vis])
    scores = {p: pool_map(native, p, model.topk) for p in POOLINGS}
    s = scores[model.pooling]
    rows = np.arange(n)
    top1 = s.argmax(1)
    sel = select_top1_frame(s, ds.audio, float(model.absent_threshold), reference_best_scores(model, ds))
    t = vis.shape[1]
    per_clip = {"selection_precision": vis[rows, top1].astype(float),
                "selection_precision_middle": vis[:, t // 2].astype(float),
                "selection_precision_random": vis.mean(1), "pointing_game": pg.astype(float)}  # fmt: skip
    return {
        "_per_clip": per_clip,
        "pointing_game": float(pg.mean()),
        "ciou_at_0.5": float((ious >= 0.5).mean()),
        "auc_ciou": auc_ciou(ious),
        "mean_ciou": float(ious.mean()),
        "selection_precision": float(vis[rows, top1].mean()),
        "selection_precision_middle": float(vis[:, t // 2].mean()),
        "selection_precision_random": float(vis.mean()),  # expected precision of a uniformly random frame
        "selection_precision_kept": float(vis[rows, sel.frame][sel.keep].mean()) if sel.keep.any() else float("nan"),
        "selection_precision_by_pooling": {p: float(vis[rows, v.argmax(1)].mean()) for p, v in scores.items()},
        "top3_precision": float(np.mean([vis[rows, k].mean() for k in topk_frames(s, 3).T])),
        "flagged_held_out": {k: v for k, v in sel.counts().items() if k != "ok"},
        "n_clips": n, "n_visible_frames": int(vis.sum()), "eval_seed": seed, "eval_clips": [start, start + n],
    }, (ds, maps, s)  # fmt: skip


def evaluate_bad_input(model: SSLModel, n: int = 100, seed: int = SSL_EVAL_SEED + 1, reference=None) -> dict:
    """How clips that must not become pairs are handled: flags per kind, the pairs that would be made and how many
    of those miss the source. ``reference``: ordinary clips for the comparison check (default: held-out clips)."""
    from .data import build_toy_dataset

    kinds = {"never_visible": tw.WorldConfig(never_visible=True), "silent": tw.WorldConfig(silent=True),
             "single_frame": tw.WorldConfig(n_frames=1)}  # fmt: skip
    if reference is None:
        reference = build_toy_dataset(256, seed=SSL_EVAL_SEED)
    out = {}
    for j, (name, cfg) in enumerate(kinds.items()):
        ds = build_toy_dataset(n, seed=seed + j, config=cfg, cache=False)
        sel = select_training_frames(model, ds, reference=reference)
        wrong = sel.keep & ~ds.visible[np.arange(n), np.maximum(sel.frame, 0)]
        out[name] = {**sel.counts(), "paired": int(sel.keep.sum()), "paired_without_source": int(wrong.sum())}
    return out


def run_ssl_benchmark(out: str | Path, force: bool = False, config: SSLBenchConfig | None = None) -> dict:
    """``s2v ssl --out DIR``: measure the shipped SSL model on held-out toy clips and write ``DIR/metrics.json``,
    ``heatmaps.png``, ``score_bars.png`` and ``top10_moments.json`` (the authors' layout); prints a summary.
    Each seed of ``config.seeds`` measures other held-out clips (and trains the downstream encoders on another split
    with another training seed); with several seeds every figure gets a 95% interval."""
    from . import stats, viz
    from .config import setup_torch
    from .demo import prepare_out
    from .experiment import TUNING_SEED
    from .registry import model_info
    from .video import topk_entry, write_topk_json

    cfg = config or SSLBenchConfig()
    t0 = time.time()
    setup_torch()
    if TUNING_SEED in cfg.seeds:
        raise ValueError(f"seed {TUNING_SEED} is the tuning seed: report other seeds")
    out = prepare_out(out, force)
    model = load_ssl_model()
    first: dict = {}

    def one(seed: int) -> dict:
        m, (ds, maps, scores) = evaluate_localisation(model, cfg.n_eval, start=(seed - 1) * cfg.n_eval)
        if not first:
            first.update(ds=ds, maps=maps, scores=scores, start=(seed - 1) * cfg.n_eval)
        if cfg.downstream:
            m.update(downstream_gen_accuracy(model, cfg, seed))
        return m

    m, runs, excluded = stats.over_seeds(one, cfg.seeds, desc="SSL seeds")
    m["bad_input"] = evaluate_bad_input(model, cfg.n_bad, reference=first["ds"])
    # figures: a few held-out clips of the first seed; the clips whose middle frame misses the source first
    ds, maps, scores = first["ds"], first["maps"], first["scores"]
    t = ds.visible.shape[1]
    rows = np.argsort(ds.visible[:, t // 2], kind="stable")[: cfg.n_figure]
    masks = source_masks(SSL_EVAL_SEED, int(rows.max()) + 1, start=first["start"])[rows]
    viz.localisation_grid(ds.frames[rows], maps[rows], masks, ds.visible[rows], out / "heatmaps.png",
                          title="localisation maps (green: the source is in view)")  # fmt: skip
    viz.score_bars_grid(scores[rows], ds.visible[rows], out / "score_bars.png",
                        title="per-frame SSL score (green: source in view; * top-1, m middle)")  # fmt: skip
    ids = [f"toy-s{SSL_EVAL_SEED}-{first['start'] + i:05d}" for i in range(len(ds))]
    boxes = [[map_box(h) for h in clip] for clip in maps]
    write_topk_json(out / "top10_moments.json", {k: topk_entry(s, b) for k, s, b in zip(ids, scores, boxes)},
                    format="authors")  # fmt: skip
    m.update({
        "seeds": [s for s in cfg.seeds if s not in excluded], "excluded_seeds": excluded, "tuning_seed": TUNING_SEED,
        "interval": stats.INTERVAL_DEFINITION if len(runs) > 1 else "one seed: no interval",
        "seconds": time.time() - t0, "config": asdict(cfg), "command": f"s2v ssl --seeds {len(cfg.seeds)}",
        "model": {"name": "toy-ssl", **{k: v for k, v in model_info("toy-ssl").items() if k in ("sha256", "command")}},
    })  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(m, indent=2) + "\n")
    print(summary(m))
    print(f"wrote {out}/metrics.json, heatmaps.png, score_bars.png, top10_moments.json")
    return m


def downstream_gen_accuracy(model: SSLModel, cfg: SSLBenchConfig, seed: int = 1) -> dict:
    """The same alignment training (same clips, seeds, epochs) on SSL top-1 pairs and on middle-frame pairs; the
    judge's top-1 accuracy (and the lenient rate) on pictures generated from held-out sounds (``s2v_lib.experiment``)."""
    from .experiment import evaluate_variant, prepare_experiment, train_variant

    t0 = time.time()
    # flagged clips (silent, no source in view) are dropped from *both* variants so they differ only in the pairing
    exp = prepare_experiment(cfg.n_train, cfg.n_val, cfg.n_test, seed=seed, ssl_select=True)
    res = {}
    for pairing in ("top1", "middle"):
        v = train_variant(exp, pairing=pairing, epochs=cfg.epochs)
        mv, _ = evaluate_variant(exp, v, steps=cfg.sampling_steps, with_oracle=pairing == "top1")
        res[pairing] = mv
    keys = {"gen_top1_accuracy": "gen_top1_accuracy", "gen_accuracy": "gen_accuracy",
            "same_category_at_1": "same_category_at_1"}  # fmt: skip
    out = {f"{k}_{p}": res[p][key] for k, key in keys.items() for p in ("top1", "middle")}
    per_clip = {f"{k}_{p}": res[p]["_per_clip"][key] for k, key in keys.items() for p in ("top1", "middle")}
    out.update({
        "oracle_top1_accuracy": res["top1"]["oracle_top1_accuracy"], "oracle_accuracy": res["top1"]["oracle_accuracy"],
        "paired_frame_shows_source_top1": res["top1"]["paired_frame_shows_source"],
        "paired_frame_shows_source_middle": res["middle"]["paired_frame_shows_source"],
        "downstream": {"n_train": len(exp.train), "skipped_by_ssl": exp.ssl_counts, "epochs": cfg.epochs,
                       "n_test": cfg.n_test, "seconds": time.time() - t0},
    })  # fmt: skip
    return {**out, "_per_clip": per_clip}


def summary(m: dict) -> str:
    from .stats import compare, fmt, mean_of

    lines = [
        f"localisation  pointing game {fmt(m['pointing_game'])}   cIoU@0.5 {fmt(m['ciou_at_0.5'])}   "
        f"AUC(cIoU) {fmt(m['auc_ciou'])}   ({mean_of(m['n_clips']):.0f} clips per seed)",
        f"top-1 frame shows the source  SSL {fmt(m['selection_precision'])}   middle frame "
        f"{fmt(m['selection_precision_middle'])}   random frame {fmt(m['selection_precision_random'])}",
    ]
    bad = m.get("bad_input", {})
    if bad:
        lines.append("bad input (flagged and skipped, never paired silently): " + "; ".join(
            f"{k}: {v['paired']}/{sum(v[f] for f in FLAGS)} paired, {v['paired_without_source']} without the source"
            for k, v in bad.items()))  # fmt: skip
    if "gen_top1_accuracy_top1" in m:
        d = m["downstream"]
        a, b = m["gen_top1_accuracy_top1"], m["gen_top1_accuracy_middle"]
        lines.append(f"downstream ({mean_of(d['n_train']):.0f} clips, {mean_of(d['epochs']):.0f} epochs)  judged top-1 accuracy of generated "
                     f"pictures: SSL top-1 pairs {fmt(a)} vs middle-frame pairs {fmt(b)} (lenient "
                     f"{fmt(m['gen_accuracy_top1'])} vs {fmt(m['gen_accuracy_middle'])}; true frame "
                     f"{fmt(m['oracle_top1_accuracy'])}): {compare(a, b, names=('SSL top-1', 'middle frame'))}")  # fmt: skip
    lines.append(f"seeds {m.get('seeds')}; wall time {m.get('seconds', 0):.0f} s")
    return "\n".join(lines)
