"""Geometry of the shared embedding space: the modality gap, and UMAP pictures (paper guide "Analysis and evaluation").

The paper explains why audio embeddings transfer to a generator that never heard a sound: training closes the
*modality gap* between audio and image embeddings. This module measures that gap for any two embedding sets
``audio [N, D]`` and ``image [N, D]`` paired by row (row i of both comes from the same clip):

- **centroid gap** ("Mind the Gap", Liang et al. 2022): ``|| mean_i a_i - mean_i v_i ||``. Liang et al. compute it on
  L2-normalised embeddings (CLIP's space is a sphere); :func:`centroid_gap` does both. The *raw* gap is the one the
  frozen generator sees, since it is fed the un-normalised embedding; the normalised gap is scale-free, so it compares
  losses whose embeddings have different lengths.
- **paired vs unpaired cosine**: mean ``cos(a_i, v_i)`` against mean ``cos(a_i, v_j)``, i != j.
- **modality probe**: held-out accuracy of a logistic regression that tells audio from image embeddings
  (0.5: the modalities are indistinguishable to a linear read-out; 1.0: they live apart).
- **alignment and uniformity** (Wang & Isola 2020) on the unit sphere: ``E ||a_i - v_i||^2`` over pairs, and
  ``log E exp(-2 ||x - y||^2)`` over all pairs within one set (lower = more spread out).

:func:`run_geometry` (``s2v geometry``) measures all of it on held-out toy clips for an untrained audio encoder and for
encoders trained with each loss of the ablation, and saves the embeddings (:func:`save_embeddings`, format below)
so that notebook 06 loads them instead of training again. The same file format carries full-profile embeddings.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .losses import LOSSES

# ---------------------------------------------------------------------------------------------------------------------
# Measures (pure functions of two row-paired embedding sets)


def _pair(audio, image) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.as_tensor(np.asarray(audio), dtype=torch.float64)
    v = torch.as_tensor(np.asarray(image), dtype=torch.float64)
    if a.ndim != 2 or a.shape != v.shape:
        raise ValueError(f"need two [N, D] embedding sets paired by row, got {tuple(a.shape)} and {tuple(v.shape)}")
    if len(a) < 2:
        raise ValueError("need at least two pairs of embeddings")
    return a, v


def gap_vector(audio, image, normalize: bool = False) -> torch.Tensor:
    """mean(image) - mean(audio): the direction that carries the audio centroid onto the image centroid."""
    a, v = _pair(audio, image)
    if normalize:
        a, v = F.normalize(a, dim=1), F.normalize(v, dim=1)
    return v.mean(0) - a.mean(0)


def centroid_gap(audio, image, normalize: bool = False) -> float:
    """|| mean_i a_i - mean_i v_i ||_2; ``normalize=True`` is Liang et al.'s definition (unit-length embeddings)."""
    return float(gap_vector(audio, image, normalize).norm())


def paired_cosine(audio, image) -> dict[str, float]:
    """Mean cosine of paired embeddings (a_i, v_i) and of unpaired ones (a_i, v_j, i != j)."""
    a, v = _pair(audio, image)
    cos = F.normalize(a, dim=1) @ F.normalize(v, dim=1).T
    n = len(a)
    paired = cos.diagonal().mean()
    unpaired = (cos.sum() - cos.diagonal().sum()) / (n * n - n)
    return {"paired_cosine": float(paired), "unpaired_cosine": float(unpaired)}


def modality_probe_accuracy(audio, image, train_fraction: float = 0.5, seed: int = 0, l2: float = 1e-2,
                            max_iter: int = 200) -> float:  # fmt: skip
    """Held-out accuracy of a linear probe (L2-regularised logistic regression) that tells audio from image.

    Pairs, not single embeddings, are split into train and test, so a clip's audio and image are on the same side.
    Features are standardised with the training split's statistics (a linear probe is invariant to that; it only
    helps the optimiser). Identical sets give exactly 0.5: every test embedding has a twin with the other label.
    """
    a, v = _pair(audio, image)
    n = len(a)
    n_train = int(round(n * train_fraction))
    if not 1 <= n_train < n:
        raise ValueError(f"train_fraction={train_fraction} leaves no train or no test pairs out of {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    tr, te = perm[:n_train], perm[n_train:]

    def xy(idx):
        x = torch.cat([a[idx], v[idx]])
        return x, torch.cat([torch.ones(len(idx)), torch.zeros(len(idx))]).double()

    x_tr, y_tr = xy(tr)
    x_te, y_te = xy(te)
    mu, sd = x_tr.mean(0), x_tr.std(0).clamp_min(1e-8)
    x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    w = torch.zeros(x_tr.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x_tr @ w + b, y_tr) + l2 * w.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        pred = (x_te @ w + b > 0).double()
    return float((pred == y_te).double().mean())


def alignment(audio, image, alpha: float = 2.0) -> float:
    """Wang & Isola's alignment: E_i || a_i/|a_i| - v_i/|v_i| ||^alpha (0 = every pair coincides on the sphere)."""
    a, v = _pair(audio, image)
    return float((F.normalize(a, dim=1) - F.normalize(v, dim=1)).norm(dim=1).pow(alpha).mean())


def uniformity(x, t: float = 2.0) -> float:
    """Wang & Isola's uniformity: log E_{i != j} exp(-t || x_i/|x_i| - x_j/|x_j| ||^2).

    0 when every point is the same (collapse); about -2t for points spread evenly over a high-dimensional sphere."""
    z = F.normalize(torch.as_tensor(np.asarray(x), dtype=torch.float64), dim=1)
    d2 = torch.pdist(z).square()
    return float(torch.logsumexp(-t * d2, 0) - np.log(len(d2)))


def modality_gap(audio, image, seed: int = 0) -> dict[str, float]:
    """Every measure of the gap between two row-paired embedding sets, as one flat dict (a row of the table)."""
    a, v = _pair(audio, image)
    return {
        "gap_centroid": centroid_gap(a, v),
        "gap_centroid_normalized": centroid_gap(a, v, normalize=True),
        "probe_accuracy": modality_probe_accuracy(a, v, seed=seed),
        **paired_cosine(a, v),
        "alignment": alignment(a, v),
        "uniformity_audio": uniformity(a),
        "uniformity_image": uniformity(v),
        "audio_norm": float(a.norm(dim=1).mean()),
        "image_norm": float(v.norm(dim=1).mean()),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Embedding sets on disk (what `s2v geometry` writes and notebook 06 reads; full-profile embeddings use the same file)


@dataclass
class EmbeddingSet:
    """Row-paired embeddings of held-out clips: ``audio[i]`` and ``image[i]`` come from clip i, of category
    ``label[i]``. ``audio`` is what the generator is fed (see :func:`s2v_lib.experiment.generator_input`)."""

    audio: np.ndarray  # float32 [N, D]
    image: np.ndarray  # float32 [N, D]
    label: np.ndarray  # int64 [N]

    def __post_init__(self):
        self.audio = np.asarray(self.audio, dtype=np.float32)
        self.image = np.asarray(self.image, dtype=np.float32)
        self.label = np.asarray(self.label, dtype=np.int64)
        if self.audio.ndim != 2 or self.audio.shape != self.image.shape or self.label.shape != (len(self.audio),):
            raise ValueError(f"audio {self.audio.shape}, image {self.image.shape} and label {self.label.shape} must be "
                             "[N, D], [N, D] and [N]")  # fmt: skip


def save_embeddings(path: str | Path, sets: dict[str, EmbeddingSet], category_names=None) -> Path:
    """One ``.npz``: ``variants`` (names, in order), then per variant V: ``V.audio`` [N, D] float32,
    ``V.image`` [N, D] float32, ``V.label`` [N] int64; optional ``category_names`` [K] (label k is named
    ``category_names[k]``). Keys are read through ``variants``, so a name may contain dots. Build the same file from full-profile embeddings
    (e.g. 1024-d OpenCLIP ViT-H/14 image embeddings and the matching audio encoder's outputs) to analyse them."""
    arrays = {"variants": np.array(list(sets), dtype=str)}
    for name, s in sets.items():
        arrays.update({f"{name}.audio": s.audio, f"{name}.image": s.image, f"{name}.label": s.label})
    if category_names is not None:
        arrays["category_names"] = np.array(list(category_names), dtype=str)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def load_embeddings(path: str | Path) -> tuple[dict[str, EmbeddingSet], list[str] | None]:
    """Read a file written by :func:`save_embeddings`: ({variant: EmbeddingSet}, category names or None)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no embeddings here; run `s2v geometry --out {path.parent}` first")
    with np.load(path, allow_pickle=False) as f:
        if "variants" not in f:
            raise ValueError(f"{path}: not an embeddings file (no 'variants' array); see save_embeddings")
        sets = {}
        for name in f["variants"].tolist():
            missing = [k for k in ("audio", "image", "label") if f"{name}.{k}" not in f]
            if missing:
                raise ValueError(f"{path}: variant {name!r} lacks {', '.join(f'{name}.{k}' for k in missing)}")
            sets[name] = EmbeddingSet(f[f"{name}.audio"], f[f"{name}.image"], f[f"{name}.label"])
        names = f["category_names"].tolist() if "category_names" in f else None
    return sets, names


def gap_table(sets: dict[str, EmbeddingSet], seed: int = 0) -> dict[str, dict[str, float]]:
    """:func:`modality_gap` of every variant: {variant: {measure: value}}."""
    return {name: modality_gap(s.audio, s.image, seed=seed) for name, s in sets.items()}


# ---------------------------------------------------------------------------------------------------------------------
# UMAP (umap-learn compiles with numba the first time it is imported, ~10 s: imported here only when needed)


def umap_projection(audio, image, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1):
    """Both modalities in one 2-D UMAP fit (Euclidean, on the raw embeddings): (audio_xy [N, 2], image_xy [N, 2]).

    UMAP keeps neighbourhoods, not distances: two islands far apart mean "no neighbours in common", and how far
    apart they are drawn means little. Read the centroid gap for distances."""
    import umap

    a, v = np.asarray(audio, dtype=np.float32), np.asarray(image, dtype=np.float32)
    xy = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed, n_jobs=1).fit_transform(
        np.concatenate([a, v])
    )
    return xy[: len(a)], xy[len(a) :]


def umap_maps(sets: dict[str, EmbeddingSet], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{variant: (audio_xy, image_xy, label)}, the input of :func:`s2v_lib.viz.embedding_maps`."""
    return {name: (*umap_projection(s.audio, s.image, seed=seed), s.label) for name, s in sets.items()}


# ---------------------------------------------------------------------------------------------------------------------
# Embeddings of held-out toy clips: untrained encoder, and one encoder per loss of the ablation

UNTRAINED = "untrained"
SHIFTED = "_shifted"  # suffix of a variant whose embeddings were moved by the validation gap vector
BEFORE_AFTER = (UNTRAINED, "infonce_l2", "infonce_l2" + SHIFTED)
TITLES = {UNTRAINED: "before training", "infonce_l2": "after training (InfoNCE-L2)",
          "infonce_l2" + SHIFTED: "after training, gap closed"}  # fmt: skip
GAP_DEFINITION = (
    "gap_centroid: ||mean(audio) - mean(image)|| of the raw embeddings the generator is fed (direction-only losses "
    "rescaled to the anchors' mean norm); gap_centroid_normalized: the same on L2-normalised embeddings "
    "(Liang et al. 2022)"
)


@dataclass
class GeometryConfig:
    """``s2v geometry``'s settings: smaller than the demo's (4000 clips) so that five trainings, seven generations
    and seven UMAP fits fit in 5 minutes on two idle CPU cores. 1280 + 160 + 160 clips are the same 1600 toy-world
    clips that notebook 00's quick audio encoder builds (one cache)."""

    n_train: int = 1280
    n_val: int = 160
    n_test: int = 160
    epochs: int = 3
    losses: tuple[str, ...] = tuple(LOSSES)
    pairing: str = "middle"
    generator: str = "toy-diffusion"
    sampling_steps: int = 10
    seeds: tuple[int, ...] = (1,)  # each seed: another toy-world split and training seed


def untrained_embeddings(exp, seed: int = 0) -> torch.Tensor:
    """Held-out audio embeddings from a freshly initialised audio encoder (before any alignment training)."""
    from .audio_encoder import AudioEncoder, embed_spectrograms

    torch.manual_seed(seed)
    return embed_spectrograms(AudioEncoder(emb_dim=exp.anchors_test.shape[1]), exp.specs["test"])


def collect_embeddings(exp, losses=tuple(LOSSES), epochs: int = 3, pairing: str = "middle", seed: int = 0,
                       generator: str | None = None, steps: int = 10,
                       close_gap=("infonce_l2",)) -> tuple[dict[str, EmbeddingSet], dict]:  # fmt: skip
    """Held-out embeddings of the untrained encoder and of one trained encoder per loss, all on the same data.

    For each loss in ``close_gap`` a variant ``<loss>_shifted`` is added: the same embeddings moved by the gap vector
    measured on the *validation* clips (:func:`s2v_lib.experiment.gap_vector`: their SSL top-1 frames, never ground
    truth), i.e. the modality gap closed after training.
    With a ``generator``, each trained variant is also evaluated (:func:`s2v_lib.experiment.evaluate_variant`,
    no oracle), and the other variants' embeddings are drawn and judged the same way.
    Returns ({variant: EmbeddingSet}, {variant: evaluation metrics}).
    """
    from .experiment import evaluate_variant, gap_vector, generator_input, train_variant

    label = exp.test.label
    image = exp.anchors_test.numpy()
    sets = {UNTRAINED: EmbeddingSet(untrained_embeddings(exp, seed).numpy(), image, label)}
    evals = {}
    if generator:
        evals[UNTRAINED] = _judge_embeddings(exp, torch.as_tensor(sets[UNTRAINED].audio), generator, steps)
    for loss in losses:
        v = train_variant(exp, loss, pairing, epochs)
        sets[loss] = EmbeddingSet(generator_input(exp, v).numpy(), image, label)
        if generator:
            evals[loss] = evaluate_variant(exp, v, generator, steps=steps, with_oracle=False)[0]
        if loss in close_gap:
            shifted = generator_input(exp, v) + gap_vector(exp, v)
            sets[loss + SHIFTED] = EmbeddingSet(shifted.numpy(), image, label)
            if generator:
                evals[loss + SHIFTED] = _judge_embeddings(exp, shifted, generator, steps)
    return sets, evals


def quick_embeddings(n_train: int = 600, epochs: int = 2, losses=("infonce_l2", "infonce_cosine"), seed: int = 0,
                     n_test: int = 240) -> dict[str, EmbeddingSet]:  # fmt: skip
    """A reduced :func:`collect_embeddings` for a notebook with no saved run (under a minute on two idle CPU cores):
    fewer clips, fewer epochs, two losses, no generation."""
    from .experiment import prepare_experiment

    exp = prepare_experiment(n_train, 160, n_test, seed=seed)
    return collect_embeddings(exp, losses, epochs, seed=seed)[0]


def _judge_embeddings(exp, emb: torch.Tensor, generator: str, steps: int) -> dict:
    """Judged accuracy of pictures drawn from arbitrary embeddings (as evaluate_variant does for a trained one)."""
    from .metrics import judged_scores
    from .registry import load_generator, load_judge

    kw = {"steps": steps} if generator.endswith("diffusion") else {}
    pictures = load_generator(generator).generate(emb, n=1, seed=exp.seed, **kw)
    j = judged_scores(load_judge(), pictures, exp.test.label)
    return {"gen_top1_accuracy": j["top1_accuracy"], "gen_accuracy": j["accuracy"],
            "_per_clip": {"gen_top1_accuracy": j["_per_clip"]["top1_accuracy"], "gen_accuracy": j["_per_clip"]["accuracy"]}}  # fmt: skip


def gap_summary(table: dict[str, dict], reference: str = "infonce_l2", other: str = "infonce_cosine") -> dict:
    """What the table says: the gap after / before training with the paper's loss, whether it closes the gap more
    than cosine InfoNCE (on the raw embeddings the generator sees, and on Liang et al.'s normalised ones; with
    several seeds "more" means the intervals do not overlap), and what closing the gap does to the pictures.
    Figures may be plain numbers (one seed) or interval dicts (``s2v_lib.stats``)."""
    from . import stats

    mean = stats.mean_of
    out = {}
    before = table.get(UNTRAINED)
    if before and reference in table:
        for key, suffix in (("gap_centroid", ""), ("gap_centroid_normalized", "_normalized")):
            out[f"gap_ratio_after_before{suffix}"] = mean(table[reference][key]) / max(mean(before[key]), 1e-12)
    judged = [r for r in table.values() if "gen_top1_accuracy" in r]
    if len(judged) >= 3:
        for key in ("gap_centroid", "gap_centroid_normalized"):
            out[f"spearman_{key}_vs_gen_top1_accuracy"] = rank_correlation(
                [mean(r[key]) for r in judged], [mean(r["gen_top1_accuracy"]) for r in judged])  # fmt: skip
    shifted = table.get(reference + SHIFTED, {})
    if "gen_top1_accuracy" in shifted and "gen_top1_accuracy" in table.get(reference, {}):
        raw_acc, shifted_acc = table[reference]["gen_top1_accuracy"], shifted["gen_top1_accuracy"]
        out["gen_top1_accuracy_raw_and_shifted"] = [raw_acc, shifted_acc]
        out["closing_gap_statement"] = stats.compare(shifted_acc, raw_acc, names=("the gap-shifted embedding",
                                                                                  "the raw embedding"))  # fmt: skip
    if reference in table and other in table:
        r, o = table[reference], table[other]
        parts = []
        for key, where in (("gap_centroid", "raw embeddings the generator sees"),
                           ("gap_centroid_normalized", "L2-normalised embeddings")):  # fmt: skip
            verdict = stats.compare(r[key], o[key], higher_is_better=False, names=("InfoNCE-L2", "cosine InfoNCE"))
            out[f"l2_vs_cosine_{key}"] = verdict
            parts.append(f"{where}: {verdict} at closing the gap (InfoNCE-L2 {stats.fmt(r[key])}, cosine InfoNCE "
                         f"{stats.fmt(o[key])})")  # fmt: skip
        out["statement"] = "; ".join(parts)
    return out


def rank_correlation(x, y) -> float:
    """Spearman's rank correlation (ties get their mean rank): :func:`s2v_lib.metrics.spearman`."""
    from .metrics import spearman

    return spearman(x, y)


def run_geometry(out: str | Path, force: bool = False, config: GeometryConfig | None = None) -> dict:
    """``s2v geometry``: embeddings, gap measures, UMAP pictures and gap-vs-accuracy scatter, written to ``out``; with
    several seeds every figure is a mean with a 95% interval (the embeddings and pictures are the first seed's)."""
    from . import stats, viz
    from .config import profile, setup_torch
    from .demo import prepare_out
    from .experiment import TUNING_SEED, prepare_experiment
    from .toyworld import CATEGORY_NAMES

    cfg = config or GeometryConfig()
    t0 = time.time()
    setup_torch()
    if profile() == "full":
        raise NotImplementedError(
            "`s2v geometry` trains on the toy world only. For the full profile, save your held-out embeddings with "
            "s2v_lib.geometry.save_embeddings and open notebook 06 on that file (or call gap_table on them)."
        )
    if TUNING_SEED in cfg.seeds:
        raise ValueError(f"seed {TUNING_SEED} is the tuning seed: report other seeds")
    out = prepare_out(out, force)
    first: dict = {}
    keep = ("gen_top1_accuracy", "gen_accuracy", "same_category_at_1", "r_at_1", "train_seconds")

    def one(seed: int) -> dict:
        exp = prepare_experiment(cfg.n_train, cfg.n_val, cfg.n_test, seed=seed)
        sets, evals = collect_embeddings(exp, cfg.losses, cfg.epochs, cfg.pairing, seed, cfg.generator,
                                         cfg.sampling_steps)  # fmt: skip
        if not first:
            first.update(sets=sets, seconds=time.time() - t0)
            save_embeddings(out / "embeddings.npz", sets, CATEGORY_NAMES)
        table = gap_table(sets, seed=seed)
        variants = {}
        for k, row in table.items():
            ev = evals.get(k, {})
            variants[k] = {**row, **{m: ev[m] for m in keep if m in ev},
                           "_per_clip": {m: v for m, v in ev.get("_per_clip", {}).items() if m in keep}}  # fmt: skip
        return {"variants": variants}

    merged, runs, excluded = stats.over_seeds(one, cfg.seeds, desc="geometry seeds")
    variants = merged["variants"]
    maps = umap_maps(first["sets"], seed=cfg.seeds[0])
    viz.embedding_maps({k: maps[k] for k in BEFORE_AFTER if k in maps}, out / "umap_before_after.png", titles=TITLES)
    viz.embedding_maps(maps, out / "umap_variants.png", ncols=4)
    viz.gap_vs_accuracy({k: stats.public({m: stats.mean_of(x) if isinstance(x, (int, float, dict)) else x
                                          for m, x in v.items()}) for k, v in variants.items()},
                        out / "gap_vs_accuracy.png")  # fmt: skip
    metrics = {
        "variants": variants,
        **gap_summary(variants),
        "gap_definition": GAP_DEFINITION,
        "seeds": [s for s in cfg.seeds if s not in excluded], "excluded_seeds": excluded, "tuning_seed": TUNING_SEED,
        "interval": stats.INTERVAL_DEFINITION if len(runs) > 1 else "one seed: no interval",
        "command": f"s2v geometry --seeds {len(cfg.seeds)}",
        "seconds_embeddings": first["seconds"],
        "seconds": time.time() - t0,
        "config": asdict(cfg),
    }  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def summary(m: dict) -> str:
    from .stats import fmt, mean_of

    lines = [f"{'variant':<24}{'gap':>16}{'gap(norm)':>16}{'probe':>8}{'cos pair':>10}{'top-1':>16}"]
    for name, r in m["variants"].items():
        acc = fmt(r["gen_top1_accuracy"]) if "gen_top1_accuracy" in r else "-"
        lines.append(f"{name:<24}{fmt(r['gap_centroid']):>16}{fmt(r['gap_centroid_normalized']):>16}"
                     f"{mean_of(r['probe_accuracy']):8.3f}{mean_of(r['paired_cosine']):10.3f}{acc:>16}")  # fmt: skip
    if "gap_ratio_after_before" in m:
        lines.append(f"InfoNCE-L2 gap after / before training: {m['gap_ratio_after_before']:.3f} (raw), "
                     f"{m['gap_ratio_after_before_normalized']:.3f} (normalised)")  # fmt: skip
    if "statement" in m:
        lines.append(m["statement"])
    if "gen_top1_accuracy_raw_and_shifted" in m:
        b, a = m["gen_top1_accuracy_raw_and_shifted"]
        lines.append(f"InfoNCE-L2 judged top-1 accuracy {fmt(b)} -> {fmt(a)} after closing its gap with the validation "
                     f"gap vector: {m['closing_gap_statement']}")  # fmt: skip
    lines.append(f"seeds {m.get('seeds')}; wall time {m['seconds']:.0f} s")
    return "\n".join(lines)
