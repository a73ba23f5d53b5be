"""``s2v limits``: which stage loses an object's size and shade on the way from a frame to a generated picture?

The ablation's true-frame row (the generator fed the true frame's image embedding) reads sizes no better than a
constant guess. Three stages could be at fault; each is measured on held-out toy clips against their ground truth:

1. the judge: its reading of the *real* frames (can the yardstick read the attribute at all?);
2. the frozen image encoder: a ridge regression from the frame's image embedding to the true attribute (fitted on
   the training clips, scored on the held-out ones): how much of it the embedding keeps, linearly;
3. the frozen generator: the judge's reading of the pictures drawn from the true frames' embeddings, with how the
   drawn attribute follows the true one (Spearman, slope and mean bias of drawn against true).

Attribute errors are taken where the judge finds the sound's category (as ``s2v ablate`` does), beside the constant
guess (the training clips' median) on the same pictures. Nothing is trained or tuned here; ground truth only measures.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

STAGES = ("judge_on_real_frames", "image_embedding_probe", "generator_from_true_frame")


@dataclass
class LimitsConfig:
    n_train: int = 2000  # clips the linear probe is fitted on
    n_test: int = 240  # held-out clips (as the ablation's test split)
    n_draws: int = 2  # pictures per held-out clip
    steps: int = 10  # generator steps (as the ablation)
    ridge: float = 1e-2
    seeds: tuple[int, ...] = (1,)


def ridge_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, lam: float) -> np.ndarray:
    """Linear (ridge) regression with a bias, fitted on (x_train, y_train), predicted on x_test."""
    xt = np.c_[x_train, np.ones(len(x_train))]
    w = np.linalg.solve(xt.T @ xt + lam * np.eye(xt.shape[1]), xt.T @ y_train)
    return np.c_[x_test, np.ones(len(x_test))] @ w


def measure_seed(cfg: LimitsConfig, seed: int) -> dict:
    """The three stages' errors for one toy-world seed (``_per_clip`` holds per-clip errors for the intervals)."""
    from .ablation import constant_guess
    from .data import build_toy_dataset, take_frames, truth_frame
    from .metrics import attribute_scores
    from .registry import load_generator, load_image_encoder, load_judge
    from .toyworld import loudness_to_size, pitch_to_shade

    train, test = build_toy_dataset(cfg.n_train + cfg.n_test, seed=seed, workers=2).split(cfg.n_test)
    judge, encoder = load_judge(), load_image_encoder("toy")
    guess = constant_guess(train)
    true = {"size": (loudness_to_size(train.loudness_db), loudness_to_size(test.loudness_db)),
            "shade": (pitch_to_shade(train.pitch), pitch_to_shade(test.pitch))}  # fmt: skip
    frames_test = take_frames(test, truth_frame(test))
    emb_train = encoder.encode(take_frames(train, truth_frame(train))).numpy()
    emb_test = encoder.encode(frames_test).numpy()
    real = attribute_scores(judge, frames_test[:, None], test.label, true["size"][1], true["shade"][1], guess)
    pictures = load_generator("toy-diffusion").generate(torch.as_tensor(emb_test), n=cfg.n_draws, seed=seed,
                                                        steps=cfg.steps)  # fmt: skip
    drawn = attribute_scores(judge, pictures, test.label, true["size"][1], true["shade"][1], guess)
    found = drawn["_per_picture"]["found"]  # an attribute counts where the judge finds the object
    rows, cols = np.nonzero(found)
    out, per_clip = {"drawn_found_rate": drawn["found_rate"]}, {}
    for name in ("size", "shade"):
        y_train, y_test = true[name]
        drawn_read = drawn["_per_picture"][name]  # [clips, draws]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bias = np.nanmean(np.where(found, drawn_read - y_test[:, None], np.nan), 1)
        figures = {
            "constant_guess": np.abs(guess[name] - y_test),
            "judge_on_real_frames": real["_per_clip"][f"{name}_mae"],
            "image_embedding_probe": np.abs(ridge_probe(emb_train, y_train, emb_test, cfg.ridge) - y_test),
            "generator_from_true_frame": drawn["_per_clip"][f"{name}_mae"],
            "generator_constant_guess": drawn["_per_clip"][f"{name}_mae_constant"],
            "generator_bias": bias,
        }
        for key, values in figures.items():
            per_clip[f"{name}_{key}"] = np.asarray(values, dtype=np.float64)
            out[f"{name}_{key}"] = float(np.nanmean(per_clip[f"{name}_{key}"]))
        out[f"{name}_generator_spearman"] = drawn[f"{name}_spearman"]
        out[f"{name}_generator_slope"] = float(np.polyfit(y_test[rows], drawn_read[rows, cols], 1)[0])
    out["_per_clip"] = per_clip
    return out


def run_limits(out: str | Path, config: LimitsConfig | None = None, force: bool = False) -> dict:
    """Measure every seed, write ``metrics.json`` (with several seeds: means with 95% intervals) and a bar chart."""
    import json

    from . import stats
    from .config import setup_torch
    from .demo import prepare_out
    from .experiment import TUNING_SEED

    cfg = config or LimitsConfig()
    if TUNING_SEED in cfg.seeds:
        raise ValueError(f"seed {TUNING_SEED} is the tuning seed (the settings were chosen on it): report other seeds")
    t0 = time.time()
    setup_torch()
    out = prepare_out(out, force)
    merged, _, excluded = stats.over_seeds(lambda s: measure_seed(cfg, s), cfg.seeds, desc="limits")
    m = {"command": f"s2v limits --seeds {len(cfg.seeds)}", "seeds": list(cfg.seeds), "tuning_seed": TUNING_SEED,
         "interval": stats.INTERVAL_DEFINITION, "config": {k: v for k, v in vars(cfg).items() if k != "seeds"},
         **merged, "excluded_seeds": excluded, "seconds": time.time() - t0}  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(m, indent=2))
    _figure(m, out)
    return m


def _figure(m: dict, out: Path) -> None:
    import matplotlib.pyplot as plt

    from . import stats

    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    names = ["constant_guess", *STAGES]
    labels = ["constant\nguess", "judge on\nreal frames", "linear probe\nof embedding", "judge on pictures\nfrom true frame"]
    for ax, attr in zip(axes, ("size", "shade")):
        means = [stats.mean_of(m[f"{attr}_{n}"]) for n in names]
        err = np.array([[mu - lo, hi - mu] for mu, (lo, hi) in zip(means, (stats.bounds(m[f"{attr}_{n}"]) for n in names))]).T
        ax.bar(range(len(names)), means, yerr=err if np.isfinite(err).all() else None, color=["0.6", "C0", "C1", "C3"])
        ax.set_xticks(range(len(names)), labels, fontsize=7)
        ax.set_title(f"{attr}: mean absolute error (lower is better)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "limits.png", dpi=110)
    plt.close(fig)


def summary(m: dict) -> str:
    from . import stats

    lines = []
    for attr in ("size", "shade"):
        parts = [f"{label} {stats.fmt(m[f'{attr}_{key}'])}" for key, label in
                 (("constant_guess", "constant guess"), ("judge_on_real_frames", "judge on real frames"),
                  ("image_embedding_probe", "linear probe of the image embedding"),
                  ("generator_from_true_frame", "judge on pictures drawn from the true frame"))]  # fmt: skip
        lines.append(f"{attr} error: " + " | ".join(parts))
        lines.append(f"  drawn vs true {attr}: Spearman {stats.fmt(m[f'{attr}_generator_spearman'], 2)}, slope "
                     f"{stats.fmt(m[f'{attr}_generator_slope'], 2)}, mean bias (drawn - true) {stats.fmt(m[f'{attr}_generator_bias'])}")  # fmt: skip
    lines.append(f"seeds {m['seeds']}; wall time {m['seconds']:.0f} s")
    return "\n".join(lines)
