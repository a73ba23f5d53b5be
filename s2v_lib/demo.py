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

from . import viz
from .audio import save_wav
from .audio_encoder import save_audio_encoder
from .config import profile, setup_torch
from .experiment import evaluate_variant, generator_input, prepare_experiment, train_variant
from .registry import load_generator
from .toyworld import CATEGORY_NAMES

DEMO_SEED = 0


class OutputExists(RuntimeError):
    pass


@dataclass
class DemoConfig:
    n_train: int = 4000
    n_val: int = 160
    n_test: int = 240
    epochs: int = 3
    loss: str = "infonce_l2"
    pairing: str = "top1"  # SSL top-1 frame (paper guide step 2); "middle" is the paper's baseline
    generator: str = "toy-diffusion"
    n_images: int = 4  # per sound in the gallery
    sampling_steps: int = 10
    seed: int = DEMO_SEED


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
    cfg = config or DemoConfig()
    t0 = time.time()
    setup_torch()
    if profile() == "full":
        from .full_demo import run_full_demo

        return run_full_demo(out, cfg, force)
    out = prepare_out(out, force)

    # 1-3. clips, pairing, frozen anchors;  4. alignment training;  5-6. held-out sounds -> pictures, measured
    exp = prepare_experiment(cfg.n_train, cfg.n_val, cfg.n_test, seed=cfg.seed, ssl_select=cfg.pairing == "top1")
    v = train_variant(exp, cfg.loss, cfg.pairing, cfg.epochs, checkpoint=out / "audio_encoder.ckpt")
    save_audio_encoder(v.model, out / "audio_encoder.safetensors", {"loss": cfg.loss, "pairing": cfg.pairing})
    metrics, _ = evaluate_variant(exp, v, cfg.generator, steps=cfg.sampling_steps)
    if exp.ssl_counts is not None:
        metrics["ssl_selection"] = exp.ssl_counts
    # figures, sounds: one held-out sound per category
    test = exp.test
    rows = [int(np.flatnonzero(test.label == c)[0]) for c in range(len(CATEGORY_NAMES)) if (test.label == c).any()]
    kw = {"steps": cfg.sampling_steps} if cfg.generator.endswith("diffusion") else {}
    pics = load_generator(cfg.generator).generate(generator_input(exp, v)[rows], n=cfg.n_images, seed=cfg.seed + 1, **kw)
    viz.gallery(exp.specs["test"][rows], exp.test_frames[rows], pics, [CATEGORY_NAMES[test.label[r]] for r in rows],
                out / "gallery.png", title="held-out sounds -> pictures (toy profile)")  # fmt: skip
    viz.training_curve(v.history, out / "training_curve.png")
    for r in rows:
        save_wav(out / "sounds" / f"{CATEGORY_NAMES[test.label[r]]}.wav", test.audio[r].astype(np.float32))
    metrics["seconds"] = time.time() - t0
    metrics["peak_memory_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    metrics["config"] = asdict(cfg)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def summary(m: dict) -> str:
    return (
        f"held-out retrieval  R@1 {m['r_at_1']:.3f}  R@5 {m['r_at_5']:.3f}  R@10 {m['r_at_10']:.3f}  "
        f"(same category @1 {m['same_category_at_1']:.3f})\n"
        f"generated pictures  judged accuracy {m['gen_accuracy']:.3f}  vs oracle (true frame's embedding) "
        f"{m['oracle_accuracy']:.3f}  -> ratio {m['gen_accuracy'] / max(m['oracle_accuracy'], 1e-9):.2f}\n"
        f"wall time {m['seconds']:.0f} s, peak memory {m['peak_memory_gb']:.2f} GB"
    )
