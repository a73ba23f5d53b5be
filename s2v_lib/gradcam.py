"""Grad-CAM over the input spectrogram (paper guide "Analysis", the paper's Figure 5): which time-frequency regions of a
sound drove the picture drawn from it.

Grad-CAM (Selvaraju et al. 2017) weights a convolutional layer's feature maps by the mean gradient of a scalar
score with respect to each map, keeps the positive part, and upsamples it to the input:

    cam(f, t) = ReLU( sum_k  mean_{f,t}(d s / d A_k) * A_k(f, t) )

The score ``s`` here is the projection of the sound's embedding on the *generated picture's* embedding by the frozen
image encoder, ``s = f_audio(x) . f_image(picture)``: which parts of the spectrogram push the embedding along what
was drawn. It needs no gradient through the generator, so it works the same for the diffusion model, the GAN and
Stable unCLIP. (The training logit ``-||f_audio(x) - f_image(picture)||^2`` is the other natural score; near a good
match its gradient is the small residual, and its maps sat on the background: 46% of the CAM mass on the louder
half of the spectrogram, against 63% for the projection, on 16 held-out sounds.) The computation is
``pytorch-grad-cam``'s ``GradCAM``.
"""

from __future__ import annotations

import numpy as np
import torch

from .audio_encoder import AudioEncoder


class EmbeddingTarget:
    """Grad-CAM score for one sound: the audio embedding's projection on a target image embedding."""

    def __init__(self, target: torch.Tensor):
        self.target = torch.as_tensor(target, dtype=torch.float32)

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return (output * self.target.to(output.device)).sum(-1)


def spectrogram_cam(
    model: AudioEncoder, specs: torch.Tensor, targets: torch.Tensor, layer: str = "layer3"
) -> np.ndarray:
    """Grad-CAM maps [B, F, T] in [0, 1] for spectrograms [B, 1, F, T] and target image embeddings [B, D].

    ``layer``: the ResNet stage whose maps are weighted. The toy 64 x 65 spectrogram is 4 x 5 after ``layer3`` and
    2 x 3 after ``layer4`` (the usual choice on 224 px images), so ``layer3`` is the default here; ``layer2`` is finer
    (8 x 9) and noisier."""
    from pytorch_grad_cam import GradCAM

    specs = torch.as_tensor(specs).float()
    targets = torch.as_tensor(targets, dtype=torch.float32)
    if specs.ndim != 4 or specs.shape[1] != 1:
        raise ValueError(f"expected spectrograms [B, 1, F, T], got {tuple(specs.shape)}")
    if len(targets) != len(specs):
        raise ValueError(f"{len(specs)} spectrograms but {len(targets)} target embeddings")
    if not torch.isfinite(specs).all():
        raise ValueError("spectrograms contain NaN or infinite values (a silent clip?): nothing to explain")
    model = model.eval()
    with GradCAM(model=model, target_layers=[getattr(model.backbone, layer)]) as cam:
        maps = cam(input_tensor=specs, targets=[EmbeddingTarget(t) for t in targets])
    return np.asarray(maps, dtype=np.float32)


def explain_pictures(model: AudioEncoder, specs: torch.Tensor, pictures: np.ndarray, image_encoder,
                     layer: str = "layer3") -> np.ndarray:  # fmt: skip
    """Grad-CAM maps [B, F, T] for pictures [B, H, W, 3] drawn from spectrograms [B, 1, F, T]."""
    return spectrogram_cam(model, specs, image_encoder.encode(np.asarray(pictures)), layer=layer)


def band_energy(maps: np.ndarray, specs: torch.Tensor) -> dict[str, float]:
    """How much of the Grad-CAM mass lies where the sound is (spectrogram above its clip's median) rather than on
    the background: share of CAM mass on the loudest half of each spectrogram's bins (0.5 = no preference)."""
    s = torch.as_tensor(specs).float()[:, 0].numpy()
    loud = s > np.median(s.reshape(len(s), -1), axis=1)[:, None, None]
    mass = maps.reshape(len(maps), -1).sum(1) + 1e-12
    return {"cam_mass_on_sound": float(((maps * loud).reshape(len(maps), -1).sum(1) / mass).mean())}
