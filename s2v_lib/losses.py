"""Alignment losses between audio embeddings a_i and frozen image embeddings v_j (paper guide step 6).

Sound2Vision's loss is InfoNCE whose logits are *negative Euclidean distances* between raw (un-normalised)
embeddings, symmetrised over both directions, temperature 1:

    D_ij = || a_i - v_j ||_2,     L = 1/2 [ CE(-D, I) + CE(-D^T, I) ]

Pulling a_i onto v_i itself (not just its direction) is what lets the frozen generator read the audio embedding
as if it were an image embedding. The variants of the paper's ablation are here too: the same loss on L2-normalised
embeddings (Sound2Scene), cosine InfoNCE, and plain MSE / L1 regression onto the anchor.
"""

from __future__ import annotations

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


def infonce_cosine(a: torch.Tensor, v: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """CLIP-style InfoNCE over cosine similarities."""
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
    "mse": mse,
    "l1": l1,
}
# losses that only align directions: their audio embeddings are rescaled to the anchors' norm before generation
DIRECTION_ONLY = {"infonce_l2_normalized", "infonce_cosine"}


def get_loss(name: str):
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; use one of {', '.join(LOSSES)}") from None
