"""``s2v demo``: the whole method on the toy profile, end to end, in a few minutes (paper guide Figure 2).

1. build toy clips (audio + frames + ground truth)         - ``data``
2. pair each training clip with one frame                  - ``data.pair_frames`` (middle frame, or SSL top-1)
3. embed those frames with the frozen image encoder        - ``encoders`` (the anchors)
4. train the audio encoder onto the anchors                - ``train`` with the paper's InfoNCE-L2 loss
5. feed held-out sounds' embeddings to the frozen generator - ``generators``
6. measure: retrieval R@k, and judged category accuracy of the pictures against the oracle (true frame's embedding)
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import stats, viz
from .audio import save_wav
from .audio_encoder import save_audio_encoder
from .config import profile, setup_torch
from .experiment import (
    REPORTED_SEEDS_START,
    TUNING_SEED,
    draw_for_variant,
    evaluate_variant,
    prepare_experiment,
    train_variant,
)
from .toyworld import CATEGORY_NAMES


class OutputExists(RuntimeError):
    pass


@dataclass
class DemoConfig:
    n_train: int = 4000
    n_val: int = 160
    n_test: int = 240
    epochs: int = 2  # chosen on tuning seed 0 (scripts/tune_settings.py); the paper trains 50 epochs on VGGSound
    loss: str = "infonce_l2"
    pairing: str = "top1"  # SSL top-1 frame (paper guide step 2); "middle" is the paper's baseline
    generator: str = "toy-diffusion"
    n_images: int = 4  # per sound in the gallery
    sampling_steps: int = 10
    seeds: tuple[int, ...] = (REPORTED_SEEDS_START,)  # seed 0 is the tuning seed: never reported
    prior: str | None = None  # beyond the paper: feed the generator through a prior (s2v_lib.prior)

    @property
    def seed(self) -> int:
        """The first seed: the one whose encoder, gallery and sounds are written."""
        return self.seeds[0]


def prepare_out(out: str | Path, force: bool) -> Path:
    out = Path(out)
    if (out / "metrics.json").exists() and not force:
        raise OutputExists(f"{out} already holds a run's results (metrics.json); pass --force to overwrite "
                           "them or choose another --out")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    if force:  # a fresh run: do not resume the previous run's training checkpoint
        (out / "audio_encoder.ckpt").unlink(missing_ok=True)
    return out


def run_demo(out: str | Path, config: DemoConfig | None = None, force: bool = False) -> dict:
    """``s2v demo``: the steps of the module docstring for each seed of ``config.seeds``; the first seed's encoder,
    gallery and sounds are written, and with several seeds every figure is a mean with a 95% interval."""
    cfg = config or DemoConfig()
    t0 = time.time()
    setup_torch()
    if profile() == "full":
        from .full_demo import run_full_demo

        return run_full_demo(out, cfg, force)
    if TUNING_SEED in cfg.seeds:
        raise ValueError(f"seed {TUNING_SEED} is the tuning seed (the demo's settings were chosen on it): report others")
    out = prepare_out(out, force)

    def one(seed: int) -> dict:
        first = seed == cfg.seeds[0]
        # 1-3. clips, pairing, frozen anchors;  4. alignment training;  5-6. held-out sounds -> pictures, measured
        exp = prepare_experiment(cfg.n_train, cfg.n_val, cfg.n_test, seed=seed, ssl_select=cfg.pairing == "top1")
        v = train_variant(exp, cfg.loss, cfg.pairing, cfg.epochs, checkpoint=out / "audio_encoder.ckpt" if first else None)
        m, _ = evaluate_variant(exp, v, cfg.generator, steps=cfg.sampling_steps, prior=cfg.prior)
        if exp.ssl_counts is not None:
            m["ssl_selection"] = exp.ssl_counts
        if first:
            write_outputs(exp, v, cfg, out)
        return m

    metrics, runs, excluded = stats.over_seeds(one, cfg.seeds, desc="demo seeds")
    metrics.update({
        "seeds": [s for s in cfg.seeds if s not in excluded], "excluded_seeds": excluded, "tuning_seed": TUNING_SEED,
        "interval": stats.INTERVAL_DEFINITION if len(runs) > 1 else "one seed: no interval",
        "command": f"s2v demo --seeds {len(cfg.seeds)}",
        "seconds": time.time() - t0,
        "peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "config": asdict(cfg),
    })  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def write_outputs(exp, v, cfg: DemoConfig, out: Path) -> None:
    """The trained encoder (and what ``s2v generate`` needs to say how familiar a sound is), the gallery (one
    held-out sound per category), the training curve and the held-out sounds as wav files."""
    save_audio_encoder(v.model, out / "audio_encoder.safetensors", {"loss": cfg.loss, "pairing": cfg.pairing})
    from .familiarity import reference_from_experiment, reference_path  # `s2v generate` says how familiar a sound is

    reference_from_experiment(v.model, exp).save(reference_path(out / "audio_encoder.safetensors"))
    test = exp.test
    rows = [int(np.flatnonzero(test.label == c)[0]) for c in range(len(CATEGORY_NAMES)) if (test.label == c).any()]
    kw = {"steps": cfg.sampling_steps} if cfg.generator.endswith("diffusion") else {}
    pics = draw_for_variant(exp, v, cfg.generator, rows, cfg.n_images, exp.seed + 1, prior=cfg.prior, **kw)
    viz.gallery(exp.specs["test"][rows], exp.test_frames[rows], pics, [CATEGORY_NAMES[test.label[r]] for r in rows],
                out / "gallery.png", title="held-out sounds -> pictures (toy profile)")  # fmt: skip
    viz.training_curve(v.history, out / "training_curve.png")
    for r in rows:
        save_wav(out / "sounds" / f"{CATEGORY_NAMES[test.label[r]]}.wav", test.audio[r].astype(np.float32))


def summary(m: dict) -> str:
    f = stats.fmt
    top1, oracle = m["gen_top1_accuracy"], m["oracle_top1_accuracy"]
    lines = [
        f"held-out retrieval  R@1 {f(m['r_at_1'])}  R@5 {f(m['r_at_5'])}  R@10 {f(m['r_at_10'])}  (chance "
        f"{stats.mean_of(m['r_at_k_chance']['r_at_1']):.3f} / {stats.mean_of(m['r_at_k_chance']['r_at_5']):.3f}; same category @1 "
        f"{f(m['same_category_at_1'])})",
        f"generated pictures  judged top-1 accuracy {f(top1)} (lenient {f(m['gen_accuracy'])})  vs the true frame's "
        f"embedding {f(oracle)} (lenient {f(m['oracle_accuracy'])})  -> ratio "
        f"{stats.mean_of(top1) / max(stats.mean_of(oracle), 1e-9):.2f}",
        f"seeds {m['seeds']} (settings chosen on seed {m['tuning_seed']}); {m['interval']}",
    ]
    if m.get("excluded_seeds"):
        lines.append(f"EXCLUDED {len(m['excluded_seeds'])} seed(s) whose training diverged: {m['excluded_seeds']}")
    lines.append(f"wall time {m['seconds']:.0f} s, peak memory {m['peak_memory_gb']:.2f} GB")
    return "\n".join(lines)
