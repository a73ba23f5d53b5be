"""Frozen image generators conditioned on the image-embedding space (paper guide step 7).

The method is generator-agnostic: anything that draws a picture from an embedding of the frozen image encoder can be
driven by the aligned audio embedding instead. Every generator here has one call::

    images = generator.generate(embeds [B, D], n=4, seed=0)   # uint8 numpy [B, n, H, W, 3]

* :class:`ToyDiffusionGenerator` - unCLIP-style: a diffusers ``UNet2DModel`` whose timestep embedding is shifted by
  an MLP of the image embedding (``class_embed_type="identity"``), x0-prediction, cosine schedule, DDIM sampling with
  classifier-free guidance against a learned null embedding (10% condition dropout in training), and unCLIP's
  noise augmentation of the conditioning embedding. It works on 16x16x12 "space-to-depth" tensors (2x2 pixel patches)
  so that sampling is cheap on a laptop CPU.
* :class:`ToyGAN` - a small conditional GAN (FiLM-conditioned generator, projection discriminator, hinge loss), the
  analogue of the paper's IC-GAN variant: same embedding in, picture out, a different kind of generator.
* ``stable-unclip`` (full profile) - see ``s2v_lib.registry``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .progress import Budget


def check_embeds(embeds: torch.Tensor, dim: int) -> torch.Tensor:
    embeds = torch.as_tensor(embeds, dtype=torch.float32)
    if embeds.ndim == 1:
        embeds = embeds[None]
    if embeds.ndim != 2 or embeds.shape[1] != dim:
        raise ValueError(f"expected embeddings of shape [B, {dim}], got {tuple(embeds.shape)}")
    if not torch.isfinite(embeds).all():
        bad = (~torch.isfinite(embeds)).any(1).nonzero().flatten().tolist()
        raise ValueError(f"embeddings {bad[:10]} contain NaN or infinite values: refusing to generate from them")
    return embeds


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3]."""
    return ((x.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(frames) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1


class ToyDiffusionGenerator(nn.Module):
    def __init__(
        self,
        emb_dim: int = 128,
        block_out_channels: tuple[int, ...] = (64, 128, 128),
        layers_per_block: int = 1,
        attention_levels: tuple[int, ...] = (2,),
        image_size: int = 32,
        patch: int = 2,
        cond_noise: float = 0.3,
    ):
        super().__init__()
        from diffusers import UNet2DModel

        self.config = dict(
            emb_dim=emb_dim, block_out_channels=list(block_out_channels), layers_per_block=layers_per_block,
            attention_levels=list(attention_levels), image_size=image_size, patch=patch, cond_noise=cond_noise,
        )  # fmt: skip
        self.emb_dim, self.patch, self.image_size, self.cond_noise = emb_dim, patch, image_size, cond_noise
        down = tuple("AttnDownBlock2D" if i in attention_levels else "DownBlock2D" for i in range(len(block_out_channels)))
        up = tuple(t.replace("Down", "Up") for t in reversed(down))
        self.unet = UNet2DModel(
            sample_size=image_size // patch, in_channels=3 * patch * patch, out_channels=3 * patch * patch,
            block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
            down_block_types=down, up_block_types=up, class_embed_type="identity",
        )  # fmt: skip
        tdim = block_out_channels[0] * 4
        self.cond_mlp = nn.Sequential(nn.Linear(emb_dim, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.null_embed = nn.Parameter(torch.zeros(emb_dim))

    @staticmethod
    def make_scheduler(kind: str = "ddim"):
        from diffusers import DDIMScheduler, DDPMScheduler

        cls = DDIMScheduler if kind == "ddim" else DDPMScheduler
        return cls(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample", clip_sample=True)

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """Predict the clean image x0 (pixel space [B, 3, H, W]) from a noisy one and the conditioning embedding."""
        p = self.patch
        out = self.unet(F.pixel_unshuffle(x_t, p), t, class_labels=self.cond_mlp(embeds)).sample
        return F.pixel_shuffle(out, p)

    @torch.no_grad()
    def generate(self, embeds, n: int = 1, seed: int = 0, steps: int = 10, guidance: float = 2.0,
                 batch_size: int = 256) -> np.ndarray:  # fmt: skip
        """n pictures for each embedding: uint8 [B, n, H, W, 3]. Diversity comes from the sampler's noise."""
        self.eval()
        device = next(self.parameters()).device
        e = check_embeds(embeds, self.emb_dim).repeat_interleave(n, 0)
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(len(e), 3, self.image_size, self.image_size, generator=gen)
        sched = self.make_scheduler("ddim")
        sched.set_timesteps(steps)
        out = []
        for i in range(0, len(e), batch_size):
            x = noise[i : i + batch_size].to(device)
            eb = e[i : i + batch_size].to(device)
            null = self.null_embed[None].expand_as(eb)
            for t in sched.timesteps:
                tt = t.expand(len(x)).to(device)
                if guidance == 1.0:
                    x0 = self.denoise(x, tt, eb)
                else:
                    x0c, x0u = self.denoise(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([eb, null])).chunk(2)
                    x0 = x0u + guidance * (x0c - x0u)
                x = sched.step(x0.clamp(-1, 1), t, x).prev_sample
            out.append(to_uint8(x))
        images = np.concatenate(out)
        return images.reshape(-1, n, *images.shape[1:])


def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
            pe.lerp_(pm, 1 - decay)


def pretrain_diffusion(
    frames: np.ndarray,
    embeds: torch.Tensor,
    steps: int = 20000,
    batch_size: int = 256,
    lr: float = 3e-4,
    seed: int = 0,
    device: str = "cpu",
    max_seconds: float | None = None,
    p_uncond: float = 0.1,
    ema_decay: float = 0.999,
    init: ToyDiffusionGenerator | None = None,
    **config,
) -> tuple[ToyDiffusionGenerator, dict]:
    """Train the toy diffusion generator on (frame, frozen image embedding) pairs; returns the EMA model.
    ``init`` continues from an earlier model (its weights start both the model and its EMA)."""
    torch.manual_seed(seed)
    model = copy.deepcopy(init).train().requires_grad_(True) if init is not None else ToyDiffusionGenerator(emb_dim=embeds.shape[1], **config)
    model = model.to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = model.make_scheduler("ddpm")
    alphas = sched.alphas_cumprod.to(device)
    x_all = torch.as_tensor(frames).to(device)
    e_all = torch.as_tensor(embeds, dtype=torch.float32).to(device)
    budget, losses = Budget(steps, max_seconds, warmup=0.01), []
    for step in budget.loop("diffusion generator"):
        budget.set_lr(opt, lr, budget.lr_factor(step))
        idx = torch.randint(0, len(x_all), (batch_size,), device=device)
        x0 = x_all[idx].permute(0, 3, 1, 2).float() / 127.5 - 1
        e = e_all[idx]
        # unCLIP-style noise augmentation of the condition, and condition dropout for guidance
        e = e + torch.randn_like(e) * torch.rand(len(e), 1, device=device) * model.cond_noise
        drop = torch.rand(len(e), device=device) < p_uncond
        e = torch.where(drop[:, None], model.null_embed[None].expand_as(e), e)
        t = torch.randint(0, 1000, (batch_size,), device=device)
        a = alphas[t][:, None, None, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn_like(x0)
        loss = F.mse_loss(model.denoise(x_t, t, e), x0)  # x0-prediction: target = clean image
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        _ema_update(ema, model, ema_decay if (step > 500 or init is not None) else 0.0)
        losses.append(loss.detach())
    return ema.cpu(), {"steps": len(losses), "final_loss": torch.stack(losses[-200:]).mean().item(), "seconds": budget.elapsed()}


# ----------------------------------------------------------------------------------------------------------------
# GAN


class _FiLMBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cdim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)
        self.norm1 = nn.BatchNorm2d(cin, affine=False)
        self.norm2 = nn.BatchNorm2d(cout, affine=False)
        self.film1 = nn.Linear(cdim, 2 * cin)
        self.film2 = nn.Linear(cdim, 2 * cout)

    def forward(self, x, c):
        g, b = self.film1(c)[:, :, None, None].chunk(2, 1)
        h = F.relu(self.norm1(x) * (1 + g) + b)
        h = F.interpolate(h, scale_factor=2)
        h = self.conv1(h)
        g, b = self.film2(c)[:, :, None, None].chunk(2, 1)
        h = self.conv2(F.relu(self.norm2(h) * (1 + g) + b))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class ToyGAN(nn.Module):
    """Generator of a conditional GAN: (z, image embedding) -> 32x32 picture, via FiLM-modulated upsampling blocks."""

    def __init__(self, emb_dim: int = 128, z_dim: int = 64, width: int = 128, image_size: int = 32):
        super().__init__()
        self.config = dict(emb_dim=emb_dim, z_dim=z_dim, width=width, image_size=image_size)
        self.emb_dim, self.z_dim, self.image_size, w = emb_dim, z_dim, image_size, width
        cdim = 128
        self.cond = nn.Sequential(nn.Linear(emb_dim + z_dim, cdim), nn.ReLU(), nn.Linear(cdim, cdim))
        self.fc = nn.Linear(emb_dim + z_dim, 4 * 4 * w)
        self.blocks = nn.ModuleList([_FiLMBlock(w, w, cdim), _FiLMBlock(w, w, cdim), _FiLMBlock(w, w // 2, cdim)])
        self.out = nn.Sequential(nn.BatchNorm2d(w // 2), nn.ReLU(), nn.Conv2d(w // 2, 3, 3, 1, 1), nn.Tanh())
        self.w = w

    def forward(self, z: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        zc = torch.cat([z, embeds], 1)
        c = self.cond(zc)
        h = self.fc(zc).view(-1, self.w, 4, 4)
        for block in self.blocks:
            h = block(h, c)
        return self.out(h)

    @torch.no_grad()
    def generate(self, embeds, n: int = 1, seed: int = 0, batch_size: int = 512, **_ignored) -> np.ndarray:
        """n pictures for each embedding: uint8 [B, n, H, W, 3]. Diversity comes from z ~ N(0, I)."""
        self.eval()
        device = next(self.parameters()).device
        e = check_embeds(embeds, self.emb_dim).repeat_interleave(n, 0)
        z = torch.randn(len(e), self.z_dim, generator=torch.Generator().manual_seed(seed))
        out = [to_uint8(self(z[i : i + batch_size].to(device), e[i : i + batch_size].to(device)))
               for i in range(0, len(e), batch_size)]  # fmt: skip
        images = np.concatenate(out)
        return images.reshape(-1, n, *images.shape[1:])


class _ProjectionDiscriminator(nn.Module):
    def __init__(self, emb_dim: int, width: int = 128):
        super().__init__()
        sn = nn.utils.spectral_norm
        w = width
        self.net = nn.Sequential(
            sn(nn.Conv2d(3, w // 2, 3, 1, 1)), nn.LeakyReLU(0.2), sn(nn.Conv2d(w // 2, w, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(w, w, 3, 1, 1)), nn.LeakyReLU(0.2), sn(nn.Conv2d(w, 2 * w, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * w, 2 * w, 3, 1, 1)), nn.LeakyReLU(0.2), sn(nn.Conv2d(2 * w, 2 * w, 4, 2, 1)), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.lin = sn(nn.Linear(2 * w, 1))
        self.embed = sn(nn.Linear(emb_dim, 2 * w))

    def forward(self, x, e):
        h = self.net(x).sum(dim=(2, 3))
        return self.lin(h).squeeze(1) + (self.embed(e) * h).sum(1)


def pretrain_gan(
    frames: np.ndarray,
    embeds: torch.Tensor,
    steps: int = 20000,
    batch_size: int = 256,
    lr: float = 2e-4,
    seed: int = 0,
    device: str = "cpu",
    max_seconds: float | None = None,
    ema_decay: float = 0.999,
    init: ToyGAN | None = None,
    **config,
) -> tuple[ToyGAN, dict]:
    """Hinge-loss conditional GAN on (frame, frozen image embedding) pairs; returns the EMA generator.
    ``init`` continues from an earlier generator (the discriminator, never shipped, starts afresh)."""
    torch.manual_seed(seed)
    g = copy.deepcopy(init).train().requires_grad_(True) if init is not None else ToyGAN(emb_dim=embeds.shape[1], **config)
    g = g.to(device)
    d = _ProjectionDiscriminator(embeds.shape[1]).to(device)
    g_ema = copy.deepcopy(g).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=2 * lr, betas=(0.0, 0.9))
    x_all = torch.as_tensor(frames).to(device)
    e_all = torch.as_tensor(embeds, dtype=torch.float32).to(device)
    budget, log = Budget(steps, max_seconds, warmup=0.0), []
    for step in budget.loop("GAN"):
        idx = torch.randint(0, len(x_all), (batch_size,), device=device)
        real = x_all[idx].permute(0, 3, 1, 2).float() / 127.5 - 1
        e = e_all[idx]
        z = torch.randn(batch_size, g.z_dim, device=device)
        fake = g(z, e)
        loss_d = F.relu(1 - d(real, e)).mean() + F.relu(1 + d(fake.detach(), e)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = -d(fake, e).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # keep the EMA's BatchNorm statistics in step with the generator's
        _ema_update(g_ema, g, ema_decay if (step > 1000 or init is not None) else 0.0)
        for be, bm in zip(g_ema.buffers(), g.buffers(), strict=True):
            be.copy_(bm)
        log.append(torch.stack([loss_d.detach(), loss_g.detach()]))
    standing_stats(g_ema, e_all, seed=seed)
    ld, lg = torch.stack(log[-200:]).mean(0).tolist()
    return g_ema.cpu(), {"steps": len(log), "loss_d": float(ld), "loss_g": float(lg), "seconds": budget.elapsed()}


@torch.no_grad()
def standing_stats(g: ToyGAN, embeds: torch.Tensor, batch_size: int = 256, seed: int = 0) -> ToyGAN:
    """Re-estimate the generator's BatchNorm statistics for *its own* weights ("standing statistics", BigGAN).

    The EMA generator averages weights but inherits the running statistics of the raw generator, which belong to
    other weights; averaging the statistics over many batches of (z, embedding) through the EMA weights fixes that
    (on the shipped GAN: judged accuracy on true-frame embeddings 0.75 -> 0.78)."""
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    gen = torch.Generator().manual_seed(seed)
    device = next(g.parameters()).device
    g.train()
    e_all = torch.as_tensor(embeds, dtype=torch.float32)
    for i in range(0, len(e_all), batch_size):
        e = e_all[i : i + batch_size].to(device)
        g(torch.randn(len(e), g.z_dim, generator=gen).to(device), e)
    for m in bns:
        m.momentum = 0.1
    return g.eval()
