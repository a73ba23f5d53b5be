"""Training the *frozen* toy models, once, by the project's own scripts (``s2v pretrain STAGE``).

Sound2Vision never trains its image encoder or generator: they are pre-trained and frozen (paper guide steps 5 and 7).
The toy profile needs its own such models, so this module makes them from the toy world and ships them under
``data/models`` (see ``registry``). Notebooks never call this; they load the results.

Stages (each writes one safetensors file and its manifest entry):

* ``world``         - the pre-training clips (seed 1000, with two-source mixtures), cached
* ``image-encoder`` - SimCLR on unlabeled frames            (needs: world)
* ``judge``         - supervised classifier for evaluation  (needs: world)
* ``diffusion``     - unCLIP-style diffusion generator      (needs: world, image-encoder)
* ``gan``           - conditional GAN                       (needs: world, image-encoder)
* ``ssl``           - sound-source localisation, contrastive MIL on unlabeled clips (``s2v_lib.ssl``)
* ``gan-stats``     - re-estimate the shipped GAN's BatchNorm statistics for its EMA weights (a few CPU minutes;
  ``generators.standing_stats``; ``pretrain_gan`` now does this itself at the end)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from . import toyworld as tw
from .config import models_dir, setup_torch
from .data import build_toy_dataset

STAGES = ("world", "image-encoder", "judge", "diffusion", "gan", "ssl", "gan-stats")
PRETRAIN_SEED = 1000
PRETRAIN_WORLD = tw.WorldConfig(p_mixture=0.15)


def pretrain_frames(n_clips: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """All frames of the pre-training clips, [M, 32, 32, 3], with their ground truth [M, 4, C]."""
    ds = build_toy_dataset(n_clips, seed=PRETRAIN_SEED, config=PRETRAIN_WORLD, workers=workers)
    return ds.frames.reshape(-1, *ds.frames.shape[2:]), ds.targets.reshape(-1, *ds.targets.shape[2:])


def run_stage(stage: str, device: str = "cpu", seconds: float = 60.0, n_clips: int = 20000, workers: int = 1,
              out: Path | None = None, seed: int = 0, init: bool = False, lr: float | None = None) -> dict:  # fmt: skip
    from .registry import load_toy_model, read_manifest, save_model

    out = Path(out or models_dir())
    setup_torch()
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if stage == "ssl":  # trains on whole clips (audio + all their frames), not on the pooled frames below
        from .ssl import pretrain_ssl

        stats = pretrain_ssl(out, seconds=seconds, n_clips=n_clips, seed=seed, workers=workers, device=device)
        print(f"[pretrain] {stage}: {stats}", file=sys.stderr)
        return stats
    frames, targets = pretrain_frames(n_clips, workers)
    command = f"s2v pretrain {stage} --device {device} --seconds {seconds:g} --clips {n_clips} --seed {seed}"
    command += (" --init" if init else "") + (f" --lr {lr:g}" if lr else "")
    info = {"command": command, "seed": seed, "world": f"seed {PRETRAIN_SEED}, {n_clips} clips, {len(frames)} frames",
            "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"}  # fmt: skip
    if stage == "world":
        return {"frames": len(frames)}
    steps = 10**7  # bounded by time
    if stage == "image-encoder":
        from .encoders import pretrain_image_encoder

        model, stats = pretrain_image_encoder(frames, steps=_steps(seconds, device, 0.012), seed=seed, device=device,
                                              max_seconds=seconds)  # fmt: skip
        save_model(model, "toy-image-encoder", {**info, **stats}, out, half=False)
    elif stage == "judge":
        from .metrics import pretrain_judge

        model, stats = pretrain_judge(frames, targets, steps=_steps(seconds, device, 0.008), seed=seed, device=device,
                                      max_seconds=seconds)  # fmt: skip
        save_model(model, "toy-judge", {**info, **stats}, out, half=False)
    elif stage in ("diffusion", "gan"):
        from .generators import pretrain_diffusion, pretrain_gan

        encoder = load_toy_model("toy-image-encoder", folder=out, device=device)
        embeds = encoder.encode(frames)
        fn = pretrain_diffusion if stage == "diffusion" else pretrain_gan
        kw = {"lr": lr} if lr else {}
        if init:  # continue from the model already in `out`, and keep a record of the earlier runs
            kw["init"] = load_toy_model(f"toy-{stage}", folder=out)
            earlier = read_manifest(out)[f"toy-{stage}"]
            info["continued_from"] = {k: earlier.get(k) for k in ("sha256", "command", "steps", "seconds", "continued_from")}
        model, stats = fn(frames, embeds, steps=steps, seed=seed, device=device, max_seconds=seconds, **kw)
        info["image_encoder_sha256"] = _manifest_sha(out, "toy-image-encoder")
        save_model(model, f"toy-{stage}", {**info, **stats}, out, half=True)
    elif stage == "gan-stats":
        from .generators import standing_stats

        embeds = load_toy_model("toy-image-encoder", folder=out).encode(frames)
        earlier = read_manifest(out)["toy-gan"]
        keep = {k: earlier[k] for k in ("config", "image_encoder_sha256", "steps", "loss_d", "loss_g") if k in earlier}
        info["continued_from"] = {k: earlier.get(k) for k in ("sha256", "command", "steps", "seconds", "device", "note", "continued_from")}
        import time

        t0 = time.time()
        order = torch.randperm(len(embeds), generator=torch.Generator().manual_seed(seed))
        model = standing_stats(load_toy_model("toy-gan", folder=out), embeds[order[:8192]], seed=seed)  # 32 batches
        stats = {**keep, "note": "BatchNorm statistics re-estimated for the EMA weights over 8192 random frames' embeddings "
                 "(standing statistics); weights unchanged", "seconds": time.time() - t0}  # fmt: skip
        save_model(model, "toy-gan", {**info, **stats}, out, half=True)
    else:
        raise ValueError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
    print(f"[pretrain] {stage}: {stats}", file=sys.stderr)
    return stats


def _steps(seconds: float, device: str, gpu_step_seconds: float) -> int:
    """A step budget for one-cycle schedules: what fits in ``seconds`` (estimated), time still bounds the loop."""
    per_step = gpu_step_seconds if device.startswith("cuda") else gpu_step_seconds * 40
    return max(50, int(seconds / per_step))


def _manifest_sha(folder: Path, name: str) -> str:
    from .registry import read_manifest

    return read_manifest(folder).get(name, {}).get("sha256", "")

