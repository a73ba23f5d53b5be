"""Alignment losses between audio embeddings a_i and frozen image embeddings v_j (paper guide step 6).

Sound2Vision's loss is InfoNCE whose logits are *negative Euclidean distances* between raw (un-normalised)
embeddings, symmetrised over both directions, temperature 1:

    D_ij = || a_i - v_j ||_2,     L = 1/2 [ CE(-D, I) + CE(-D^T, I) ]

What it does, as measured (notebook 06, ``s2v geometry``): it *orders distances*. It rewards each sound for being
nearer its own frame's embedding than the other frames in the batch, and each frame for being nearer its own sound
than the other sounds. Nothing in it asks a_i to *equal* v_i: an audio embedding sitting exactly on its anchor is
still pushed on, away from the other anchors, and the loss keeps falling as the audio embeddings move *outward*
along the anchors' directions (the a -> v softmax sharpens with length). In the toy world the trained audio embeddings grow to about twice the
anchors' length and the modality gap (the distance between the two centroids) widens during training. That the
generator still draws the right object from them is measured, not implied by the loss (notebook 04).

The variants of the paper's ablation: the same loss on L2-normalised embeddings (Sound2Scene), cosine InfoNCE (the
authors' ``InfoNCE_Loss``, scale 1; ``infonce_cosine_tau0.1`` is the CLIP-style temperature 0.1), and plain MSE / L1
regression onto the anchor (these do ask a_i to equal v_i).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F


def pairwise_l2(a: torch.Tensor, v: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """D_ij = ||a_i - v_j||_2 with a safe gradient at zero distance."""
    d2 = (a.square().sum(1, keepdim=True) - 2 * a @ v.T + v.square().sum(1)[None]).clamp_min(0)
    return (d2 + eps).sqrt()


def symmetric_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """1/2 [CE(logits, I) + CE(logits^T, I)]: row i's positive is column i."""
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def infonce_l2(a: torch.Tensor, v: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Sound2Vision: InfoNCE over negative L2 distances of the raw embeddings."""
    return symmetric_cross_entropy(-pairwise_l2(a, v) / temperature)


def infonce_l2_normalized(a: torch.Tensor, v: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Sound2Scene: the same loss after L2-normalising both sides (only directions are aligned)."""
    return infonce_l2(F.normalize(a, dim=1), F.normalize(v, dim=1), temperature)


def infonce_cosine(a: torch.Tensor, v: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """InfoNCE over cosine similarities; temperature 1 as the authors' ``InfoNCE_Loss`` (CLIP uses ~0.07-0.1)."""
    return symmetric_cross_entropy(F.normalize(a, dim=1) @ F.normalize(v, dim=1).T / temperature)


def mse(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Regression onto the anchor (no negatives)."""
    return F.mse_loss(a, v)


def l1(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(a, v)


LOSSES = {
    "infonce_l2": infonce_l2,
    "infonce_l2_normalized": infonce_l2_normalized,
    "infonce_cosine": infonce_cosine,
    "infonce_cosine_tau0.1": partial(infonce_cosine, temperature=0.1),
    "mse": mse,
    "l1": l1,
}
# losses that only align directions: their audio embeddings are rescaled to the anchors' norm before generation
DIRECTION_ONLY = {"infonce_l2_normalized", "infonce_cosine", "infonce_cosine_tau0.1"}


def get_loss(name: str):
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; use one of {', '.join(LOSSES)}") from None
