"""Training the audio encoder onto the frozen anchors (paper guide step 6), in one loop you can read in a sitting.

The authors' settings: Adam, lr 1e-3, weight decay 1e-5, batch 64, seed 1234 (50 epochs on VGGSound; the toy world
needs a few). Unlike the official code, validation is real: it runs on held-out clips that training never sees, in
full batches (InfoNCE on a batch of one is always 0), and reports the loss and audio -> image retrieval R@1.
Checkpoints are written every epoch; a run with the same checkpoint path resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio_encoder import AudioEncoder, embed_spectrograms
from .losses import get_loss
from .metrics import retrieval_recall
from .progress import progress
from .stats import Diverged


@dataclass
class TrainConfig:
    loss: str = "infonce_l2"
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 1234
    hidden: int = 512
    width: int = 32  # the toy profile's ResNet-18 at half width (a quarter of the compute); the paper's is 64
    front_end: str = "toy"
    augment: bool = True  # time shifts within the silent margins (augment_spectrograms): keep what the sound says


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_r_at_1: list[float] = field(default_factory=list)
    seconds: float = 0.0


def silent_margins(specs: torch.Tensor, quiet: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames of silence at the start and at the end of each [1, F, T] spectrogram: ``(lead, trail)``, each [B].

    A frame is quiet when its loudest bin is within ``quiet`` of the clip's range above the clip's
    quietest frame; the margins are the runs of quiet frames before the first and after the last sound."""
    level = specs.float().amax(dim=(1, 2))  # [B, T]: the loudest bin (a quiet tone fills few bins)
    lo, hi = level.min(-1, keepdim=True).values, level.max(-1, keepdim=True).values
    is_quiet = level <= lo + quiet * (hi - lo)
    lead = torch.cumprod(is_quiet.int(), -1).sum(-1)
    trail = torch.cumprod(is_quiet.flip(-1).int(), -1).sum(-1)
    return lead, trail


def shift_range(specs: torch.Tensor, guard: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The time shifts (in frames) that keep every sound of each clip whole: ``(lo, hi)``, each [B], lo <= 0 <= hi.

    Rolling right by s wraps the last s frames to the front, so s may not exceed the trailing silence; rolling left
    wraps the first frames to the end, so it may not exceed the leading silence. ``guard`` frames next to a sound
    stay in place (a frame can hold the faint start of a sound; tests/test_train.py checks on toy clips that no
    burst, rendered alone from the ground truth, loses a frame within 30 dB of its loudest)."""
    lead, trail = silent_margins(specs)
    return -(lead - guard).clamp_min(0), (trail - guard).clamp_min(0)


def time_shift(specs: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Roll each [1, F, T] spectrogram right by ``shifts[b]`` frames (negative: left)."""
    t = specs.shape[-1]
    idx = (torch.arange(t, device=specs.device)[None] - shifts.to(specs.device)[:, None]) % t
    return torch.gather(specs, -1, idx[:, None, None, :].expand_as(specs))


def augment_spectrograms(specs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Label-preserving augmentation shared by both training loops: a random time shift *within the silent
    margins*, so that it moves the sounds in time but never cuts one in two at the clip's edge. Category, loudness,
    pitch and the number of events (which the toy world ties to the number of objects) all survive; a plain
    circular shift would cut a burst at the edge in about half of the toy clips and change the count.
    ``generator`` lives on the CPU; a clip without silent margins (most real recordings) is left as it is."""
    lo, hi = shift_range(specs)
    u = torch.rand(len(specs), generator=generator)
    shifts = lo.cpu() + (u * (hi - lo + 1).cpu()).long().clamp_max((hi - lo).cpu())
    return time_shift(specs, shifts)


@torch.no_grad()
def validate(model: AudioEncoder, specs: torch.Tensor, anchors: torch.Tensor, loss_name: str, batch_size: int) -> tuple[float, float]:
    """(mean loss over full batches of held-out clips, R@1 of held-out audio -> held-out image embeddings)."""
    emb = embed_spectrograms(model, specs)
    loss_fn = get_loss(loss_name)
    n_full = len(specs) // batch_size * batch_size
    if n_full == 0:  # fewer held-out clips than one batch: use them all as one batch (never a batch of one)
        n_full, batch_size = len(specs), max(len(specs), 2)
    losses = [loss_fn(emb[i : i + batch_size], anchors[i : i + batch_size]).item() for i in range(0, n_full, batch_size)]
    return float(np.mean(losses)), retrieval_recall(emb, anchors, ks=(1,))["r_at_1"]


def train_audio_encoder(
    train_specs: torch.Tensor,
    train_anchors: torch.Tensor,
    val_specs: torch.Tensor,
    val_anchors: torch.Tensor,
    config: TrainConfig | None = None,
    checkpoint: str | Path | None = None,
    desc: str = "audio encoder",
) -> tuple[AudioEncoder, History]:
    """Train an :class:`AudioEncoder` so that audio i lands on anchor i (a frozen image embedding)."""
    cfg = config or TrainConfig()
    if len(train_specs) != len(train_anchors) or len(val_specs) != len(val_anchors):
        raise ValueError("each spectrogram needs exactly one anchor embedding")
    if len(train_specs) < cfg.batch_size:
        raise ValueError(f"need at least one batch of training clips ({cfg.batch_size}), got {len(train_specs)}")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = AudioEncoder(emb_dim=train_anchors.shape[1], hidden=cfg.hidden, front_end=cfg.front_end, width=cfg.width)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = get_loss(cfg.loss)
    hist, start = History(), 0
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt and ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        if state["config"] == json.dumps(dataclasses.asdict(cfg)):
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            hist = History(**json.loads(state["history"]))
            start = int(state["epoch"])
    import time

    t0 = time.time() - hist.seconds
    steps_per_epoch = len(train_specs) // cfg.batch_size
    bar = progress(total=cfg.epochs * steps_per_epoch, desc=desc, initial=start * steps_per_epoch)
    for epoch in range(start, cfg.epochs):
        model.train()
        order = torch.randperm(len(train_specs), generator=gen)
        running = []
        for s in range(steps_per_epoch):  # drop the last partial batch: InfoNCE needs full batches
            idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            x = train_specs[idx].float()
            if cfg.augment:
                x = augment_spectrograms(x, gen)
            loss = loss_fn(model(x), train_anchors[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running.append(loss.item())
            if not math.isfinite(running[-1]):
                bar.close()
                raise Diverged(f"the training loss became {running[-1]} at epoch {epoch + 1}, step {s + 1} "
                               f"(loss {cfg.loss}, seed {cfg.seed})")  # fmt: skip
            bar.update(1)
        hist.train_loss.append(float(np.mean(running)))
        vl, vr = validate(model, val_specs, val_anchors, cfg.loss, cfg.batch_size)
        hist.val_loss.append(vl)
        hist.val_r_at_1.append(vr)
        hist.seconds = time.time() - t0
        bar.set_postfix(train=f"{hist.train_loss[-1]:.3f}", val=f"{vl:.3f}", val_r1=f"{vr:.2f}")
        if ckpt:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                        "epoch": epoch + 1, "history": json.dumps(dataclasses.asdict(hist)),
                        "config": json.dumps(dataclasses.asdict(cfg))}, tmp)  # fmt: skip
            tmp.replace(ckpt)
    bar.close()
    model.eval()
    return model, hist
