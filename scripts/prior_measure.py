"""Quick measurement of the priors (s2v_lib.prior) on one small toy run: pictures drawn from the raw audio embedding
vs from each prior's output, on held-out clips, with the frozen diffusion generator.

    S2V_THREADS=2 python scripts/prior_measure.py                 # seed 1, the priors' default settings
    S2V_THREADS=2 python scripts/prior_measure.py --tune          # seed 0: the small grid the defaults came from

ONE seed: the intervals printed are over held-out clips only (they say nothing about training noise); the issue's
table (>= 3 seeds) comes from the ablation rows ``prior_*``. Settings are chosen on seed 0 (``--tune``), reported on
seed 1. Rows: the raw embedding (the paper), each prior, the oracle (the true frame's image embedding), and a null
row (the raw row's pictures judged against other clips' sounds).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def draw_and_score(rows, name, embeds, second, ctx, extra=None):
    """Pictures for ``embeds`` [B, D] (and ``second`` [n_div, D], a second draw, for diversity), scored."""
    from s2v_lib import stats
    from s2v_lib.ambiguity import pair_diversity, picture_scores

    gen, judge, kw = ctx["generator"], ctx["judge"], ctx["kw"]
    pics = gen.generate(embeds, n=1, seed=ctx["seed"], **kw)
    m, per_clip = picture_scores(judge, pics, **ctx["truth"])
    m["fd_judge"] = ctx["fd"](pics[:, 0])
    m["fd_toy"] = ctx["fd_toy"](pics[:, 0])
    m["anchor_distance"] = float((embeds - ctx["anchors"]).norm(dim=1).mean())
    if second is not None:
        again = gen.generate(second, n=1, seed=ctx["seed"] + 1, **kw)
        per_clip["diversity"] = pair_diversity(ctx["encoder"], pics[: len(second), 0], again[:, 0])
    for k, v in per_clip.items():
        m[k] = stats.interval([float(v.mean())], [v])
    rows[name] = {**m, **(extra or {})}
    return pics


def measure(seed: int, clips: int, epochs: int, pairing: str, n_div: int, priors: dict[str, dict]) -> dict:
    from s2v_lib.ambiguity import _derangement, clip_truth, picture_scores
    from s2v_lib.experiment import generator_input, prepare_experiment, train_variant
    from s2v_lib.metrics import FrechetScorer, JudgeFeatures, ToyEncoderFeatures
    from s2v_lib.prior import fit_prior_for_variant
    from s2v_lib.registry import load_generator, load_image_encoder, load_judge

    t0 = time.time()
    exp = prepare_experiment(clips, 160, 240, seed=seed, ssl_select=pairing == "top1")
    v = train_variant(exp, "infonce_l2", pairing, epochs)
    t_train = time.time() - t0
    judge, encoder = load_judge(), load_image_encoder("toy")
    ctx = {"generator": load_generator("toy-diffusion"), "judge": judge, "encoder": encoder, "kw": {"steps": 10},
           "seed": seed, "truth": clip_truth(exp.test), "anchors": exp.anchors_test,
           "fd": FrechetScorer(exp.test_frames, JudgeFeatures(judge)),
           "fd_toy": FrechetScorer(exp.test_frames, ToyEncoderFeatures(encoder))}  # fmt: skip
    raw = generator_input(exp, v)
    rows: dict[str, dict] = {}
    pics = draw_and_score(rows, "raw (paper)", raw, raw[:n_div], ctx)
    perm = _derangement(len(raw), seed)
    rows["null (shuffled sounds)"] = picture_scores(judge, pics, **{k: x[perm] for k, x in ctx["truth"].items()})[0]
    for label, (name, settings) in priors.items():
        t = time.time()
        prior = fit_prior_for_variant(exp, v, name, **settings)
        fit_s = time.time() - t
        first = prior.sample(raw, 1, seed=seed)[:, 0]
        second = prior.sample(raw[:n_div], 1, seed=seed + 1)[:, 0]
        draw_and_score(rows, label, first, second, ctx, {"fit_seconds": fit_s, "settings": prior.settings})
    draw_and_score(rows, "oracle (true frame)", exp.anchors_test, exp.anchors_test[:n_div], ctx)
    return {"rows": rows, "train_seconds": t_train, "val_r_at_1": v.history.val_r_at_1[-1], "seconds": time.time() - t0}


def table(result: dict) -> str:
    from s2v_lib import stats

    cols = ("top1_accuracy", "accuracy", "fd_judge", "fd_toy", "diversity", "anchor_distance", "fit_seconds")
    lines = [f"{'row':<34}" + "".join(f"{c:>16}" for c in cols)]
    for name, m in result["rows"].items():
        lines.append(f"{name:<34}" + "".join(f"{stats.fmt(m.get(c)) if c in m else '-':>16}" for c in cols))
    return "\n".join(lines)


GRID = {  # --tune: the settings tried on the tuning seed
    "affine ridge=1e-3": ("affine", {"ridge": 1e-3}),
    "affine ridge=1e-1": ("affine", {"ridge": 1e-1}),
    "retrieval k=1 audio": ("retrieval", {"k": 1, "match": "audio"}),
    "retrieval k=10 audio random": ("retrieval", {"k": 10, "match": "audio", "pick": "random"}),
    "retrieval k=1 image": ("retrieval", {"k": 1, "match": "image"}),
    "diffusion guidance=1": ("diffusion", {}),
    "diffusion guidance=2": ("diffusion", {"guidance": 2.0}),
}


def main() -> None:
    from s2v_lib.config import setup_torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=None, help="default 1 (0 with --tune)")
    p.add_argument("--clips", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--pairing", default="middle", choices=["middle", "top1"])
    p.add_argument("--diversity", type=int, default=40, help="held-out sounds drawn twice")
    p.add_argument("--tune", action="store_true", help="try the settings grid on the tuning seed")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else (0 if args.tune else 1)
    threads = setup_torch()
    torch.manual_seed(0)
    load0 = os.getloadavg()
    priors = GRID if args.tune else {n: (n, {}) for n in ("affine", "retrieval", "diffusion")}
    r = measure(seed, args.clips, args.epochs, args.pairing, args.diversity, priors)
    print(table(r))
    print(f"seed {seed} ({'tuning' if args.tune else 'reported'}; ONE seed: intervals over held-out clips only), "
          f"{args.clips} training clips, {args.epochs} epochs, pairing {args.pairing}, torch threads {threads}; "
          f"encoder val R@1 {r['val_r_at_1']:.3f}; train {r['train_seconds']:.0f} s, all {r['seconds']:.0f} s; "
          f"load average {load0[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end on {os.cpu_count()} cores")  # fmt: skip
    np.set_printoptions(precision=3)


if __name__ == "__main__":
    main()
