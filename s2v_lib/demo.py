"""``s2v demo``: the whole method on the toy profile, end to end, in a few minutes (PAPER.md Figure 2).

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
import torch

from .audio import FrontEnd, save_wav
from .audio_encoder import embed_spectrograms, save_audio_encoder
from .config import profile, setup_torch
from .data import ToyDataset, build_toy_dataset, pair_frames, take_frames, truth_frame
from .losses import DIRECTION_ONLY
from .metrics import judged_scores, retrieval_recall, same_category_at_1
from .registry import load_generator, load_image_encoder, load_judge
from .toyworld import CATEGORY_NAMES
from .train import TrainConfig, train_audio_encoder

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
    pairing: str = "middle"
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


def spectrograms(ds: ToyDataset, front_end: FrontEnd | None = None, batch: int = 512) -> torch.Tensor:
    """Front end over a data set's audio, stored as float16 (10k clips of raw float32 audio would not fit a laptop)."""
    fe = front_end or FrontEnd.preset("toy")
    return torch.cat([fe(ds.audio[i : i + batch].astype(np.float32)).half() for i in range(0, len(ds), batch)])


def match_anchor_norm(emb: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """For direction-only losses: put audio embeddings on the anchors' mean norm before generating."""
    return torch.nn.functional.normalize(emb, dim=1) * anchors.norm(dim=1).mean()


def run_demo(out: str | Path, config: DemoConfig | None = None, force: bool = False, ssl_scores=None) -> dict:
    cfg = config or DemoConfig()
    t0 = time.time()
    setup_torch()
    if profile() == "full":
        return run_full_demo(out, cfg, force)
    out = prepare_out(out, force)

    # 1-2. data and pairing
    n_all = cfg.n_train + cfg.n_val + cfg.n_test
    ds = build_toy_dataset(n_all, seed=cfg.seed, workers=2)
    train, rest = ds.split(cfg.n_val + cfg.n_test)
    val, test = rest.split(cfg.n_test)
    if cfg.pairing == "top1" and ssl_scores is None:  # sound-source localisation scores every frame (PAPER.md step 2)
        from .ssl import frame_scores, load_ssl_model

        ssl_scores = frame_scores(load_ssl_model(), train)
    train_idx = pair_frames(train, cfg.pairing, seed=cfg.seed, scores=ssl_scores)
    # 3. frozen anchors (held-out clips are anchored on their ground-truth best frame: evaluation only)
    encoder = load_image_encoder("toy")
    anchors = {
        "train": encoder.encode(take_frames(train, train_idx)),
        "val": encoder.encode(take_frames(val, truth_frame(val))),
        "test": encoder.encode(take_frames(test, truth_frame(test))),
    }
    specs = {"train": spectrograms(train), "val": spectrograms(val), "test": spectrograms(test)}
    # 4. alignment training
    tcfg = TrainConfig(loss=cfg.loss, epochs=cfg.epochs)
    model, hist = train_audio_encoder(specs["train"], anchors["train"], specs["val"], anchors["val"], tcfg,
                                      checkpoint=out / "audio_encoder.ckpt")  # fmt: skip
    save_audio_encoder(model, out / "audio_encoder.safetensors", {"loss": cfg.loss, "pairing": cfg.pairing})
    # 5. held-out sounds -> pictures
    emb = embed_spectrograms(model, specs["test"])
    gen_emb = match_anchor_norm(emb, anchors["train"]) if cfg.loss in DIRECTION_ONLY else emb
    generator = load_generator(cfg.generator)
    judge = load_judge()
    kw = {"steps": cfg.sampling_steps} if cfg.generator.endswith("diffusion") else {}
    from_audio = generator.generate(gen_emb, n=1, seed=cfg.seed, **kw)
    from_truth = generator.generate(anchors["test"], n=1, seed=cfg.seed, **kw)
    # 6. metrics
    test_frames = take_frames(test, truth_frame(test))
    scored = {k: judged_scores(judge, v, test.label) for k, v in
              {"gen": from_audio, "oracle": from_truth, "real": test_frames[:, None]}.items()}  # fmt: skip
    metrics = {
        **retrieval_recall(emb, anchors["test"], ks=(1, 5, 10)),
        "same_category_at_1": same_category_at_1(emb, anchors["test"], test.label),
        "gen_accuracy": scored["gen"]["accuracy"],
        "oracle_accuracy": scored["oracle"]["accuracy"],
        "judge_accuracy_real": scored["real"]["accuracy"],
        **{f"{k}_{m}": v[m] for k, v in scored.items() for m in ("top1_accuracy", "extra")},
        "middle_frame_shows_source": float(train.visible[:, train.visible.shape[1] // 2].mean()),
        "paired_frame_shows_source": float(train.visible[np.arange(len(train)), train_idx].mean()),
        "final_val_loss": hist.val_loss[-1],
        "train_seconds": hist.seconds,
    }
    # figures, sounds
    rows = [int(np.flatnonzero(test.label == c)[0]) for c in range(len(CATEGORY_NAMES)) if (test.label == c).any()]
    from . import viz

    pics = generator.generate(gen_emb[rows], n=cfg.n_images, seed=cfg.seed + 1, **kw)
    viz.gallery(specs["test"][rows], test_frames[rows], pics, [CATEGORY_NAMES[test.label[r]] for r in rows],
                out / "gallery.png", title="held-out sounds -> pictures (toy profile)")  # fmt: skip
    viz.training_curve(hist, out / "training_curve.png")
    for r in rows:
        save_wav(out / "sounds" / f"{CATEGORY_NAMES[test.label[r]]}.wav", test.audio[r].astype(np.float32))
    metrics["seconds"] = time.time() - t0
    metrics["peak_memory_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    metrics["config"] = asdict(cfg)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def run_full_demo(out, cfg: DemoConfig, force: bool) -> dict:
    """The full profile: load the authors' frozen models (OpenCLIP ViT-H/14, Stable unCLIP 2.1).

    NOT BUILT YET beyond loading: training on real VGGSound/VEGAS clips from the command line needs a data folder
    (see ``s2v_lib.video``) and a GPU. Offline, loading fails first with a message saying what to download.
    """
    load_image_encoder()  # raises ModelError offline, naming the missing weights and the toy alternative
    load_generator()
    raise NotImplementedError(
        "the full-profile demo is not built yet: the frozen models load, but `s2v demo` does not yet read a "
        "VGGSound/VEGAS folder. Use s2v_lib.video and s2v_lib.distributed from Python, or S2V_PROFILE=toy."
    )


def summary(m: dict) -> str:
    return (
        f"held-out retrieval  R@1 {m['r_at_1']:.3f}  R@5 {m['r_at_5']:.3f}  R@10 {m['r_at_10']:.3f}  "
        f"(same category @1 {m['same_category_at_1']:.3f})\n"
        f"generated pictures  judged accuracy {m['gen_accuracy']:.3f}  vs oracle (true frame's embedding) "
        f"{m['oracle_accuracy']:.3f}  -> ratio {m['gen_accuracy'] / max(m['oracle_accuracy'], 1e-9):.2f}\n"
        f"wall time {m['seconds']:.0f} s, peak memory {m['peak_memory_gb']:.2f} GB"
    )
