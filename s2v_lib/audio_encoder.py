"""The audio encoder: spectrogram -> a point in the frozen image encoder's embedding space (paper guide step 4).

As in the authors' code: a torchvision ResNet-18 trained from scratch with a one-channel first convolution, global
average pooling (512-d), then an MLP head into the image-embedding dimension (Sound2Vision: 512 -> 1024 -> ReLU ->
1024 for OpenCLIP ViT-H/14; the toy profile: 512 -> 512 -> ReLU -> 128).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.resnet import BasicBlock

from .audio import FrontEnd


def resnet18_backbone(width: int = 64, in_channels: int = 1) -> nn.Module:
    """torchvision's ResNet-18 (BasicBlocks, [2, 2, 2, 2]) with a ``in_channels``-channel first convolution and no
    classifier: [B, C, F, T] -> [B, 8 * width]. ``width`` 64 is the paper's network; a smaller width scales every
    layer's channels (same modules, same parameter names)."""
    net = resnet18(weights=None)
    if width != 64:
        net.inplanes = width
        net.bn1 = nn.BatchNorm2d(width)
        net.layer1 = net._make_layer(BasicBlock, width, 2)
        net.layer2 = net._make_layer(BasicBlock, 2 * width, 2, stride=2)
        net.layer3 = net._make_layer(BasicBlock, 4 * width, 2, stride=2)
        net.layer4 = net._make_layer(BasicBlock, 8 * width, 2, stride=2)
    net.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.fc = nn.Identity()
    return net


class AudioEncoder(nn.Module):
    def __init__(self, emb_dim: int = 128, hidden: int = 512, front_end: str = "toy", width: int = 64):
        super().__init__()
        self.config = {"emb_dim": emb_dim, "hidden": hidden, "front_end": front_end, "width": width}
        self.front_end = FrontEnd.preset(front_end)
        # channels-last memory: the same network, about twice as fast on a CPU (and the layout GPUs prefer)
        self.backbone = resnet18_backbone(width).to(memory_format=torch.channels_last)
        self.head = nn.Sequential(nn.Linear(8 * width, hidden), nn.ReLU(), nn.Linear(hidden, emb_dim))

    @classmethod
    def paper(cls) -> AudioEncoder:
        """The authors' configuration for the full profile (1024-d OpenCLIP ViT-H/14 space, 10 s clips)."""
        return cls(emb_dim=1024, hidden=1024, front_end="paper")

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """[B, 1, F, T] spectrograms -> [B, emb_dim] embeddings."""
        return self.head(self.backbone(spec.contiguous(memory_format=torch.channels_last)))

    @torch.no_grad()
    def embed(self, waves, batch_size: int = 256) -> torch.Tensor:
        """Raw 16 kHz waveforms ([B, N] array or list) -> embeddings, through the front end, in eval mode."""
        self.eval()
        return embed_spectrograms(self, self.front_end(np.asarray(waves, dtype=np.float32)), batch_size)


def save_audio_encoder(model: AudioEncoder, path: str | Path, info: dict | None = None) -> Path:
    """Weights as safetensors, with the config (and any ``info``) in the file's metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"config": json.dumps(model.config), "info": json.dumps(info or {})})
    return path


def load_audio_encoder(path: str | Path) -> AudioEncoder:
    """A trained audio encoder saved by :func:`save_audio_encoder` (e.g. ``runs/demo/audio_encoder.safetensors``)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained audio encoder here; run `s2v demo` first (a few minutes) "
                                "or pass --encoder PATH")  # fmt: skip
    with safe_open(str(path), framework="pt") as f:
        config = json.loads((f.metadata() or {})["config"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    model = AudioEncoder(**config)
    model.load_state_dict(state)
    return model.eval()


@torch.no_grad()
def embed_spectrograms(model: AudioEncoder, specs: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    out = [model(specs[i : i + batch_size].to(device).float()).cpu() for i in range(0, len(specs), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, model.config["emb_dim"])
