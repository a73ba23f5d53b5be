"""The full profile's frozen models: OpenCLIP ViT-H/14 and Stable unCLIP 2.1 (PAPER.md steps 5 and 7).

These load the authors' real models with their libraries' own code (``open_clip``, diffusers ``from_pretrained``).
They need the weights (several GB) from the Hugging Face hub or its local cache, and a GPU to be practical. Offline
or without the cache they raise :class:`~s2v_lib.registry.ModelError` saying what is missing, how to get it, and that
the toy profile (``S2V_PROFILE=toy``) runs everything without downloads.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

OPENCLIP_MODEL, OPENCLIP_PRETRAINED = "ViT-H-14", "laion2b_s32b_b79k"
UNCLIP_REPO = "stabilityai/stable-diffusion-2-1-unclip"


def _missing(what: str, how: str, err: Exception):
    from .registry import ModelError

    return ModelError(
        f"{what} could not be loaded ({type(err).__name__}: {str(err).splitlines()[0][:160]}). "
        f"It is a download: {how}. On a machine without internet, use the toy profile instead (S2V_PROFILE=toy)."
    )


class OpenCLIPImageEncoder(nn.Module):
    """OpenCLIP's visual tower behind the toy encoder's interface: ``encode(uint8 frames) -> [B, 1024]``."""

    def __init__(self, model: nn.Module, preprocess, dim: int = 1024):
        super().__init__()
        self.model, self.preprocess, self.dim = model, preprocess, dim

    @torch.no_grad()
    def encode(self, frames, batch_size: int = 32) -> torch.Tensor:
        from PIL import Image

        frames = np.asarray(frames)
        device = next(self.model.parameters()).device
        out = []
        for i in range(0, len(frames), batch_size):
            x = torch.stack([self.preprocess(Image.fromarray(f)) for f in frames[i : i + batch_size]]).to(device)
            out.append(self.model.encode_image(x).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.dim)


def load_openclip_image_encoder(device: str = "cpu", name: str = OPENCLIP_MODEL, pretrained: str | None = OPENCLIP_PRETRAINED):
    import open_clip

    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=device)
    except Exception as err:
        raise _missing(f"OpenCLIP {name} ({pretrained})", "run once with internet so open_clip caches the weights", err) from None
    return OpenCLIPImageEncoder(model.eval(), preprocess, dim=model.visual.output_dim)


def load_stable_unclip(device: str = "cpu", repo: str = UNCLIP_REPO):
    from diffusers import StableUnCLIPImg2ImgPipeline

    try:
        pipe = StableUnCLIPImg2ImgPipeline.from_pretrained(repo, torch_dtype=torch.float16 if device != "cpu" else torch.float32)
    except Exception as err:
        raise _missing(f"Stable unCLIP ({repo})", "run once with internet so diffusers caches it (~5 GB)", err) from None
    return pipe.to(device)
