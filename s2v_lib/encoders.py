"""Frozen image encoders: the anchor space the audio embedding must land in (paper guide step 5).

Sound2Vision anchors audio to the CLIP image encoder of Stable unCLIP 2.1 (OpenCLIP ViT-H/14, 1024-d ``image_embeds``).
The toy profile's counterpart, :class:`ToyImageEncoder`, is a small CNN trained by this project *without labels*
(SimCLR-style contrastive learning on toy frames, :func:`pretrain_image_encoder`) and shipped frozen.
Both sit behind the same call: ``encoder.encode(frames uint8 [B, H, W, 3]) -> [B, D]`` embeddings.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .progress import Budget


def frames_to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W, 3] (or one [H, W, 3]) -> float [B, 3, H, W] in [0, 1]."""
    x = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
    if x.ndim == 3:
        x = x[None]
    return x.permute(0, 3, 1, 2).float() / 255.0


class ToyImageEncoder(nn.Module):
    """A small CNN image encoder; its output is standardised (zero mean, unit variance per dimension over the
    world's frames) so that Euclidean distances, the paper's InfoNCE-L2 logits, have a sensible scale."""

    def __init__(self, width: int = 32, dim: int = 128):
        super().__init__()
        self.config = {"width": width, "dim": dim}
        self.dim = dim
        w = width

        def block(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.features = nn.Sequential(
            block(3, w, 1), block(w, w, 1), block(w, 2 * w, 2), block(2 * w, 2 * w, 1),
            block(2 * w, 4 * w, 2), block(4 * w, 4 * w, 1), block(4 * w, 4 * w, 2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.proj = nn.Linear(4 * w, dim)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float images [B, 3, 32, 32] in [0, 1] -> standardised embeddings [B, dim]."""
        return (self.raw(x) - self.mean) / self.std

    @torch.no_grad()
    def encode(self, frames, batch_size: int = 512) -> torch.Tensor:
        """uint8 frames [B, 32, 32, 3] -> embeddings [B, dim] (eval mode, no grad, batched)."""
        self.eval()
        device = next(self.parameters()).device
        x = frames_to_tensor(frames)
        out = [self(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, self.dim)


# ----------------------------------------------------------------------------------------------------------------
# pre-training (run once by `s2v pretrain image-encoder`; notebooks load the shipped result)


def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Label-free views of a frame: random shift (reflect pad + crop), horizontal flip, brightness, pixel noise.
    No colour or scale changes: shade and size carry pitch and loudness, the encoder must keep them."""
    b, _, h, w = x.shape
    pad = 4
    xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device="cpu")
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device="cpu")
    idx_y = (dy[:, None] + torch.arange(h)[None]).to(x.device)
    idx_x = (dx[:, None] + torch.arange(w)[None]).to(x.device)
    out = xp[torch.arange(b, device=x.device)[:, None, None, None], torch.arange(3, device=x.device)[None, :, None, None],
             idx_y[:, None, :, None], idx_x[:, None, None, :]]  # fmt: skip
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    bright = (torch.rand(b, 1, 1, 1, generator=generator) * 0.16 - 0.08).to(x.device)
    noise = torch.randn(out.shape, generator=generator).to(x.device) * 0.02
    return (out + bright + noise).clamp(0, 1)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy between two views."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    n = len(z1)
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def pretrain_image_encoder(
    frames: np.ndarray,
    steps: int = 3000,
    batch_size: int = 512,
    lr: float = 2e-3,
    seed: int = 0,
    device: str = "cpu",
    max_seconds: float | None = None,
    width: int = 32,
    dim: int = 128,
) -> tuple[ToyImageEncoder, dict]:
    """Contrastive (SimCLR) training on unlabeled toy frames, then standardisation statistics."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = ToyImageEncoder(width, dim).to(device)
    head = nn.Sequential(nn.Linear(dim, 256), nn.ReLU(), nn.Linear(256, 128)).to(device)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    data = torch.as_tensor(frames)
    budget, losses = Budget(steps, max_seconds), []
    model.train()
    for step in budget.loop("image encoder (SimCLR)"):
        budget.set_lr(opt, lr, budget.lr_factor(step))
        idx = torch.randint(0, len(data), (batch_size,), generator=gen)
        x = frames_to_tensor(data[idx]).to(device)
        loss = nt_xent(head(model.raw(augment(x, gen))), head(model.raw(augment(x, gen))))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    # Standardise the output over (a sample of) the world's frames.
    model.eval()
    sample = data[torch.randperm(len(data), generator=gen)[:20000]]
    with torch.no_grad():
        raw = torch.cat([model.raw(frames_to_tensor(sample[i : i + 1024]).to(device)) for i in range(0, len(sample), 1024)])
    model.mean.copy_(raw.mean(0))
    model.std.copy_(raw.std(0).clamp_min(1e-4))
    return model.cpu(), {"steps": len(losses), "final_loss": torch.stack(losses[-50:]).mean().item(), "seconds": budget.elapsed()}
