"""``s2v ablate``: the paper's choices, each one a row of one table, every row on the same clips and seeds, with
reference rows that say what a number means (paper guide "Analysis and evaluation").

Rows (each has a stable ``id``; its ``loss``, ``pairing``, ``generator`` and ``source`` say what it is):

* the paper's recipe, ``sound2vision``: InfoNCE over negative L2 distances of raw embeddings, SSL top-1 frames, the
  diffusion generator fed the audio embedding as it is;
* beyond the paper: the same encoder's embeddings moved by the validation gap vector (``gap_shift``) or through a
  prior fitted on the training pairs (``prior_affine``, ``prior_retrieval``, ``prior_diffusion``; ``s2v_lib.prior``);
* the loss: Sound2Scene's normalised InfoNCE-L2, cosine InfoNCE at the authors' scale 1 and at the CLIP-style
  temperature 0.1, MSE, L1 (all on SSL top-1 frames);
* the frame each clip is paired with: the middle frame, a random frame;
* the generator: the Sound2Vision embeddings drawn by the GAN instead;
* **reference rows**: ``null_shuffled`` (each sound replaced by another held-out clip's embedding: what a picture
  scores when it has nothing to do with the sound), ``null_mean`` (one mean audio embedding for every sound),
  ``prototype`` (the mean image embedding of the sound's category over the training pairs: a perfect category-only
  encoder, which needs labels and is a reference, not a method), ``true_frame`` / ``true_frame_gan`` (the generator fed
  the held-out clip's true frame's embedding: what the generator makes of a perfect instance embedding; other rows
  can beat it, it is not a ceiling) and ``real_frames`` (real frames of other clips, no generator: the level of the
  distribution metrics at this sample size).

Columns: the judge's top-1 accuracy (headline) and lenient accuracy; size and shade errors only where the judge finds
the sound's category, beside a constant guess and with Spearman's correlation to the sound's truth; retrieval R@k of
the generated pictures among the true frames in the toy encoder's space *and* in the judge's feature space (which
the audio encoder was never trained into); Frechet distances in both spaces (and optionally with the real Inception
network); the judge's Inception-Score-style figure; diversity (mean distance between two pictures of one sound).
With ``--seeds N`` every figure is a mean with a 95% interval over seeds and clips (``s2v_lib.stats``).
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

from . import stats, viz
from .config import setup_torch
from .data import ToyDataset, take_frames, truth_frame
from .experiment import (
    TUNING_SEED,
    Experiment,
    Variant,
    gap_vector,
    generator_input,
    prepare_experiment,
    train_variant,
)
from .metrics import (
    FrechetScorer,
    InceptionFeatures,
    JudgeFeatures,
    ToyEncoderFeatures,
    attribute_scores,
    diversity,
    judge_inception_score,
    judged_scores,
    retrieval_ranks,
)
from .progress import progress
from .registry import load_generator, load_image_encoder, load_judge

S2V = ("infonce_l2", "top1")  # the Sound2Vision recipe: loss, frame pairing
SOURCES = ("audio", "gap_shift", "prior", "null_shuffled", "null_mean", "prototype", "true_frame", "real")


@dataclass(frozen=True)
class Row:
    id: str
    name: str
    loss: str | None = None  # None: no audio encoder (prototype, true frame, real frames)
    pairing: str | None = None
    generator: str = "toy-diffusion"
    source: str = "audio"  # what the generator is fed; see SOURCES and the module docstring
    prior: str | None = None


ROWS = (
    Row("sound2vision", "Sound2Vision (InfoNCE-L2)", *S2V),
    Row("gap_shift", "+ gap vector (validation, SSL frames)", *S2V, source="gap_shift"),
    Row("prior_affine", "+ affine prior", *S2V, source="prior", prior="affine"),
    Row("prior_retrieval", "+ retrieval prior", *S2V, source="prior", prior="retrieval"),
    Row("prior_diffusion", "+ diffusion prior", *S2V, source="prior", prior="diffusion"),
    Row("sound2scene", "Sound2Scene (InfoNCE-L2 normalised)", "infonce_l2_normalized", "top1"),
    Row("infonce_cosine", "cosine InfoNCE (scale 1, the authors')", "infonce_cosine", "top1"),
    Row("infonce_cosine_tau0.1", "cosine InfoNCE (temperature 0.1)", "infonce_cosine_tau0.1", "top1"),
    Row("mse", "MSE", "mse", "top1"),
    Row("l1", "L1", "l1", "top1"),
    Row("pairing_middle", "middle frame", "infonce_l2", "middle"),
    Row("pairing_random", "random frame", "infonce_l2", "random"),
    Row("generator_gan", "GAN generator", *S2V, generator="toy-gan"),
    Row("null_shuffled", "null: another clip's sound", *S2V, source="null_shuffled"),
    Row("null_mean", "null: one mean embedding", *S2V, source="null_mean"),
    Row("prototype", "category prototype (labels)", source="prototype"),
    Row("true_frame", "true frame's embedding", source="true_frame"),
    Row("true_frame_gan", "true frame's embedding (GAN)", generator="toy-gan", source="true_frame"),
    Row("real_frames", "real frames (other clips)", generator="", source="real"),
)
ROW_IDS = tuple(r.id for r in ROWS)

COLUMNS = {  # metrics.json key -> table header (the main columns; ablation.csv has every figure)
    "gen_top1_accuracy": "top-1",
    "gen_accuracy": "lenient",
    "size_mae": "size err (px)",
    "size_spearman": "size rho",
    "shade_mae": "shade err",
    "shade_spearman": "shade rho",
    "gen_r_at_5": "R@5 toy",
    "gen_r_at_5_judge": "R@5 judge",
    "frechet_toy": "FD toy",
    "frechet_judge": "FD judge",
    "fid_inception": "FID",
    "judge_is": "IS (judge)",
    "diversity": "diversity",
}


DEFAULT_ROWS = tuple(r for r in ROW_IDS if r != "pairing_random")  # the random frame: `--rows` adds it (15 min budget)


@dataclass
class AblationConfig:
    n_train: int = 4000  # as `s2v demo`: its numbers are the first row's
    n_val: int = 160
    n_test: int = 240
    epochs: int = 2  # as `s2v demo` (chosen on tuning seed 0: scripts/tune_settings.py)
    n_diversity: int = 32  # held-out sounds drawn a second time (other noise) for the diversity column
    sampling_steps: int = 10
    n_fid: int = 0  # held-out sounds in the Inception FID (0: skip the Inception network: slow on a CPU)
    seeds: tuple[int, ...] = (1,)
    tuning_seed: int = TUNING_SEED
    rows: tuple[str, ...] = DEFAULT_ROWS


def constant_guess(clips: ToyDataset) -> dict[str, float]:
    """The constant-guess baseline of the attribute columns: the median size and shade of the sounding objects of
    (training) clips, which a picture that ignores loudness and pitch would get right on average."""
    from .toyworld import loudness_to_size, pitch_to_shade

    return {"size": float(np.median(loudness_to_size(clips.loudness_db))),
            "shade": float(np.median(pitch_to_shade(clips.pitch)))}  # fmt: skip


class Yardsticks:
    """Everything pictures are scored with: the judge, the toy encoder, the judge's features, the Frechet scorers
    with their reference set (held-out clips' true frames), their features per space, and the constant guess of
    the attribute columns (from ``train`` clips). ``Yardsticks.for_experiment(exp)`` builds the ablation's."""

    def __init__(self, reference_frames: np.ndarray, train: ToyDataset, anchors: torch.Tensor | None = None,
                 n_fid: int = 0):  # fmt: skip
        self.judge, self.encoder = load_judge(), load_image_encoder("toy")
        self.judge_features = JudgeFeatures(self.judge)
        toy = self.encoder.encode(reference_frames) if anchors is None else anchors
        self.anchors = {"toy": toy, "judge": self.judge_features.encode(reference_frames)}
        self.frechet = {"frechet_toy": FrechetScorer(reference_frames, ToyEncoderFeatures(self.encoder)),
                        "frechet_judge": FrechetScorer(reference_frames, self.judge_features)}  # fmt: skip
        if n_fid:
            self.frechet["fid_inception"] = FrechetScorer(reference_frames[:n_fid], InceptionFeatures())
        self.guess = constant_guess(train)

    @classmethod
    def for_experiment(cls, exp: Experiment, n_fid: int = 0) -> Yardsticks:
        return cls(exp.test_frames, exp.train, exp.anchors_test, n_fid)

    def embed(self, pictures: np.ndarray, space: str) -> torch.Tensor:
        flat = pictures.reshape(-1, *pictures.shape[-3:])
        e = self.encoder.encode(flat) if space == "toy" else self.judge_features.encode(flat)
        return e.view(*pictures.shape[:2], -1)


def picture_metrics(pictures: np.ndarray, clips: ToyDataset, ys: Yardsticks, anchors: dict | None = None,
                    retrieval: bool = True) -> dict:  # fmt: skip
    """Every column for pictures [B, n, H, W, 3] drawn for the B sounds of ``clips`` (their true frames' features are
    ``anchors`` per space, default the test clips'). ``_per_clip`` holds per-sound values for intervals."""
    from .toyworld import loudness_to_size, pitch_to_shade

    b, n = pictures.shape[:2]
    anchors = anchors or ys.anchors
    cats = clips.label
    judged = judged_scores(ys.judge, pictures, cats)
    attrs = attribute_scores(ys.judge, pictures, cats, loudness_to_size(clips.loudness_db), pitch_to_shade(clips.pitch),
                             ys.guess)  # fmt: skip
    m = {"gen_top1_accuracy": judged["top1_accuracy"], "gen_accuracy": judged["accuracy"], "gen_extra": judged["extra"],
         **{k: v for k, v in attrs.items() if not k.startswith("_")}}  # fmt: skip
    per_clip = {"gen_top1_accuracy": judged["_per_clip"]["top1_accuracy"], "gen_accuracy": judged["_per_clip"]["accuracy"],
                "gen_extra": judged["_per_clip"]["extra"], **attrs["_per_clip"]}  # fmt: skip
    for space in ("toy", "judge"):
        emb = ys.embed(pictures, space)
        suffix = "" if space == "toy" else "_judge"
        if retrieval:
            ranks = np.stack([retrieval_ranks(emb[:, i], anchors[space]) for i in range(n)], 1)  # [B, n]
            for k in (1, 5, 10):
                per_clip[f"gen_r_at_{k}{suffix}"] = (ranks < k).mean(1)
                m[f"gen_r_at_{k}{suffix}"] = float(per_clip[f"gen_r_at_{k}{suffix}"].mean())
        if n >= 2:
            m[f"diversity{suffix}"] = diversity(emb)
    for key, scorer in ys.frechet.items():
        m[key] = scorer(pictures[: scorer.n_reference, 0])
    m["judge_is"] = judge_inception_score(ys.judge, pictures)
    m["_per_clip"] = per_clip
    return m


def shuffled(n: int, seed: int) -> np.ndarray:
    """A permutation of range(n) that moves every element (a derangement): each sound gets another clip's."""
    rng = np.random.default_rng([seed, 17])
    while True:
        p = rng.permutation(n)
        if (p != np.arange(n)).all():
            return p


def category_prototypes(exp: Experiment, pairing: str = "top1") -> torch.Tensor:
    """[C, D]: the mean image embedding of each category over the training pairs (uses the training clips' labels:
    the prototype row is a reference, not a method)."""
    from .toyworld import N_CATEGORIES

    _, anchors = exp.training_pairs(pairing)
    labels = torch.as_tensor(exp.train.label)
    return torch.stack([anchors[labels == c].mean(0) for c in range(N_CATEGORIES)])


def row_inputs(row: Row, exp: Experiment, variants: dict, priors: dict, cfg: AblationConfig, seed: int):
    """What the generator is fed for a row, for the held-out sounds: [B, D] embeddings, or [B, n, D] samples of a
    prior; plus the row's extra figures (audio-side retrieval, training time)."""
    extra = {}
    if row.source == "true_frame":
        return exp.anchors_test, extra
    if row.source == "prototype":
        return category_prototypes(exp)[torch.as_tensor(exp.test.label)], extra
    key = (row.loss, row.pairing)
    if key not in variants:
        variants[key] = train_variant(exp, row.loss, row.pairing, cfg.epochs, desc=f"audio encoder: {row.name}")
    v: Variant = variants[key]
    raw = generator_input(exp, v)
    if row.source == "audio":
        ranks = retrieval_ranks(v.test_embeddings, exp.anchors_test)
        extra = {"r_at_1": float((ranks < 1).mean()), "r_at_5": float((ranks < 5).mean()),
                 "train_seconds": v.history.seconds, "final_val_loss": v.history.val_loss[-1]}  # fmt: skip
        return raw, extra
    if row.source == "gap_shift":
        return raw + gap_vector(exp, v), extra
    if row.source == "null_shuffled":
        return raw[torch.as_tensor(shuffled(len(raw), seed))], extra
    if row.source == "null_mean":
        from .prior import training_pairs

        train_audio, _ = training_pairs(exp, v)
        return train_audio.mean(0, keepdim=True).expand_as(raw).clone(), extra
    if row.source == "prior":
        from .prior import fit_prior_for_variant

        if row.prior not in priors:
            t0 = time.time()
            priors[row.prior] = (fit_prior_for_variant(exp, v, row.prior), time.time() - t0)
        prior, seconds = priors[row.prior]
        return prior, {"prior_fit_seconds": seconds}
    raise ValueError(f"unknown row source {row.source!r}")


def run_one_seed(cfg: AblationConfig, seed: int, rows: list[Row]) -> tuple[dict, dict, Experiment]:
    """Every row on one seed's clips: ({row id: metrics}, {row id: pictures [B, H, W, 3]}, the experiment)."""
    exp = prepare_experiment(cfg.n_train, cfg.n_val, cfg.n_test, seed=seed,
                             ssl_select=any(r.pairing == "top1" for r in rows))  # fmt: skip
    ys = Yardsticks.for_experiment(exp, cfg.n_fid)
    variants, priors, results, pictures = {}, {}, {}, {}
    for row in progress(rows, desc=f"ablation rows (seed {seed})", unit="row"):
        r0 = time.time()
        m = {"name": row.name, "loss": row.loss, "pairing": row.pairing, "generator": row.generator,
             "source": row.source, "prior": row.prior}  # fmt: skip
        if row.source == "real":  # real frames of other held-out clips (the validation clips), judged on their labels
            val_frames = take_frames(exp.val, truth_frame(exp.val))
            anchors = {"toy": exp.anchors_val, "judge": ys.judge_features.encode(val_frames)}
            m.update(picture_metrics(val_frames[:, None], exp.val, ys, anchors, retrieval=False))
            results[row.id] = {**m, "row_seconds": time.time() - r0}
            continue
        inputs, extra = row_inputs(row, exp, variants, priors, cfg, seed)
        if row.source == "prior":
            raw = generator_input(exp, variants[(row.loss, row.pairing)])
            pics = _draw_prior(row, inputs, raw, 1, seed, cfg.sampling_steps)
            again = _draw_prior(row, inputs, raw[: cfg.n_diversity], 1, seed + 1, cfg.sampling_steps) if cfg.n_diversity else None
        else:
            pics = _draw(row, inputs, 1, seed, cfg.sampling_steps)
            again = _draw(row, inputs[: cfg.n_diversity], 1, seed + 1, cfg.sampling_steps) if cfg.n_diversity else None
        m.update(extra)
        m.update(picture_metrics(pics, exp.test, ys))
        if again is not None:  # diversity: a second picture of the first sounds, with other generator noise
            both = np.concatenate([pics[: cfg.n_diversity], again], 1)
            m["diversity"] = diversity(ys.embed(both, "toy"))
            m["diversity_judge"] = diversity(ys.embed(both, "judge"))
        m["row_seconds"] = time.time() - r0
        results[row.id], pictures[row.id] = m, pics[:, 0]
    return results, pictures, exp


def _draw(row: Row, embeds: torch.Tensor, n: int, seed: int, steps: int) -> np.ndarray:
    kw = {"steps": steps} if row.generator.endswith("diffusion") else {}
    return load_generator(row.generator).generate(embeds, n=n, seed=seed, **kw)


def _draw_prior(row: Row, prior_and_seconds, audio: torch.Tensor, n: int, seed: int, steps: int) -> np.ndarray:
    from .prior import generate_with_prior

    kw = {"steps": steps} if row.generator.endswith("diffusion") else {}
    prior = prior_and_seconds[0] if isinstance(prior_and_seconds, tuple) else prior_and_seconds
    return generate_with_prior(load_generator(row.generator), prior, audio, n=n, seed=seed, **kw)


def run_ablation(out: str | Path, config: AblationConfig | None = None, force: bool = False) -> dict:
    from .demo import prepare_out

    cfg = config or AblationConfig()
    t0 = time.time()
    setup_torch()
    unknown = set(cfg.rows) - set(ROW_IDS)
    if unknown:
        raise ValueError(f"unknown ablation rows {sorted(unknown)}; known: {', '.join(ROW_IDS)}")
    if cfg.tuning_seed in cfg.seeds:
        raise ValueError(f"seed {cfg.tuning_seed} is the tuning seed (settings were chosen on it): report other seeds")
    out = prepare_out(out, force)
    rows = [r for r in ROWS if r.id in cfg.rows]
    first = {}

    def one(seed: int) -> dict:
        res, pics, exp = run_one_seed(cfg, seed, rows)
        if not first:
            first.update(pictures=pics, exp=exp)
        return {"rows": res, "ssl_selection": exp.ssl_counts or {}}

    merged, runs, excluded = stats.over_seeds(one, cfg.seeds, desc="ablation seeds")
    metrics = {
        "rows": merged["rows"],
        "row_order": [r.id for r in rows],
        "seeds": [s for s in cfg.seeds if s not in excluded],
        "excluded_seeds": excluded,
        "tuning_seed": cfg.tuning_seed,
        "interval": stats.INTERVAL_DEFINITION if len(runs) > 1 else "one seed: no interval",
        "headline": "gen_top1_accuracy: the judge's most probable category is the sound's",
        "checks": checks(merged["rows"]),
        "ssl_selection": merged["ssl_selection"],
        "seconds": time.time() - t0,
        "peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "command": command_line(cfg),
        "config": asdict(cfg),
        "versions": versions(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")  # first: the figures
    write_tables(metrics, out)
    np.savez_compressed(out / "pictures.npz", labels=first["exp"].test.label, **first["pictures"])
    _figures(first["exp"], first["pictures"], metrics, out)
    return metrics


def command_line(cfg: AblationConfig) -> str:
    parts = ["s2v ablate", f"--seeds {len(cfg.seeds)}"]
    defaults = AblationConfig()
    for flag, key in (("--clips", "n_train"), ("--epochs", "epochs"), ("--diversity", "n_diversity"), ("--fid", "n_fid")):
        if getattr(cfg, key) != getattr(defaults, key):
            parts.append(f"{flag} {getattr(cfg, key)}")
    if tuple(cfg.rows) != tuple(defaults.rows):
        parts.append(f"--rows {','.join(cfg.rows)}")
    return " ".join(parts)


def versions() -> dict:
    import platform

    from .course import versions as course_versions

    return {**course_versions(), "machine": platform.machine(), "threads": torch.get_num_threads()}


def load_results(path: str | Path) -> dict:
    """A finished run's ``metrics.json`` (with its ``path``), e.g. ``runs/ablate/metrics.json`` or the shipped
    ``data/results/ablate/metrics.json``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no ablation results here; run `s2v ablate --out {path.parent}` (~15 min)")
    return {**json.loads(path.read_text()), "path": str(path)}


def checks(rows: dict) -> dict:
    """What the table says, as booleans next to the numbers they come from ("beats" = intervals do not overlap)."""
    out = {}
    s2v = rows.get("sound2vision")
    head = "gen_top1_accuracy"
    if s2v:
        for other in ("null_shuffled", "null_mean", "mse", "l1", "pairing_middle", "true_frame", "prototype",
                      "prior_affine", "prior_retrieval", "prior_diffusion", "gap_shift"):  # fmt: skip
            if other in rows and head in rows[other]:
                out[f"sound2vision_beats_{other}_{head}"] = stats.beats(s2v[head], rows[other][head])
                out[f"{other}_beats_sound2vision_{head}"] = stats.beats(rows[other][head], s2v[head])
    return out


def write_tables(metrics: dict, out: Path) -> None:
    """``ablation.csv`` (every figure, means and interval bounds) and ``ablation.md`` (the main columns)."""
    rows = metrics["rows"]
    keys = sorted({k for m in rows.values() for k, v in m.items() if isinstance(v, (int, float, dict)) and k not in
                   ("config",)})  # fmt: skip
    with open(out / "ablation.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", *[c for k in keys for c in (k, f"{k}_lo", f"{k}_hi")]])
        for rid, m in rows.items():
            cells = []
            for k in keys:
                x = m.get(k)
                lo, hi = stats.bounds(x) if isinstance(x, (int, float, dict)) and x is not None else ("", "")
                cells += [stats.mean_of(x) if x is not None else "", lo, hi]
            w.writerow([rid, m.get("name", rid), *cells])
    (out / "ablation.md").write_text(markdown_table(metrics) + "\n")


def markdown_table(metrics: dict) -> str:
    """The main columns as a markdown table: mean ± half-width of the 95% interval (with several seeds)."""
    rows = metrics["rows"]
    cols = [k for k in COLUMNS if any(k in m for m in rows.values())]
    lines = ["| row | id | " + " | ".join(COLUMNS[k] for k in cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for rid, m in rows.items():
        lines.append(f"| {m.get('name', rid)} | `{rid}` | " + " | ".join(stats.fmt(m.get(k)) for k in cols) + " |")
    return "\n".join(lines)


def _figures(exp: Experiment, pictures: dict, metrics: dict, out: Path) -> None:
    from .toyworld import CATEGORY_NAMES

    test = exp.test
    cols = [int(np.flatnonzero(test.label == c)[0]) for c in range(len(CATEGORY_NAMES)) if (test.label == c).any()]
    names = {rid: m.get("name", rid) for rid, m in metrics["rows"].items()}
    grid = np.stack([exp.test_frames[cols], *[p[cols] for p in pictures.values()]])
    labels = ["true frame", *(textwrap.fill(names[rid], 14) for rid in pictures)]
    viz.image_grid(grid, labels, [CATEGORY_NAMES[test.label[c]] for c in cols],
                   out / "ablation_grid.png", title="one held-out sound per category, per ablation row (first seed)")  # fmt: skip
    viz.ablation_bars({names[rid]: m for rid, m in metrics["rows"].items()}, out / "ablation_bars.png",
                      keys=("gen_top1_accuracy", "gen_r_at_5_judge"))  # fmt: skip


def summary(m: dict) -> str:
    seeds = m.get("seeds", [])
    excluded = m.get("excluded_seeds") or {}
    lines = [markdown_table(m), "",
             f"seeds {seeds} (settings chosen on seed {m.get('tuning_seed')}); {m.get('interval')}"]  # fmt: skip
    if excluded:
        lines.append(f"EXCLUDED {len(excluded)} seed(s) whose training diverged: {excluded}")
    lines.append(f"wall time {m['seconds']:.0f} s, peak memory {m['peak_memory_gb']:.2f} GB")
    return "\n".join(lines)
