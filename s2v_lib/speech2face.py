"""Speech to face (paper guide step 8): a frozen speaker encoder, one linear map into the unCLIP embedding space.

    folder = CelebVFolder("CelebV-HQ")                      # 35666/*.mp4 + celebvhq_info.json
    cache = precompute_face_features(folder, load_unclip_image_encoder(), "cache/celebvhq")  # s2v_lib.full
    speaker = load_speaker_encoder("cuda")                  # Resemblyzer's VoiceEncoder: speech -> 256-d, frozen
    voices = speaker_embeddings(speaker, cache.audio)       # [N, 256]
    face_map = fit_face_map(voices[train], cache.embeds[train].mean(1))   # ridge regression, closed form
    faces = SpeechToFace(speaker, face_map, load_stable_unclip()).generate(waves, n=4)

or the whole path in one call, :func:`run_speech_to_face` (``python -m s2v_lib.speech2face --data DIR --out DIR``).

**The method.** The authors turn a voice into a face with a frozen speaker-embedding model and a *single linear map*
into the image-embedding space of Stable unCLIP (whose generator then draws the face); the mapper's training code was
not released. Here the map is fitted in closed form by ridge regression onto the targets: the frozen OpenCLIP
ViT-H/14 embeddings of face frames of the same clip (the mean over ``frames_per_clip`` frames spread over the
clip, so one blink or head turn does not decide the target). Only the map is learned; both encoders stay frozen.

**Data** (:class:`CelebVFolder`). A CelebV-HQ-style folder::

    ROOT/celebvhq_info.json   {"meta_info": {...}, "clips": {NAME: {"ytb_id": ..., "duration": {"start_sec": ...,
                              "end_sec": ...}, "bbox": {...}, "attributes": {...}}, ...}}   (the dataset's own file)
    ROOT/35666/NAME.mp4       the processed (cut, face-cropped) clips, in any sub-folder, any video extension

A CSV with a header naming a clip column (``name``/``clip``/``clip_id``/``id``) and optionally an identity column
(``ytb_id``/``identity``/``speaker``/``youtube_id``) and a ``split`` column may replace the JSON; without either,
every video file is a clip and its identity is its name less a trailing ``_N``. CelebV-HQ has no official split and
no speaker labels: clips are split **by YouTube video** (the identity proxy), so no face of the test set was seen while
fitting. Clips named in the metadata but absent from the folder (many YouTube videos are gone) are left out and
counted in ``folder.absent``. Audio: ``seconds`` (default 6 s) of 16 kHz mono from the clip start, tiled when shorter.

**Speaker encoders.** Anything callable ``[B, samples] (16 kHz) -> [B, D]`` plugs in. The default,
:class:`ResemblyzerEncoder`, is Resemblyzer 0.1.4's ``VoiceEncoder`` (3-layer LSTM over 40-band mel frames, 256-d,
Apache-2.0) re-implemented on torch/torchaudio and loading the weights that ship inside the PyPI wheel
(``pip install --no-deps resemblyzer==0.1.4``: its own dependencies, librosa and the compiled webrtcvad, are not
needed). It embeds an utterance exactly as ``VoiceEncoder.embed_utterance`` does (1.6 s partial windows at 1.3 per
second, L2-normalised mean of the partial embeddings; checked against the original in ``tests/test_speech2face.py``)
after Resemblyzer's volume normalisation; Resemblyzer's WebRTC voice-activity trimming of long silences is left out,
which keeps the encoder batched and free of compiled dependencies (talking-face clips are mostly speech).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .video import FPS, VIDEO_EXTENSIONS, VideoError, _scan, decode_clip

SPEECH_SECONDS = 6.0
RESEMBLYZER_VERSION = "0.1.4"
CELEBV_INFO = "celebvhq_info.json"

# ----------------------------------------------------------------------------------------------------------------
# the data: a CelebV-HQ-style folder


@dataclass(frozen=True)
class FaceClipRecord:
    """One talking-face clip: file stem ``name``, the ``identity`` it belongs to (CelebV-HQ: its YouTube video)."""

    name: str
    identity: str
    split: str = ""
    seconds: float = SPEECH_SECONDS
    duration: float | None = None  # the clip's length from the metadata, when known
    start: float = 0.0

    @property
    def clip_id(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return self.identity


_CLIP_COLUMNS = ("name", "clip", "clip_id", "clip_name", "id", "video", "file")
_IDENTITY_COLUMNS = ("ytb_id", "identity", "speaker", "speaker_id", "youtube_id", "person", "celebrity")


def _identity_from_name(name: str) -> str:
    """CelebV-HQ names a clip ``{ytb_id}_{n}``: the identity proxy is the name less a trailing ``_n``."""
    return re.sub(r"_\d+$", "", name) or name


def read_celebv_info(path: str | Path) -> list[FaceClipRecord]:
    """CelebV-HQ's ``celebvhq_info.json`` (or a CSV with a clip column, see the module docstring) -> records."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such metadata file")
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
        if not rows:
            return []
        head = [c.strip().lower() for c in rows[0]]
        col = next((head.index(c) for c in _CLIP_COLUMNS if c in head), None)
        if col is None:
            raise ValueError(f"{path}: the header must name a clip column ({', '.join(_CLIP_COLUMNS)}), got {head}")
        ident = next((head.index(c) for c in _IDENTITY_COLUMNS if c in head), None)
        split = head.index("split") if "split" in head else None
        out = []
        for n, row in enumerate(rows[1:], start=2):
            name = row[col].strip() if col < len(row) else ""
            if not name:
                raise ValueError(f"{path}:{n}: empty clip name")
            name = Path(name).stem if Path(name).suffix.lower() in VIDEO_EXTENSIONS else name
            who = row[ident].strip() if ident is not None and ident < len(row) else ""
            out.append(FaceClipRecord(name, who or _identity_from_name(name),
                                      row[split].strip() if split is not None and split < len(row) else ""))  # fmt: skip
        return out
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    clips = data.get("clips") if isinstance(data, dict) else None
    if not isinstance(clips, dict):
        raise ValueError(f'{path}: expected CelebV-HQ\'s layout {{"meta_info": ..., "clips": {{name: {{...}}}}}}')
    out = []
    for name, entry in clips.items():
        entry = entry if isinstance(entry, dict) else {}
        span = entry.get("duration") or {}
        duration = None
        if isinstance(span, dict) and "start_sec" in span and "end_sec" in span:
            duration = float(span["end_sec"]) - float(span["start_sec"])
        who = str(entry.get("ytb_id") or entry.get("identity") or _identity_from_name(name))
        out.append(FaceClipRecord(str(name), who, str(entry.get("split", "")), duration=duration))
    return out


def split_by_identity(records: Sequence[FaceClipRecord], test_fraction: float = 0.2,
                      seed: int = 0) -> list[FaceClipRecord]:  # fmt: skip
    """Give every record without a split ``"train"`` or ``"test"``, whole identities at a time (a deterministic hash
    order of the identities; the first ``ceil(test_fraction * identities)`` are test, at least one when there are two)."""
    import dataclasses

    free = sorted({r.identity for r in records if not r.split})
    order = sorted(free, key=lambda s: hashlib.sha1(f"{seed}:{s}".encode()).hexdigest())
    n_test = min(len(order) - 1, math.ceil(test_fraction * len(order))) if len(order) > 1 else 0
    test = set(order[:n_test])
    return [r if r.split else dataclasses.replace(r, split="test" if r.identity in test else "train") for r in records]


class CelebVFolder:
    """A folder of talking-face clips plus CelebV-HQ's metadata (module docstring); ``load(i)`` decodes a clip."""

    def __init__(self, root: str | Path, info: str | Path | None = None, split: str | None = None,
                 seconds: float = SPEECH_SECONDS, test_fraction: float = 0.2, seed: int = 0):  # fmt: skip
        import dataclasses

        self.root = Path(root)
        self.files = _scan(self.root)
        if info is None and (self.root / CELEBV_INFO).exists():
            info = self.root / CELEBV_INFO
        if info is not None:
            records = read_celebv_info(info)
        else:
            records = [FaceClipRecord(stem, _identity_from_name(stem)) for stem in sorted(self.files)]
        self.absent = [r.name for r in records if r.name not in self.files]
        records = [dataclasses.replace(r, seconds=seconds) for r in records if r.name in self.files]
        records = split_by_identity(records, test_fraction, seed)
        if split is not None:
            records = [r for r in records if r.split == split]
        self.records, self.seconds, self.info = records, seconds, info

    def __len__(self) -> int:
        return len(self.records)

    def subset(self, split: str) -> CelebVFolder:
        import copy

        out = copy.copy(self)
        out.records = [r for r in self.records if r.split == split]
        return out

    def resolve(self, record: FaceClipRecord) -> Path:
        if record.name not in self.files:
            raise VideoError(self.root, f"clip {record.name}: no video file ({'/'.join(VIDEO_EXTENSIONS)})")
        return self.files[record.name]

    def load(self, item: int | FaceClipRecord, **kwargs):
        record = self.records[item] if isinstance(item, int) else item
        kwargs.setdefault("seconds", record.seconds)
        return decode_clip(self.resolve(record), start=0.0, **kwargs)

    def __getitem__(self, i: int):
        return self.load(i)


def face_frames(seconds: float = SPEECH_SECONDS, k: int = 4) -> list[int]:
    """``k`` frame numbers (10 fps) spread evenly over the clip: the centres of ``k`` equal parts."""
    n = int(round(seconds * FPS))
    return sorted({min(n - 1, int((j + 0.5) * n / k)) for j in range(k)})


def precompute_face_features(folder: CelebVFolder, image_encoder, out: str | Path, frames_per_clip: int = 4,
                             **kwargs):  # fmt: skip
    """Decode every clip once: ``frames_per_clip`` face frames -> frozen image embeddings, and the speech window
    (16 kHz float16) -> a :class:`~s2v_lib.video.FeatureCache` (``embeds`` [N, K, D], ``audio`` [N, samples]).
    Sharded over the ranks of a torchrun process group when there is one (``s2v_lib.distributed``)."""
    from .distributed import precompute_features_distributed

    picks = face_frames(folder.seconds, frames_per_clip)
    moments = {r.clip_id: {"top1_box": None, "top10_moments": picks} for r in folder.records}
    kwargs.setdefault("progress", False)
    return precompute_features_distributed(folder, image_encoder, out, topk=moments, method="topk", k=len(picks),
                                           audio=True, **kwargs)  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# the frozen speaker encoder


class ResemblyzerEncoder(nn.Module):
    """Resemblyzer's ``VoiceEncoder`` (module docstring): ``forward(waves [B, samples] at 16 kHz) -> [B, emb]``,
    L2-normalised and non-negative, as the original. ``hidden``/``layers``/``emb`` other than 256/3/256 give tiny
    random instances of the same class for tests."""

    sample_rate = 16_000
    partial_frames = 160  # 1.6 s of 10 ms mel frames per partial utterance
    hop = 160  # 10 ms
    n_fft = 400  # 25 ms

    def __init__(self, hidden: int = 256, layers: int = 3, emb: int = 256, n_mels: int = 40, rate: float = 1.3,
                 min_coverage: float = 0.75, normalize_volume: bool = True, target_dbfs: float = -30.0):  # fmt: skip
        super().__init__()
        import torchaudio

        self.config = {"hidden": hidden, "layers": layers, "emb": emb, "n_mels": n_mels}
        self.dim = emb
        self.rate, self.min_coverage = rate, min_coverage
        self.normalize_volume, self.target_dbfs = normalize_volume, target_dbfs
        # librosa.feature.melspectrogram as Resemblyzer calls it: power 2, Slaney mel scale and area normalisation,
        # periodic Hann window, centred frames with zero padding (librosa >= 0.10)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop, n_mels=n_mels, power=2.0,
            norm="slaney", mel_scale="slaney", center=True, pad_mode="constant",
        )  # fmt: skip
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, emb)

    @property
    def device(self) -> torch.device:
        return self.linear.weight.device

    def partial_slices(self, n_samples: int) -> list[int]:
        """Start frames of the partial utterances (``VoiceEncoder.compute_partial_slices``)."""
        n_frames = int(np.ceil((n_samples + 1) / self.hop))
        step = int(np.round((self.sample_rate / self.rate) / self.hop))
        if not 0 < step <= self.partial_frames:
            raise ValueError(f"rate {self.rate} gives a partial step of {step} frames; it must be in [1, 160]")
        starts = list(range(0, max(1, n_frames - self.partial_frames + step + 1), step))
        coverage = (n_samples - starts[-1] * self.hop) / (self.partial_frames * self.hop)
        if coverage < self.min_coverage and len(starts) > 1:
            starts = starts[:-1]
        return starts

    def embed_partials(self, mels: torch.Tensor) -> torch.Tensor:
        """Mel frames [P, 160, n_mels] -> L2-normalised partial embeddings [P, emb] (``VoiceEncoder.forward``)."""
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def forward(self, waves) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(waves) if not torch.is_tensor(waves) else waves).float()
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"expected waveforms [B, samples], got {tuple(x.shape)}")
        x = x.to(self.device)
        if self.normalize_volume:  # Resemblyzer's normalize_volume(increase_only=True)
            rms = x.square().mean(1, keepdim=True).sqrt().clamp_min(1e-9)
            gain = 10 ** ((self.target_dbfs - 20 * torch.log10(rms)) / 20)
            x = x * gain.clamp_min(1.0)
        starts = self.partial_slices(x.shape[1])
        stop = (starts[-1] + self.partial_frames) * self.hop
        if stop >= x.shape[1]:
            x = nn.functional.pad(x, (0, stop - x.shape[1]))
        mel = self.mel.to(x.device)(x).transpose(1, 2)  # [B, frames, n_mels]
        parts = torch.stack([mel[:, s : s + self.partial_frames] for s in starts], 1)  # [B, P, 160, n_mels]
        b, p = parts.shape[:2]
        partial = self.embed_partials(parts.flatten(0, 1)).view(b, p, -1)
        raw = partial.mean(1)
        return (raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)).float()


def resemblyzer_weights() -> Path | None:
    """Where the installed Resemblyzer wheel keeps ``pretrained.pt`` (found without importing the package)."""
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    return path if path.exists() else None


def load_speaker_encoder(device: str = "cpu", weights: str | Path | None = None) -> ResemblyzerEncoder:
    """The frozen speaker encoder: Resemblyzer's pretrained ``VoiceEncoder`` (weights from the PyPI wheel, or a
    ``pretrained.pt`` given as ``weights``). :class:`~s2v_lib.registry.ModelError` when they are not there."""
    from .full import TOY_ALTERNATIVE, _error

    path = Path(weights) if weights else resemblyzer_weights()
    if path is None or not path.exists():
        where = f"{path}: no such file. " if path is not None else ""
        raise _error(f"{where}The speaker encoder (Resemblyzer {RESEMBLYZER_VERSION}'s VoiceEncoder, 256-d) needs "
                     f"its pretrained weights, which ship inside its PyPI package: run `pip install --no-deps "
                     f"resemblyzer=={RESEMBLYZER_VERSION}` (a 15 MB wheel; its own dependencies are not needed) or "
                     f"`pip install -e .[speech]`, or pass any speaker encoder [B, samples] -> [B, D] of your own. "
                     f"{TOY_ALTERNATIVE}")  # fmt: skip
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        model = ResemblyzerEncoder()
        missing, _ = model.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity")},
                                           strict=False)  # fmt: skip
        if [k for k in missing if not k.startswith("mel.")]:
            raise KeyError(f"missing {missing}")
    except Exception as err:
        raise _error(f"{path}: not Resemblyzer's VoiceEncoder weights ({type(err).__name__}: {str(err)[:120]}); "
                     f"reinstall with `pip install --force-reinstall --no-deps resemblyzer=={RESEMBLYZER_VERSION}`. "
                     f"{TOY_ALTERNATIVE}") from None  # fmt: skip
    return model.to(device).eval().requires_grad_(False)


@torch.no_grad()
def speaker_embeddings(encoder: Callable, waves, batch_size: int = 64) -> np.ndarray:
    """Speaker embeddings float32 [N, D] of waveforms [N, samples] (numpy, memory maps and float16 welcome)."""
    if isinstance(encoder, nn.Module):
        encoder.eval()
    out = []
    for i in range(0, len(waves), batch_size):
        chunk = torch.as_tensor(np.asarray(waves[i : i + batch_size], dtype=np.float32))
        e = encoder(chunk)
        out.append(e.detach().float().cpu().numpy() if torch.is_tensor(e) else np.asarray(e, np.float32))
    if not out:
        return np.zeros((0, int(getattr(encoder, "dim", 0))), np.float32)
    e = np.concatenate(out).astype(np.float32)
    if e.ndim != 2 or len(e) != len(waves):
        raise ValueError(f"a speaker encoder must map [B, samples] to [B, D]; got {e.shape} for {len(waves)} waves")
    return e


# ----------------------------------------------------------------------------------------------------------------
# the learned linear map


class FaceMap(nn.Module):
    """The single learned piece: speaker embedding [B, d_in] -> unCLIP image embedding [B, d_out] (a linear map)."""

    def __init__(self, d_in: int = 256, d_out: int = 1024):
        super().__init__()
        self.config = {"d_in": d_in, "d_out": d_out}
        self.linear = nn.Linear(d_in, d_out)

    def forward(self, voices: torch.Tensor) -> torch.Tensor:
        return self.linear(voices)


def fit_face_map(voices, faces, ridge: float = 0.1) -> FaceMap:
    """Least squares with a ridge penalty, in closed form: ``W = (Xc^T Xc + lam I)^-1 Xc^T Yc`` on centred data and
    ``b = mean(Y) - mean(X) W``. ``ridge`` is relative (``lam = ridge * trace(Xc^T Xc) / d_in``), so it does not
    depend on the scale of the speaker embeddings. Computed in float64."""
    x = torch.as_tensor(np.asarray(voices), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(faces), dtype=torch.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"expected voices [N, d_in] and faces [N, d_out] with the same N, got {x.shape} and {y.shape}")
    if len(x) < 2:
        raise ValueError("fitting a linear map needs at least two clips")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("voices or faces contain NaN or infinite values")
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    gram = xc.T @ xc
    lam = ridge * gram.diagonal().sum() / x.shape[1]
    w = torch.linalg.solve(gram + (lam + 1e-12) * torch.eye(x.shape[1], dtype=x.dtype), xc.T @ yc)
    model = FaceMap(x.shape[1], y.shape[1])
    with torch.no_grad():
        model.linear.weight.copy_(w.T.float())
        model.linear.bias.copy_((my - mx @ w).float())
    return model.eval().requires_grad_(False)


def save_face_map(model: FaceMap, path: str | Path, info: dict | None = None) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous().cpu() for k, v in model.state_dict().items()}, str(path),
              metadata={"config": json.dumps(model.config), "info": json.dumps(info or {})})  # fmt: skip
    return path


def load_face_map(path: str | Path) -> FaceMap:
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no fitted face map here; run `python -m s2v_lib.speech2face` first")
    with safe_open(str(path), framework="pt") as f:
        model = FaceMap(**json.loads((f.metadata() or {})["config"]))
        model.load_state_dict({k: f.get_tensor(k) for k in f.keys()})
    return model.eval().requires_grad_(False)


def evaluate_face_map(predicted, faces, identities: Sequence[str] | None = None, ks=(1, 5, 10)) -> dict:
    """How close predicted face embeddings land to the true ones, on held-out clips: R@k (L2, the paper's distance;
    clip i's match is face i), identity@1 (the nearest true face is of the same identity, i.e. YouTube video), mean
    cosine to the true face, and R@1 by chance."""
    from .metrics import retrieval_recall

    p = torch.as_tensor(np.asarray(predicted), dtype=torch.float32)
    f = torch.as_tensor(np.asarray(faces), dtype=torch.float32)
    m = retrieval_recall(p, f, ks=ks)
    m["cosine"] = float(nn.functional.cosine_similarity(p, f, dim=1).mean()) if len(p) else float("nan")
    m["chance_r_at_1"] = 1.0 / max(len(p), 1)
    if identities is not None and len(p):
        ids = np.asarray(identities)
        m["identity_at_1"] = float((ids[torch.cdist(p, f).argmin(1).numpy()] == ids).mean())
    return m


class SpeechToFace(nn.Module):
    """speech -> frozen speaker encoder -> learned linear map -> frozen generator (Stable unCLIP's ``image_embeds``)."""

    def __init__(self, speaker_encoder: Callable, face_map: FaceMap, generator=None):
        super().__init__()
        self.speaker_encoder, self.face_map, self.generator = speaker_encoder, face_map, generator

    @torch.no_grad()
    def embed(self, waves) -> torch.Tensor:
        """Waveforms [B, samples] at 16 kHz -> predicted face embeddings [B, d_out] (CPU, float32)."""
        voices = torch.as_tensor(speaker_embeddings(self.speaker_encoder, waves))
        w = self.face_map.linear.weight
        return self.face_map(voices.to(w.device, w.dtype)).float().cpu()

    def generate(self, waves, n: int = 1, seed: int = 0, **kwargs) -> np.ndarray:
        """uint8 faces [B, n, H, W, 3] for each waveform."""
        if self.generator is None:
            raise ValueError("no generator: build SpeechToFace(speaker, face_map, load_generator('stable-unclip'))")
        return self.generator.generate(self.embed(waves), n=n, seed=seed, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# the whole path


def run_speech_to_face(data: str | Path, out: str | Path, info: str | Path | None = None, image_encoder=None,
                       generator=None, speaker_encoder=None, device: str | None = None, seconds: float = SPEECH_SECONDS,
                       frames_per_clip: int = 4, ridge: float = 0.1, test_fraction: float = 0.2, n_show: int = 4,
                       n_images: int = 2, seed: int = 0, batch_clips: int = 16, workers: int = 2,
                       repo: str | None = None, anchor: str | None = None) -> dict:  # fmt: skip
    """Load the frozen models (first: offline this fails at once with what to download), cache the features of a
    CelebV-HQ-style folder (``out/cache``), fit the linear map on the train identities, measure it on the test
    identities, draw faces for ``n_show`` test voices. Writes ``face_map.safetensors``, ``metrics.json`` and
    ``gallery.png`` under ``out``; returns the metrics.

    The anchor encoder defaults to Stable unCLIP's own ViT-H/14 (``full.load_unclip_image_encoder``; ``anchor=
    "openclip"`` or ``S2V_ANCHOR=openclip`` for open_clip's copy) and the generator reuses it. Under ``torchrun`` the
    process group is joined here (each rank on its own GPU), the feature caching is sharded over the ranks, and rank
    0 alone loads the generator and does the rest (the other ranks return ``{}``)."""
    import os

    import torch.distributed as dist

    from . import full, viz
    from .audio import FrontEnd
    from .distributed import any_rank, init_distributed, shutdown
    from .registry import ModelError

    t0 = time.time()
    owns_group = not (dist.is_available() and dist.is_initialized())
    dist_info = init_distributed(device=device)
    device = dist_info.device
    repo = full.unclip_repo(repo)
    anchor = (anchor or os.environ.get("S2V_ANCHOR", "") or "unclip").strip().lower()
    failure = None
    if dist_info.is_main and generator is None:  # one download, before anyone loads
        try:
            full.fetch_stable_unclip(repo, dtype=full.half_dtype(device))
        except ModelError as err:
            failure = err
    if any_rank(failure is not None, device):
        if owns_group:
            shutdown()
        raise failure or ModelError(f"rank 0 could not fetch Stable unCLIP ({repo}); its message says why")
    if image_encoder is None:
        image_encoder = (full.load_unclip_image_encoder(device, repo=repo) if anchor == "unclip"
                         else full.load_openclip_image_encoder(device))  # fmt: skip
    speaker_encoder = speaker_encoder or load_speaker_encoder(device)
    folder = CelebVFolder(data, info, seconds=seconds, test_fraction=test_fraction, seed=seed)
    if len(folder) == 0:
        raise FileNotFoundError(f"{data}: no talking-face clips found (expected {CELEBV_INFO} and NAME.mp4 files, "
                                f"see s2v_lib.speech2face)")  # fmt: skip
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = precompute_face_features(folder, image_encoder, out / "cache", frames_per_clip, batch_clips=batch_clips,
                                     workers=workers)  # fmt: skip
    if owns_group:
        shutdown()  # the sharded part is done: no collective after this
    if not dist_info.is_main:
        return {}
    if generator is None:
        reuse = image_encoder if isinstance(image_encoder, full.UnCLIPImageEncoder) else None
        generator = full.load_stable_unclip(device, repo=repo, image_encoder=reuse)
    split = {r.clip_id: r.split for r in folder.records}
    identity = {r.clip_id: r.identity for r in folder.records}
    rows = {
        s: np.array([i for i, c in enumerate(cache.ids) if split[c] == s], dtype=np.int64) for s in ("train", "test")
    }
    if len(rows["train"]) < 2 or len(rows["test"]) < 1:
        raise ValueError(f"{data}: {len(rows['train'])} usable train and {len(rows['test'])} test clips; the map "
                         f"needs at least 2 and 1 (failed clips: {len(cache.failed)})")  # fmt: skip
    voices = speaker_embeddings(speaker_encoder, cache.audio)
    faces = np.asarray(cache.embeds, dtype=np.float32).mean(1)
    face_map = fit_face_map(voices[rows["train"]], faces[rows["train"]], ridge=ridge)
    with torch.no_grad():
        predicted = face_map(torch.as_tensor(voices)).numpy()
    test_ids = [identity[cache.ids[i]] for i in rows["test"]]
    metrics = {
        "test": evaluate_face_map(predicted[rows["test"]], faces[rows["test"]], test_ids),
        "train": evaluate_face_map(
            predicted[rows["train"]], faces[rows["train"]], [identity[cache.ids[i]] for i in rows["train"]]
        ),  # fmt: skip
        "mean_face_test": evaluate_face_map(
            np.repeat(faces[rows["train"]].mean(0, keepdims=True), len(rows["test"]), 0), faces[rows["test"]]
        ),  # fmt: skip
    }
    save_face_map(face_map, out / "face_map.safetensors", {"ridge": ridge, "train_clips": int(len(rows["train"]))})
    show = rows["test"][:n_show]
    pictures = SpeechToFace(speaker_encoder, face_map, generator).generate(np.asarray(cache.audio[show], np.float32),
                                                                           n=n_images, seed=seed)  # fmt: skip
    middle = face_frames(seconds, 1)
    true = np.stack([folder.load(folder.records[[r.clip_id for r in folder.records].index(cache.ids[i])],
                                 audio=False).frames[middle[0]] for i in show])  # fmt: skip
    import dataclasses

    front = dataclasses.replace(FrontEnd.preset("paper"), clip_seconds=seconds)  # the paper's front end, on the speech
    viz.gallery(front(np.asarray(cache.audio[show], np.float32)), true, pictures, [cache.ids[i] for i in show],
                out / "gallery.png", title="held-out voices -> faces (speech to face)")  # fmt: skip
    metrics.update({
        "clips": {"train": int(len(rows["train"])), "test": int(len(rows["test"])), "failed": len(cache.failed),
                  "absent": len(folder.absent)},
        "speaker_encoder": type(speaker_encoder).__name__, "image_encoder": type(image_encoder).__name__,
        "generator": type(generator).__name__, "ridge": ridge, "seconds_of_speech": seconds,
        "frames_per_clip": frames_per_clip, "seconds": time.time() - t0,
    })  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m s2v_lib.speech2face", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="CelebV-HQ-style folder (celebvhq_info.json + NAME.mp4 clips)")
    p.add_argument("--info", default=None, help="metadata JSON or CSV (default: DATA/celebvhq_info.json if present)")
    p.add_argument("--out", default="runs/speech2face")
    p.add_argument("--device", default=None)
    p.add_argument("--seconds", type=float, default=SPEECH_SECONDS, help="seconds of speech per clip")
    p.add_argument("--ridge", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from .registry import ModelError

    try:
        m = run_speech_to_face(args.data, args.out, args.info, device=args.device, seconds=args.seconds,
                               ridge=args.ridge, seed=args.seed)  # fmt: skip
    except (ModelError, FileNotFoundError, ValueError) as err:
        print(f"speech2face: error: {err}", file=sys.stderr)
        return 1
    if m:
        t = m["test"]
        print(
            f"held-out voices -> faces: R@1 {t['r_at_1']:.3f} R@5 {t['r_at_5']:.3f} (chance {t['chance_r_at_1']:.3f})"
            f", identity@1 {t.get('identity_at_1', float('nan')):.3f}; wrote {args.out}/metrics.json, gallery.png"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
