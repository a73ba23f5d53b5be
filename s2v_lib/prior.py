"""Priors: from an audio embedding to where image embeddings sit (beyond the paper; DALL-E 2 / unCLIP's "prior").

The paper feeds the frozen generator the trained audio embedding as it is (paper guide step 7). The course measured
that audio embeddings do not sit where image embeddings sit (notebook 06), and that moving them there changes the
pictures a great deal. unCLIP met the same problem for text and solved it with a *prior*: a model that maps a text
embedding to a distribution of image embeddings. Here are three, behind one interface, fitted on the training pairs
the method already has (audio embedding of a training clip, image embedding of its paired frame), for any generator
and either profile (any embedding dimension):

* ``affine``    - a closed-form ridge regression ``v = a W + b`` (float64): closes the gap and undoes a linear warp;
* ``retrieval`` - the image embeddings of the nearest training clips (snap, or blend with the input): an output that
  is always a real image embedding, so the generator reads it as one;
* ``diffusion`` - a small diffusion model over embedding vectors (an MLP denoiser conditioned on the audio embedding,
  v-prediction, cosine schedule, DDIM sampling, classifier-free condition dropout) that *samples* an image embedding
  for a sound: what the sound does not say (position, background) is drawn, not averaged away.

::

    prior = fit_prior("diffusion", audio_train, image_train, profile="toy",
                      audio_encoder=encoder_id(model), image_encoder=anchor_space_id("toy"))
    embeds = prior.sample(audio_test, n=4, seed=0)          # [B, 4, D] image embeddings
    pictures = generate_with_prior(generator, prior, audio_test, n=4, seed=0)
    save_prior(prior, "runs/prior.safetensors"); load_prior(path, expected={"profile": "toy", ...})

A prior belongs to one audio encoder and one image-encoder space: its file records both (and the profile and the
dimensions), and :func:`load_prior` / :meth:`Prior.check_compatible` refuse a prior used with anything else.
Ground truth is never used: the pairs are those the audio encoder was trained on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PRIORS = ("affine", "retrieval", "diffusion")
# Default settings of each prior, chosen on tuning seed 0 (`python scripts/prior_measure.py --tune`: judged top-1
# accuracy of the pictures, then diversity): ridge 1e-3 over 1e-1; retrieval by audio, one of the 10 nearest clips at
# random (top-1 as k=1's, which halved diversity; matching by image embedding did far worse); diffusion with
# guidance 2 (top-1 0.65 vs 0.38 with none).
DEFAULTS: dict[str, dict] = {
    "affine": {"ridge": 1e-3},
    "retrieval": {"k": 10, "blend": 1.0, "match": "audio", "pick": "random"},
    "diffusion": {"hidden": 512, "depth": 3, "steps": 2000, "batch_size": 256, "lr": 1e-3, "p_uncond": 0.1,
                  "sample_steps": 25, "eta": 0.0, "guidance": 2.0, "ema": 0.995, "seed": 0},
}  # fmt: skip
IDENTITY_KEYS = ("name", "profile", "audio_dim", "dim", "audio_encoder", "image_encoder")


# ---------------------------------------------------------------------------------------------------------------------
# identities: which audio encoder and which image-encoder space a prior was fitted on


def encoder_id(model: nn.Module) -> str:
    """A short fingerprint of a model's weights (sha256 of its state dict, float32): two encoders with the same id
    compute the same embeddings."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        v = value.detach().cpu()
        h.update((v.float() if v.is_floating_point() else v).contiguous().numpy().tobytes())
    return "sha256:" + h.hexdigest()[:16]


def anchor_space_id(name: str | None = None) -> str:
    """The image-encoder space (the anchors) by registry name: the toy encoder's shipped checksum, or the open_clip
    model and weights of the full profile."""
    from .config import profile
    from .registry import DEFAULTS as REGISTRY_DEFAULTS
    from .registry import IMAGE_ENCODERS, model_info

    name = name or REGISTRY_DEFAULTS[profile()]["image_encoder"]
    if name not in IMAGE_ENCODERS:
        raise ValueError(f"unknown image encoder {name!r}; known: {', '.join(IMAGE_ENCODERS)}")
    if IMAGE_ENCODERS[name] is None:
        from .full import OPENCLIP_MODEL, OPENCLIP_PRETRAINED

        return f"{name}:{OPENCLIP_MODEL}/{OPENCLIP_PRETRAINED}"
    sha = model_info(IMAGE_ENCODERS[name]).get("sha256", "unknown")
    return f"{name}:{sha[:16]}"


# ---------------------------------------------------------------------------------------------------------------------
# the interface


def _as_matrix(x, what: str, dim: int | None = None, dtype=torch.float32) -> torch.Tensor:
    """[N, D] finite tensor, or a one-line ValueError naming what is wrong."""
    t = torch.as_tensor(np.asarray(x.detach().cpu() if torch.is_tensor(x) else x), dtype=dtype)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2:
        raise ValueError(f"{what}: expected a [N, D] matrix of embeddings, got shape {tuple(t.shape)}")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(f"{what}: the prior expects {dim}-d embeddings, got {t.shape[1]}-d "
                         "(an embedding of another audio encoder, image encoder or profile?)")  # fmt: skip
    if not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).any(1).nonzero().flatten().tolist()
        raise ValueError(f"{what}: rows {bad[:10]} contain NaN or infinite values")
    return t


class Prior:
    """audio embeddings [B, Da] -> image embeddings [B, n, D]. ``info`` holds the identity (name, profile, audio_dim,
    dim, audio_encoder, image_encoder), the settings, and how it was fitted."""

    name = "prior"
    deterministic = True

    def __init__(self, info: dict):
        self.info = dict(info)

    @property
    def dim(self) -> int:
        return int(self.info["dim"])

    @property
    def audio_dim(self) -> int:
        return int(self.info["audio_dim"])

    @property
    def settings(self) -> dict:
        return dict(self.info.get("settings", {}))

    def check(self, audio) -> torch.Tensor:
        return _as_matrix(audio, f"prior {self.name!r}: audio embeddings", self.audio_dim)

    def check_compatible(self, **expected) -> None:
        """Raise a one-line ValueError naming every identity field (profile, dim, audio_dim, audio_encoder,
        image_encoder, name) that differs from ``expected`` (fields given as None are not checked)."""
        wrong = [f"{k} {self.info.get(k)!r}, not {v!r}" for k, v in expected.items()
                 if v is not None and self.info.get(k) != v]  # fmt: skip
        unknown = set(expected) - set(IDENTITY_KEYS)
        if unknown:
            raise ValueError(f"unknown prior identity fields {sorted(unknown)}; known: {', '.join(IDENTITY_KEYS)}")
        if wrong:
            where = self.info.get("path", f"prior {self.name!r}")
            raise ValueError(f"{where} was fitted on {'; '.join(wrong)}: refit it for this encoder and profile")

    def sample(self, audio, n: int = 1, seed: int = 0) -> torch.Tensor:
        """n image embeddings per audio embedding: [B, n, D] float32 (deterministic priors repeat theirs)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        return self._sample(self.check(audio), n, seed).float()

    def __call__(self, audio) -> torch.Tensor:
        """One image embedding per audio embedding [B, D] (the diffusion prior: its sample with seed 0)."""
        return self.sample(audio, 1, 0)[:, 0]

    # subclasses
    def _sample(self, audio: torch.Tensor, n: int, seed: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def tensors(self) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class AffinePrior(Prior):
    """``v = a W + b``, fitted in closed form by ridge regression on centred training pairs (float64)."""

    name = "affine"

    def __init__(self, info: dict, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__(info)
        self.weight, self.bias = weight.double(), bias.double()

    @classmethod
    def fit(cls, audio: torch.Tensor, image: torch.Tensor, info: dict, ridge: float = 1e-3) -> AffinePrior:
        """``W = (Xc^T Xc + lam I)^-1 Xc^T Yc``, ``b = mean(Y) - mean(X) W``; ``ridge`` is relative
        (``lam = ridge * trace(Xc^T Xc) / Da``), so it does not depend on the scale of the embeddings."""
        x, y = audio.double(), image.double()
        mx, my = x.mean(0), y.mean(0)
        xc, yc = x - mx, y - my
        gram = xc.T @ xc
        lam = ridge * gram.diagonal().sum() / x.shape[1]
        w = torch.linalg.solve(gram + (lam + 1e-12) * torch.eye(x.shape[1], dtype=x.dtype), xc.T @ yc)
        return cls(info, w, my - mx @ w)

    def _sample(self, audio, n, seed):
        return (audio.double() @ self.weight + self.bias)[:, None].expand(-1, n, -1)

    def tensors(self):
        return {"weight": self.weight, "bias": self.bias}


class RetrievalPrior(Prior):
    """The image embeddings of the k nearest training clips: nearest by audio embedding (``match="audio"``: same
    modality, no gap to cross) or by distance from the audio embedding to the training image embeddings
    (``match="image"``: the prototype's "snap"). ``pick="mean"``: their mean (deterministic); ``"random"``: one of
    them per sample. The output is ``blend * retrieved + (1 - blend) * audio`` (``blend=1``: snap)."""

    name = "retrieval"

    def __init__(self, info: dict, bank_image: torch.Tensor, bank_audio: torch.Tensor | None = None):
        super().__init__(info)
        s = self.settings
        self.k, self.blend, self.match, self.pick = int(s["k"]), float(s["blend"]), s["match"], s["pick"]
        self.deterministic = self.pick == "mean" or self.k == 1
        self.bank_image, self.bank_audio = bank_image.float(), None if bank_audio is None else bank_audio.float()

    @classmethod
    def fit(cls, audio, image, info, k: int = 1, blend: float = 1.0, match: str = "audio", pick: str = "mean"):
        if match not in ("audio", "image"):
            raise ValueError(f"retrieval prior: match must be 'audio' or 'image', got {match!r}")
        if pick not in ("mean", "random"):
            raise ValueError(f"retrieval prior: pick must be 'mean' or 'random', got {pick!r}")
        if k < 1:
            raise ValueError(f"retrieval prior: k must be at least 1, got {k}")
        info["settings"]["k"] = k = min(k, len(image))  # never more neighbours than training pairs
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"retrieval prior: blend must lie in [0, 1], got {blend}")
        if match == "image" and audio.shape[1] != image.shape[1]:
            raise ValueError(f"retrieval prior: match='image' needs audio and image embeddings of one dimension, "
                             f"got {audio.shape[1]} and {image.shape[1]}")  # fmt: skip
        if blend < 1.0 and audio.shape[1] != image.shape[1]:
            raise ValueError("retrieval prior: blend < 1 mixes the audio embedding in, so both need one dimension")
        return cls(info, image, audio if match == "audio" else None)

    def neighbours(self, audio: torch.Tensor) -> torch.Tensor:
        """Indices [B, k] of the nearest training clips."""
        keys = self.bank_audio if self.match == "audio" else self.bank_image
        out = [
            torch.cdist(audio[i : i + 1024], keys).topk(self.k, largest=False).indices
            for i in range(0, len(audio), 1024)
        ]
        return torch.cat(out) if out else torch.zeros(0, self.k, dtype=torch.long)

    def _sample(self, audio, n, seed):
        idx = self.neighbours(audio)  # [B, k]
        if self.pick == "mean":
            got = self.bank_image[idx].mean(1)[:, None].expand(-1, n, -1)
        else:
            g = torch.Generator().manual_seed(seed)
            pick = torch.randint(0, self.k, (len(audio), n), generator=g)
            got = self.bank_image[torch.gather(idx, 1, pick)]
        return got if self.blend == 1.0 else self.blend * got + (1 - self.blend) * audio[:, None]

    def tensors(self):
        return {
            "bank_image": self.bank_image,
            **({"bank_audio": self.bank_audio} if self.bank_audio is not None else {}),
        }


# ---------------------------------------------------------------------------------------------------------------------
# the diffusion prior


def cosine_alpha_bar(n_steps: int = 1000, s: float = 0.008) -> torch.Tensor:
    """alpha_bar(t) of the cosine schedule (Nichol & Dhariwal 2021), t = 0..n_steps (alpha_bar(0) = 1)."""
    t = torch.linspace(0, 1, n_steps + 1, dtype=torch.float64)
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (f / f[0]).clamp(1e-5, 1.0)


def timestep_features(t: torch.Tensor, dim: int = 64) -> torch.Tensor:
    """Sinusoidal features of a diffusion time t in [0, 1]: [B] -> [B, dim]."""
    freqs = torch.exp(torch.linspace(0, math.log(1000.0), dim // 2))
    ang = t[:, None].float() * freqs[None] * 2 * math.pi
    return torch.cat([ang.sin(), ang.cos()], 1)


class _Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, x):
        return x + self.net(x)


class PriorDenoiser(nn.Module):
    """(noisy image embedding x_t [B, D], time t in [0, 1] [B], audio condition c [B, Da]) -> predicted velocity
    ``v = sqrt(ab) eps - sqrt(1 - ab) x0`` (Salimans & Ho 2022), from which ``x0 = sqrt(ab) x_t - sqrt(1 - ab) v``."""

    def __init__(self, dim: int, audio_dim: int, hidden: int = 512, depth: int = 3):
        super().__init__()
        self.config = {"dim": dim, "audio_dim": audio_dim, "hidden": hidden, "depth": depth}
        self.inp = nn.Linear(dim + audio_dim + 64, hidden)
        self.blocks = nn.Sequential(*[_Block(hidden) for _ in range(depth)])
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, dim))
        self.null_cond = nn.Parameter(torch.zeros(audio_dim))  # the "no condition" input (classifier-free dropout)

    def forward(self, x_t, t, cond):
        return self.out(self.blocks(self.inp(torch.cat([x_t, cond, timestep_features(t)], 1))))


class DiffusionPrior(Prior):
    """Samples image embeddings for an audio embedding. Both sides are standardised (per dimension, statistics of the
    training pairs); the denoiser predicts the velocity v, i.e. the clean embedding x0 as a skip connection from x_t plus
    a learned correction (an MLP that predicts x0 directly regresses to the conditional mean at every noise level and
    collapses the samples onto it; this parameterisation keeps their spread); sampling runs DDIM from
    Gaussian noise (``eta=0``: deterministic given the noise, which is where the diversity comes from), with
    classifier-free guidance against the learned null condition when ``guidance != 1``."""

    name = "diffusion"
    deterministic = False
    T = 1000  # training timesteps

    def __init__(self, info: dict, net: PriorDenoiser, stats: dict[str, torch.Tensor]):
        super().__init__(info)
        self.net = net.eval().requires_grad_(False)
        self.stats = {k: v.float() for k, v in stats.items()}
        self.alpha_bar = cosine_alpha_bar(self.T)

    @classmethod
    def fit(cls, audio, image, info, hidden: int = 512, depth: int = 3, steps: int = 2000, batch_size: int = 256,
            lr: float = 1e-3, p_uncond: float = 0.1, sample_steps: int = 25, eta: float = 0.0, guidance: float = 1.0,
            ema: float = 0.995, seed: int = 0, max_seconds: float | None = None) -> DiffusionPrior:  # fmt: skip
        from .progress import Budget

        stats = {"audio_mean": audio.mean(0), "audio_std": audio.std(0).clamp_min(1e-3 * audio.std()),
                 "image_mean": image.mean(0), "image_std": image.std(0).clamp_min(1e-3 * image.std())}  # fmt: skip
        a = (audio - stats["audio_mean"]) / stats["audio_std"]
        v = (image - stats["image_mean"]) / stats["image_std"]
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        net = PriorDenoiser(image.shape[1], audio.shape[1], hidden, depth)
        avg = copy.deepcopy(net).requires_grad_(False)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        alpha_bar = cosine_alpha_bar(cls.T).float()
        budget, losses = Budget(steps, max_seconds), []
        for step in budget.loop("diffusion prior"):
            budget.set_lr(opt, lr, budget.lr_factor(step))
            idx = torch.randint(0, len(v), (min(batch_size, len(v)),), generator=g)
            x0, c = v[idx], a[idx]
            t = torch.randint(1, cls.T + 1, (len(idx),), generator=g)
            ab = alpha_bar[t][:, None]
            eps = torch.randn(x0.shape, generator=g)
            x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
            drop = torch.rand(len(idx), generator=g) < p_uncond
            c = torch.where(drop[:, None], net.null_cond.expand_as(c), c)
            loss = F.mse_loss(net(x_t, t / cls.T, c), ab.sqrt() * eps - (1 - ab).sqrt() * x0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                for pa, pn in zip(avg.parameters(), net.parameters()):
                    pa.lerp_(pn, 1 - ema)
            losses.append(loss.detach())
        info["train_steps"] = len(losses)
        info["final_loss"] = float(torch.stack(losses[-50:]).mean()) if losses else float("nan")
        return cls(info, avg, stats)

    @torch.no_grad()
    def _sample(self, audio, n, seed):
        s = self.settings
        st = self.stats
        c = ((audio - st["audio_mean"]) / st["audio_std"]).repeat_interleave(n, 0)
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(len(c), self.dim, generator=g)
        ts = torch.linspace(self.T, 0, int(s["sample_steps"]) + 1).round().long()
        ab = self.alpha_bar
        guidance, eta = float(s["guidance"]), float(s["eta"])
        for t, t_prev in zip(ts[:-1], ts[1:]):
            tt = torch.full((len(x),), float(t) / self.T)
            a_t, a_p = float(ab[t]), float(ab[t_prev])
            if guidance == 1.0:
                vel = self.net(x, tt, c)
            else:
                null = self.net.null_cond.expand_as(c)
                vc, vu = self.net(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([c, null])).chunk(2)
                vel = vu + guidance * (vc - vu)
            x0 = math.sqrt(a_t) * x - math.sqrt(1 - a_t) * vel
            eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
            sigma = eta * math.sqrt((1 - a_p) / (1 - a_t) * (1 - a_t / a_p)) if t_prev > 0 else 0.0
            x = math.sqrt(a_p) * x0 + math.sqrt(max(1 - a_p - sigma**2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * torch.randn(x.shape, generator=g)
        out = x * st["image_std"] + st["image_mean"]
        return out.view(len(audio), n, self.dim)

    def tensors(self):
        return {
            **{f"net.{k}": v for k, v in self.net.state_dict().items()},
            **{f"stats.{k}": v for k, v in self.stats.items()},
        }


_CLASSES = {"affine": AffinePrior, "retrieval": RetrievalPrior, "diffusion": DiffusionPrior}


def fit_prior(name: str, audio_train, image_train, *, profile: str | None = None, audio_encoder: str = "unknown",
              image_encoder: str | None = None, **settings) -> Prior:  # fmt: skip
    """Fit prior ``name`` (``affine``, ``retrieval`` or ``diffusion``) on training pairs: row i of ``audio_train``
    [N, Da] (audio embeddings, as the generator would be fed them) belongs with row i of ``image_train`` [N, D] (the
    image embedding of that clip's training frame). ``profile``, ``audio_encoder`` (:func:`encoder_id`) and
    ``image_encoder`` (:func:`anchor_space_id`) are recorded, and checked wherever the prior is used again.
    ``settings`` override :data:`DEFAULTS` for that prior."""
    from .config import profile as current_profile

    if name not in _CLASSES:
        raise ValueError(f"unknown prior {name!r}; use one of {', '.join(PRIORS)}")
    unknown = set(settings) - set(DEFAULTS[name]) - ({"max_seconds"} if name == "diffusion" else set())
    if unknown:
        raise ValueError(f"prior {name!r} has no setting {sorted(unknown)}; its settings: {', '.join(DEFAULTS[name])}")
    a = _as_matrix(audio_train, f"prior {name!r}: training audio embeddings")
    v = _as_matrix(image_train, f"prior {name!r}: training image embeddings")
    if len(a) != len(v):
        raise ValueError(f"prior {name!r}: {len(a)} audio embeddings but {len(v)} image embeddings (one pair per row)")
    if len(a) < 2:
        raise ValueError(f"prior {name!r}: fitting needs at least two training pairs, got {len(a)}")
    info = {"name": name, "profile": profile or current_profile(), "audio_dim": int(a.shape[1]), "dim": int(v.shape[1]),
            "audio_encoder": audio_encoder, "image_encoder": image_encoder or anchor_space_id(), "n_train": int(len(a))}  # fmt: skip
    kw = {**DEFAULTS[name], **settings}
    info["settings"] = dict(kw)
    t0 = time.time()
    prior = _CLASSES[name].fit(a, v, info, **kw)
    prior.info["fit_seconds"] = time.time() - t0
    return prior


def save_prior(prior: Prior, path: str | Path, info: dict | None = None) -> Path:
    """Write the prior as safetensors; its identity and settings (plus ``info``) go into the file's metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**prior.info, **(info or {})}
    meta.pop("path", None)
    tensors = {k: v.detach().contiguous().cpu() for k, v in prior.tensors().items()}
    save_file(tensors, str(path), metadata={"prior": json.dumps(meta, default=float)})
    return path


def load_prior(path: str | Path, expected: dict | None = None) -> Prior:
    """A prior saved by :func:`save_prior`. ``expected``: identity fields it must have been fitted on (e.g.
    ``{"profile": "toy", "dim": 128, "audio_encoder": encoder_id(model), "image_encoder": anchor_space_id("toy")}``);
    any difference is a one-line ValueError naming it."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no fitted prior here; fit one with s2v_lib.prior.fit_prior and save_prior")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if "prior" not in meta:
        raise ValueError(f"{path}: not a prior file (no 'prior' metadata)")
    info = {**json.loads(meta["prior"]), "path": str(path)}
    name = info.get("name")
    if name == "affine":
        prior: Prior = AffinePrior(info, tensors["weight"], tensors["bias"])
    elif name == "retrieval":
        prior = RetrievalPrior(info, tensors["bank_image"], tensors.get("bank_audio"))
    elif name == "diffusion":
        s = info["settings"]
        net = PriorDenoiser(info["dim"], info["audio_dim"], s["hidden"], s["depth"])
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        prior = DiffusionPrior(info, net, {k[6:]: v for k, v in tensors.items() if k.startswith("stats.")})
    else:
        raise ValueError(f"{path}: unknown prior {name!r}; known: {', '.join(PRIORS)}")
    if expected:
        prior.check_compatible(**expected)
    return prior


def generate_with_prior(generator, prior: Prior, audio, n: int = 1, seed: int = 0, **generator_kw) -> np.ndarray:
    """Pictures uint8 [B, n, H, W, 3]: n prior samples per sound, one picture each (any generator)."""
    emb = prior.sample(audio, n, seed)
    b = emb.shape[0]
    pics = generator.generate(emb.reshape(b * n, -1), n=1, seed=seed, **generator_kw)
    return pics.reshape(b, n, *pics.shape[2:])


# ---------------------------------------------------------------------------------------------------------------------
# the toy experiment's pieces (s2v ablate, s2v demo --prior)


def training_pairs(exp, v) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio embeddings of the training clips as the generator would be fed them, image embeddings of their paired
    training frames): what a prior for variant ``v`` is fitted on. No ground truth enters."""
    from .audio_encoder import embed_spectrograms
    from .experiment import match_anchor_norm
    from .losses import DIRECTION_ONLY

    anchors = exp.training_pairs(v.pairing)[1]
    audio = embed_spectrograms(v.model, exp.specs["train"])
    if v.loss in DIRECTION_ONLY:
        audio = match_anchor_norm(audio, anchors)
    return audio, anchors


def fit_prior_for_variant(exp, v, name: str, **settings) -> Prior:
    """Fit prior ``name`` for a trained variant of a toy experiment (``experiment.train_variant``); use it on
    ``experiment.generator_input(exp, v)``."""
    audio, image = training_pairs(exp, v)
    return fit_prior(name, audio, image, profile="toy", audio_encoder=encoder_id(v.model),
                     image_encoder=anchor_space_id("toy"), **settings)  # fmt: skip
