"""``s2v ablate``: the paper's choices, each one a row of one table, all from one run on the same clips and seeds.

Rows (paper guide "Ablations"):

* the loss: InfoNCE over negative L2 un-normalised [Sound2Vision], its L2-normalised variant [Sound2Scene], cosine
  InfoNCE, MSE, L1 - all trained on SSL top-1 frames and drawn by the diffusion generator;
* the frame each clip is paired with: SSL top-1 (the row above), the middle frame, a random frame;
* the generator: the Sound2Vision encoder's embeddings, unchanged, drawn by the GAN instead of the diffusion model;
* the oracles: each generator fed the true frame's image embedding (the ceiling for an audio encoder), and real
  frames of other held-out clips (the floor of the distribution metrics at this sample size).

Columns: judged category accuracy and attribute errors, retrieval R@k of the generated pictures against the true
frames in the image-encoder space (the authors used CLIP ViT-B/32), Frechet distance in the toy encoder space, FID
with a real Inception network, an Inception-Score-style figure read by the judge, and diversity (see ``metrics``).
"""

from __future__ import annotations

import csv
import json
import resource
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import viz
from .config import setup_torch
from .data import ToyDataset, take_frames, truth_frame
from .experiment import Experiment, Variant, generator_input, prepare_experiment, train_variant
from .metrics import (
    FrechetScorer,
    InceptionFeatures,
    ToyEncoderFeatures,
    attribute_errors,
    diversity,
    judge_inception_score,
    judged_scores,
    retrieval_recall,
)
from .progress import progress
from .registry import load_generator, load_image_encoder, load_judge

S2V = ("infonce_l2", "top1")  # the Sound2Vision recipe: loss, frame pairing


@dataclass(frozen=True)
class Row:
    name: str
    loss: str | None = None  # None: an oracle row (no audio encoder)
    pairing: str | None = None
    generator: str = "toy-diffusion"
    source: str = "audio"  # "audio", "oracle" (true frame's embedding) or "real" (real frames, no generator)


ROWS = (
    Row("Sound2Vision (InfoNCE-L2)", *S2V),
    Row("Sound2Scene (InfoNCE-L2 normalised)", "infonce_l2_normalized", "top1"),
    Row("cosine InfoNCE", "infonce_cosine", "top1"),
    Row("MSE", "mse", "top1"),
    Row("L1", "l1", "top1"),
    Row("middle frame", "infonce_l2", "middle"),
    Row("random frame", "infonce_l2", "random"),
    Row("GAN generator", *S2V, generator="toy-gan"),
    Row("oracle, diffusion", generator="toy-diffusion", source="oracle"),
    Row("oracle, GAN", generator="toy-gan", source="oracle"),
    Row("real frames (other clips)", generator="", source="real"),
)

COLUMNS = {  # metrics.json key -> table header
    "gen_accuracy": "accuracy",
    "gen_top1_accuracy": "top-1",
    "size_mae": "size err (px)",
    "shade_mae": "shade err",
    "gen_r_at_1": "R@1",
    "gen_r_at_5": "R@5",
    "gen_r_at_10": "R@10",
    "frechet_toy": "FD toy",
    "fid_inception": "FID",
    "judge_is": "IS (judge)",
    "diversity": "diversity",
}


@dataclass
class AblationConfig:
    n_train: int = 4000  # as `s2v demo`: its numbers are the first row's
    n_val: int = 160
    n_test: int = 240
    epochs: int = 3
    n_diversity: int = 40  # held-out sounds drawn a second time (other noise) for the diversity column
    sampling_steps: int = 10
    n_fid: int = 64  # held-out sounds whose picture enters the Inception FID (0: skip the Inception network)
    seed: int = 0
    rows: tuple[str, ...] = tuple(r.name for r in ROWS)


def picture_metrics(pictures: np.ndarray, clips: ToyDataset, anchors: torch.Tensor, judge, encoder,
                    frechet: dict[str, FrechetScorer] | None = None) -> dict[str, float]:  # fmt: skip
    """Every column for pictures [B, n, H, W, 3] drawn for the sounds of ``clips`` (B held-out clips), whose true
    frames have image embeddings ``anchors`` [B, D]. ``frechet``: Frechet scorers by column name, each holding its
    reference set (default: the toy encoder's, against the clips' true frames); a scorer gets as many sounds' first
    pictures as its reference has pictures (the Inception network is slow on a CPU, so its set is smaller)."""
    b, n = pictures.shape[:2]
    t = truth_frame(clips)
    target = clips.targets[np.arange(b), t]  # [B, 4, C]: presence, size, shade, count per category
    cats = clips.label
    if frechet is None:
        frechet = {"frechet_toy": FrechetScorer(take_frames(clips, t), ToyEncoderFeatures(encoder))}
    judged = judged_scores(judge, pictures, cats)
    emb = encoder.encode(pictures.reshape(-1, *pictures.shape[2:])).view(b, n, -1)
    recall = [retrieval_recall(emb[:, i], anchors) for i in range(n)]
    m = {
        "gen_accuracy": judged["accuracy"],
        "gen_top1_accuracy": judged["top1_accuracy"],
        "gen_extra": judged["extra"],
        **attribute_errors(judge, pictures, cats, target[np.arange(b), 1, cats], target[np.arange(b), 2, cats]),
        **{f"gen_{k}": float(np.mean([r[k] for r in recall])) for k in recall[0]},
        **{k: scorer(pictures[: scorer.n_reference, 0]) for k, scorer in frechet.items()},
        "judge_is": judge_inception_score(judge, pictures),
    }
    if n >= 2:
        m["diversity"] = diversity(emb)
    return m


def run_ablation(out: str | Path, config: AblationConfig | None = None, force: bool = False) -> dict:
    from .demo import prepare_out

    cfg = config or AblationConfig()
    t0 = time.time()
    setup_torch()
    out = prepare_out(out, force)
    rows = [r for r in ROWS if r.name in cfg.rows]
    unknown = set(cfg.rows) - {r.name for r in ROWS}
    if unknown:
        raise ValueError(f"unknown ablation rows {sorted(unknown)}; known: {[r.name for r in ROWS]}")

    exp = prepare_experiment(cfg.n_train, cfg.n_val, cfg.n_test, seed=cfg.seed,
                             ssl_select=any(r.pairing == "top1" for r in rows))  # fmt: skip
    judge, encoder = load_judge(), load_image_encoder("toy")
    reference = exp.test_frames
    frechet = {"frechet_toy": FrechetScorer(reference, ToyEncoderFeatures(encoder))}
    if cfg.n_fid:
        frechet["fid_inception"] = FrechetScorer(reference[: cfg.n_fid], InceptionFeatures())
    variants: dict[tuple[str, str], Variant] = {}
    results, pictures = {}, {}
    for row in progress(rows, desc="ablation rows", unit="row"):
        r0 = time.time()
        m = {"loss": row.loss, "pairing": row.pairing, "generator": row.generator, "source": row.source}
        if row.source == "real":  # real frames of other held-out clips (the validation clips): the floor of the
            # distribution metrics at this sample size, and the judge's score on real pictures (their own labels)
            m.update(picture_metrics(take_frames(exp.val, truth_frame(exp.val))[:, None], exp.val, exp.anchors_val,
                                     judge, encoder, frechet))  # fmt: skip
            for k in [k for k in m if k.startswith("gen_r_at_")]:  # a frame retrieving itself: trivially 1
                del m[k]
            results[row.name] = {**m, "row_seconds": time.time() - r0}
            continue
        kw = {"steps": cfg.sampling_steps} if row.generator.endswith("diffusion") else {}
        if row.source == "oracle":
            embeds = exp.anchors_test
        else:
            key = (row.loss, row.pairing)
            if key not in variants:
                variants[key] = train_variant(exp, row.loss, row.pairing, cfg.epochs, desc=f"audio encoder: {row.name}")
            v = variants[key]
            embeds = generator_input(exp, v)
            m.update(retrieval_recall(v.test_embeddings, exp.anchors_test), train_seconds=v.history.seconds,
                     final_val_loss=v.history.val_loss[-1])  # fmt: skip
        generator = load_generator(row.generator)
        pics = generator.generate(embeds, n=1, seed=cfg.seed, **kw)  # as `s2v demo`: one picture per sound
        if cfg.n_diversity:
            again = generator.generate(embeds[: cfg.n_diversity], n=1, seed=cfg.seed + 1, **kw)
            both = np.concatenate([pics[: cfg.n_diversity], again], 1)
            m["diversity"] = diversity(encoder.encode(both.reshape(-1, *both.shape[2:])).view(len(both), 2, -1))
        m.update(picture_metrics(pics, exp.test, exp.anchors_test, judge, encoder, frechet))
        m["row_seconds"] = time.time() - r0
        results[row.name], pictures[row.name] = m, pics
    metrics = {
        "rows": results,
        "checks": _checks(results),
        "seconds": time.time() - t0,
        "peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "config": asdict(cfg),
        "ssl_selection": exp.ssl_counts,
    }
    write_tables(results, out)
    _figures(exp, pictures, results, out)
    np.savez_compressed(out / "pictures.npz", labels=exp.test.label, **{_key(k): p[:, 0] for k, p in pictures.items()})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    return metrics


def load_results(path: str | Path) -> dict:
    """A finished run's ``metrics.json`` (with its ``path``), e.g. ``runs/ablate`` or the shipped
    ``data/results/ablate``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no ablation results here; run `s2v ablate --out {path.parent}` (~15 min)")
    return {**json.loads(path.read_text()), "path": str(path)}


def _key(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def _checks(results: dict) -> dict:
    """The issue's claims, as booleans next to the numbers they come from."""
    checks = {}
    s2v = results.get(ROWS[0].name)
    for other in ("MSE", "L1"):
        if s2v and other in results:
            for k in ("gen_accuracy", "gen_r_at_1"):
                checks[f"sound2vision_beats_{other.lower()}_{k}"] = bool(s2v[k] > results[other][k])
    for name in ("Sound2Vision (InfoNCE-L2)", "GAN generator"):
        if name in results:
            checks[f"{_key(name)}_gen_accuracy_at_least_0.8"] = bool(results[name]["gen_accuracy"] >= 0.8)
    return checks


def write_tables(results: dict, out: Path) -> None:
    """``ablation.csv`` (every metric) and ``ablation.md`` (the main columns, for people)."""
    keys = sorted({k for m in results.values() for k in m if isinstance(m[k], (int, float)) or m[k] is None})
    with open(out / "ablation.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", *keys])
        for name, m in results.items():
            w.writerow([name, *[m.get(k, "") for k in keys]])
    (out / "ablation.md").write_text(markdown_table(results) + "\n")


def markdown_table(results: dict) -> str:
    cols = [k for k in COLUMNS if any(k in m for m in results.values())]
    lines = ["| row | " + " | ".join(COLUMNS[k] for k in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in results.items():
        cells = [_fmt(m.get(k)) for k in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def _figures(exp: Experiment, pictures: dict, results: dict, out: Path) -> None:
    from .toyworld import CATEGORY_NAMES

    test = exp.test
    cols = [int(np.flatnonzero(test.label == c)[0]) for c in range(len(CATEGORY_NAMES)) if (test.label == c).any()]
    grid = np.stack([exp.test_frames[cols], *[p[cols, 0] for p in pictures.values()]])
    labels = ["true frame", *(textwrap.fill(name, 14) for name in pictures)]
    viz.image_grid(grid, labels, [CATEGORY_NAMES[test.label[c]] for c in cols],
                   out / "ablation_grid.png", title="one held-out sound per category, per ablation row")  # fmt: skip
    viz.ablation_bars(results, out / "ablation_bars.png")


def summary(m: dict) -> str:
    return (
        markdown_table(m["rows"])
        + f"\n\nchecks: {m['checks']}\nwall time {m['seconds']:.0f} s, peak memory {m['peak_memory_gb']:.2f} GB"
    )
