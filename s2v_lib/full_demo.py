"""``S2V_PROFILE=full s2v demo --data DIR``: the whole method on real clips with the authors' frozen models.

The same steps as the toy demo (``s2v_lib.demo``), at the paper's scale: OpenCLIP ViT-H/14 anchors, the paper's
audio encoder and front end, Stable unCLIP 2.1 drawing the pictures, VGGSound/VEGAS-style folders (``s2v_lib.video``),
one or many GPUs (``s2v_lib.distributed``).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from . import viz
from .audio import save_wav
from .audio_encoder import save_audio_encoder
from .config import setup_torch
from .demo import DemoConfig, OutputExists, prepare_out

FULL_EVAL_IMAGES = 64  # held-out sounds drawn for the generation metrics (each also drawn from its true frame)
FULL_GALLERY_ROWS = 8
FULL_TEST_FRACTION = 0.2  # held out when the index has no "test" split
SSL_JSON_NAMES = ("top1_boxes_top10_moments.json", "ssl_topk.json")
ANCHOR_SETTING = "S2V_ANCHOR"  # unclip (default: Stable unCLIP's own ViT-H/14) | openclip (open_clip's copy)
VALIDATION_CHUNK = 32  # held-out clips embedded at once (validation and retrieval)


def _find_index_and_ssl(data: Path) -> tuple[Path | None, Path | None]:
    """The CSV index and the SSL top-k JSON at the top of a data folder (none: file names / middle frames)."""
    csvs = sorted(data.glob("*.csv"))
    if len(csvs) > 1:
        named = [p for p in csvs if p.stem.lower() in ("index", "vggsound", "vegas")]
        if len(named) != 1:
            raise ValueError(f"{data}: several CSV files ({', '.join(p.name for p in csvs)}); keep one index "
                             "(youtube_id, start, label, split) at the top of the folder, or name it index.csv")  # fmt: skip
        csvs = named
    jsons = [data / n for n in SSL_JSON_NAMES if (data / n).exists()] or sorted(data.glob("*.json"))
    if len(jsons) > 1:
        raise ValueError(f"{data}: several JSON files ({', '.join(p.name for p in jsons)}); name the SSL top-k file "
                         f"{SSL_JSON_NAMES[0]}")  # fmt: skip
    return (csvs[0] if csvs else None), (jsons[0] if jsons else None)


def _split_records(records: list, n_train: int, n_test: int) -> tuple[list, list]:
    """The index's own train/test split, or (when it has no test rows) a deterministic hash of the clip id."""
    import hashlib

    if any(r.split == "test" for r in records):
        train = [r for r in records if r.split != "test"]
        test = [r for r in records if r.split == "test"]
    else:
        key = lambda r: hashlib.sha1(r.clip_id.encode()).hexdigest()  # noqa: E731
        order = sorted(records, key=key)
        n_held = max(1, int(round(FULL_TEST_FRACTION * len(records)))) if len(records) > 1 else 0
        held = {r.clip_id for r in order[:n_held]}
        train = [r for r in records if r.clip_id not in held]
        test = [r for r in records if r.clip_id in held]
    return train[:n_train], test[:n_test]


class StageClock:
    """Wall time and peak memory (GPU: allocated and reserved by torch; host: the process's peak RSS so far) of each
    stage of a run, for ``metrics.json`` and the T4 table of docs/full_profile.md."""

    def __init__(self, device):
        import torch

        self.torch, self.device, self.stats = torch, torch.device(device), {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        torch, cuda = self.torch, self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        t = time.time()
        try:
            yield
        finally:
            entry = {"seconds": round(time.time() - t, 1),
                     "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}  # fmt: skip
            if cuda:
                torch.cuda.synchronize(self.device)
                entry["peak_gpu_allocated_gb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**30, 2)
                entry["peak_gpu_reserved_gb"] = round(torch.cuda.max_memory_reserved(self.device) / 2**30, 2)
            self.stats[name] = entry


def _validate(model, specs, anchors, loss_name: str, batch_size: int, device, chunk: int = VALIDATION_CHUNK):
    """``train.validate`` with the held-out embeddings computed ``chunk`` clips at a time (a batch of 256 paper-size
    spectrograms alone takes several GB on a GPU)."""
    import torch

    from .losses import get_loss
    from .metrics import retrieval_recall

    model.eval()
    with torch.no_grad():
        emb = torch.cat([model(specs[i : i + chunk].to(device)).float().cpu() for i in range(0, len(specs), chunk)])
    loss_fn = get_loss(loss_name)
    n_full = len(specs) // batch_size * batch_size
    if n_full == 0:  # fewer held-out clips than one batch: use them all as one batch (never a batch of one)
        n_full, batch_size = len(specs), max(len(specs), 2)
    losses = [
        loss_fn(emb[i : i + batch_size], anchors[i : i + batch_size]).item() for i in range(0, n_full, batch_size)
    ]
    return float(np.mean(losses)), retrieval_recall(emb, anchors, ks=(1,))["r_at_1"], emb


def run_full_demo(out, cfg: DemoConfig, force: bool, data: str | Path | None = None, anchor: str | None = None,
                  repo: str | None = None, n_eval: int = FULL_EVAL_IMAGES) -> dict:  # fmt: skip
    """The full profile on real clips: ``S2V_PROFILE=full s2v demo --data DIR`` (also under ``torchrun``).

    ``DIR`` is a VGGSound/VEGAS-style folder (``s2v_lib.video``): mp4 clips at any depth, named as the official index
    or the public mirror does, one CSV index (youtube_id, start, label, split; without it ids come from the file
    names and labels from the folder names, as VEGAS keeps them) and optionally the SSL top-k JSON
    (``top1_boxes_top10_moments.json``): with it the training frame is the SSL top-1 (``--pairing top1``), without it
    the middle frame. Steps, as in the paper guide:

    1. the frozen models: rank 0 fetches Stable unCLIP's files once (``S2V_UNCLIP_REPO`` or ``repo``; offline this
       fails at once with a :class:`~s2v_lib.registry.ModelError` saying what to download), every rank loads the
       anchor encoder: the pipeline's own ViT-H/14 (``anchor="unclip"``, default; ``S2V_ANCHOR=openclip`` for
       open_clip's copy of the same weights, a second download);
    2. decode each clip once and cache the selected frame's image embedding and 10 s of 16 kHz audio
       (``OUT/cache/{train,test}``, sharded over the ranks under torchrun, streamed to disk); at most ``--clips``
       training clips and ``n_test`` held-out clips, drawn from the clips whose file exists (the index's test split,
       else a fixed 20 % of the clips);
    3. train the audio encoder at the paper's settings from the caches: ResNet-18 + 512 -> 1024 -> 1024 head on the
       paper front end's spectrogram (``FrontEnd.preset("paper")``), the chosen loss (InfoNCE-L2), Adam lr 1e-3,
       weight decay 1e-5, batch 64 (fewer only if there are fewer clips), seed 1234, ``--epochs`` epochs (the
       paper: 50), autocast in the card's fast half type (bf16, or fp16 with a GradScaler on a T4), checkpointed to
       ``OUT/audio_encoder.ckpt`` every epoch (a run stopped midway resumes; ``--force`` starts afresh);
    4. rank 0 alone loads the generator (reusing the anchor encoder's ViT-H) and measures on the held-out clips:
       audio -> frame retrieval R@1/5/10 and same-label@1; draws up to ``n_eval`` (64) held-out sounds (and, as the
       oracle, their true frames' embeddings) at the authors' settings (on a T4 each picture takes seconds: pass
       fewer there), and scores the pictures with the frozen image encoder:
       ``gen_accuracy`` = share whose nearest held-out frame has the sound's label, ``gen_r_at_k`` = retrieval of
       the true frame from the picture;
    5. write ``metrics.json`` (with each stage's time and peak memory), ``gallery.png`` (one held-out sound per
       label), ``training_curve.png``, ``sounds/`` and ``audio_encoder.safetensors``.
    """
    import re

    import torch

    from . import full
    from .audio import FrontEnd
    from .audio_encoder import AudioEncoder
    from .distributed import any_rank, init_distributed, precompute_features_distributed, shutdown, train_ddp
    from .experiment import match_anchor_norm
    from .losses import DIRECTION_ONLY, get_loss
    from .metrics import retrieval_recall, same_category_at_1
    from .registry import ModelError
    from .train import History
    from .video import FeatureCache, VideoFolder, failure_counts, read_topk_json

    t0 = time.time()
    setup_torch()
    if data is None:
        raise ValueError("the full-profile demo reads real clips: pass --data DIR, a VGGSound/VEGAS-style folder of "
                         "mp4 clips with its CSV index (youtube_id, start, label, split) and optionally the SSL "
                         "top-k JSON (see s2v_lib.video). Without data, use the toy profile (S2V_PROFILE=toy).")  # fmt: skip
    if cfg.pairing not in ("top1", "middle"):
        raise ValueError(f"--pairing {cfg.pairing} needs the toy world's ground truth; on real clips use top1 (the SSL "
                         "top-k JSON's best frame, middle when the folder has no JSON) or middle")  # fmt: skip
    data = Path(data)
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: no such data folder")
    anchor = (anchor or os.environ.get(ANCHOR_SETTING, "") or "unclip").strip().lower()
    if anchor not in ("unclip", "openclip"):
        raise ValueError(f"{ANCHOR_SETTING}={anchor}: use 'unclip' (Stable unCLIP's own ViT-H/14) or 'openclip'")
    info = init_distributed()
    device = info.device
    clock = StageClock(device)
    repo = full.unclip_repo(repo)

    # 1. the frozen models first: offline, this is where it stops, naming what is missing
    with clock("load_anchor_encoder"):
        failure = None
        if info.is_main:  # the output folder, then one download, before anyone loads
            try:
                out = prepare_out(out, force)
                full.fetch_stable_unclip(repo, dtype=full.half_dtype(device))
            except (ModelError, OutputExists) as err:
                failure = err
        if any_rank(failure is not None, device):  # every rank stops, not only rank 0
            shutdown()
            raise failure or ModelError(f"rank 0 stopped before loading Stable unCLIP ({repo}); its message says why")
        if anchor == "unclip":
            encoder = full.load_unclip_image_encoder(device, repo=repo)
        else:
            encoder = full.load_openclip_image_encoder(device)
    index, ssl_path = _find_index_and_ssl(data)
    folder = VideoFolder(data, index)
    present = folder.existing()  # --clips is drawn from clips whose file is there
    train_recs, test_recs = _split_records(present, cfg.n_train, cfg.n_test)
    if not train_recs or not test_recs:
        raise ValueError(f"{data}: {len(train_recs)} training and {len(test_recs)} held-out clips with a video file "
                         f"({len(folder.records) - len(present)} of {len(folder.records)} indexed clips have none); "
                         "the demo needs both")  # fmt: skip
    topk = read_topk_json(ssl_path) if ssl_path else None
    method = "top1" if (topk is not None and cfg.pairing == "top1") else "middle"
    out = Path(out)

    # 2. features, once per clip: the selected frame's frozen embedding and the 16 kHz audio
    caches = {}
    with clock("precompute"):
        for name, recs in (("train", train_recs), ("test", test_recs)):
            part = VideoFolder(data, recs)
            path = out / "cache" / name
            try:
                old = FeatureCache(path)
                fresh = (not force and old.meta.get("method") == method and old.meta.get("n_records") == len(recs)
                         and old.meta.get("encoder") == type(encoder).__name__ and old.meta.get("root") == str(data))  # fmt: skip
            except (FileNotFoundError, ValueError, OSError):
                fresh = False
            caches[name] = old if fresh else precompute_features_distributed(
                part, encoder, path, topk=topk, method=method, batch_clips=16, workers=2, progress=info.is_main
            )  # fmt: skip
    train, test = caches["train"], caches["test"]
    world = info.world
    batch = min(64, len(train) // world * world)
    if batch < 2 or len(test) == 0:
        raise ValueError(f"{data}: {len(train)} usable training and {len(test)} held-out clips (failed: "
                         f"{len(train.failed) + len(test.failed)}, listed in {out}/cache/*/meta.json); need 2 and 1")  # fmt: skip

    # 3. the audio encoder at the paper's settings, from the caches
    front = FrontEnd.preset("paper")
    dim = int(train.embeds.shape[-1])
    torch.manual_seed(1234)
    model = AudioEncoder(emb_dim=dim, hidden=1024, front_end="paper")
    test_specs = torch.cat([front(np.asarray(test.audio[i : i + 64], np.float32)) for i in range(0, len(test), 64)])
    anchors = torch.from_numpy(np.array(test.embeds[:, 0], np.float32))
    steps_per_epoch = len(train) // batch
    hist = History()

    def on_step(step: int, loss: float) -> None:
        if step % steps_per_epoch == 0:  # an epoch ends: held-out loss and R@1 (full batches, never a batch of one)
            vl, vr, _ = _validate(model, test_specs, anchors, cfg.loss, batch, device)
            model.train()
            hist.val_loss.append(vl)
            hist.val_r_at_1.append(vr)

    with clock("train"):
        res = train_ddp(model, get_loss(cfg.loss), train.audio, train.embeds[:, 0], epochs=cfg.epochs,
                        batch_size=batch, lr=1e-3, weight_decay=1e-5, seed=1234, transform=front, device=device,
                        amp="auto", checkpoint=out / "audio_encoder.ckpt", checkpoint_every=steps_per_epoch,
                        on_step=on_step)  # fmt: skip
    hist.train_loss = [float(np.mean(res.losses[e * steps_per_epoch : (e + 1) * steps_per_epoch]))
                       for e in range(len(res.losses) // steps_per_epoch)]  # fmt: skip
    hist.seconds = res.seconds
    shutdown()  # no collective after training: rank 0 measures and draws alone
    if not info.is_main:
        return {}
    model = res.model.eval()
    save_audio_encoder(model.cpu(), out / "audio_encoder.safetensors", {"loss": cfg.loss, "pairing": method,
                                                                         "data": str(data)})  # fmt: skip
    model.to(device)

    # 4. held-out retrieval, then pictures from held-out sounds (and from their true frames: the oracle)
    with clock("load_generator"):  # rank 0 only, reusing the anchor encoder's ViT-H
        reuse = encoder if isinstance(encoder, full.UnCLIPImageEncoder) else None
        generator = full.load_stable_unclip(device, repo=repo, image_encoder=reuse)
    _, _, emb = _validate(model, test_specs, anchors, cfg.loss, batch, device)
    labels_of = {r.clip_id: r.label for r in test_recs}
    labels = np.array([labels_of[c] for c in test.ids])
    has_labels = bool(labels.size) and all(labels != "")
    metrics = {**retrieval_recall(emb, anchors, ks=(1, 5, 10)),
               "same_category_at_1": same_category_at_1(emb, anchors, labels) if has_labels else float("nan")}  # fmt: skip
    gen_in = emb  # direction-only losses: put the audio embeddings on the anchors' norm before generating
    if cfg.loss in DIRECTION_ONLY:
        gen_in = match_anchor_norm(emb, torch.from_numpy(np.array(train.embeds[:, 0], np.float32)))
    n_eval = min(len(test), n_eval)
    scored = {}
    with clock("generate"):
        for kind, e in (("gen", gen_in[:n_eval]), ("oracle", anchors[:n_eval])):
            pics = generator.generate(e, n=1, seed=cfg.seed)
            seen = encoder.encode(pics[:, 0])
            nearest = torch.cdist(seen, anchors).argmin(1).numpy()
            scored[kind] = float((labels[nearest] == labels[:n_eval]).mean()) if has_labels else float("nan")
            if kind == "gen":
                metrics.update(
                    {f"gen_{k}": v for k, v in retrieval_recall(seen, anchors[:n_eval], ks=(1, 5, 10)).items()}
                )
    metrics["gen_accuracy"], metrics["oracle_accuracy"] = scored["gen"], scored["oracle"]

    # 5. figures and sounds: one held-out sound per label (or the first few clips)
    rows = list(dict.fromkeys(labels.tolist())) if has_labels else []
    rows = [int(np.flatnonzero(labels == lab)[0]) for lab in rows][:FULL_GALLERY_ROWS] or list(range(min(len(test), 4)))
    names = [labels[r] if has_labels else test.ids[r] for r in rows]
    by_id = {r.clip_id: r for r in test_recs}
    true = [folder.load(by_id[test.ids[r]], audio=False, only=[int(test.frames[r, 0])]).frames[0] for r in rows]
    pics = generator.generate(gen_in[rows], n=cfg.n_images, seed=cfg.seed + 1)
    viz.gallery(test_specs[rows], _same_size(true, pics.shape[2:4]), pics, names, out / "gallery.png",
                title="held-out sounds -> pictures (full profile: OpenCLIP ViT-H/14 + Stable unCLIP)")  # fmt: skip
    if hist.val_loss:
        viz.training_curve(hist, out / "training_curve.png")
    for r, name in zip(rows, names):
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or f"clip{r}"
        save_wav(out / "sounds" / f"{safe}.wav", np.asarray(test.audio[r], np.float32))
    failed = train.failed + test.failed
    metrics.update({
        "judge": "nearest held-out frame's label under the frozen image encoder (no toy judge on real data)",
        "pairing": method, "clips": {"train": len(train), "test": len(test), "failed_train": len(train.failed),
                                     "failed_test": len(test.failed), "failure_counts": failure_counts(failed),
                                     "indexed": len(folder.records),
                                     "missing_files": len(folder.records) - len(present)},
        "ssl": {"file": str(ssl_path) if ssl_path else None, "entries": len(topk) if topk is not None else 0,
                "skipped_entries": len(topk.skipped) if topk is not None else 0,
                "frame_base": topk.frame_base if topk is not None else None,
                "frame_base_reason": topk.frame_base_reason if topk is not None else None},
        "batch_size": batch, "epochs": cfg.epochs, "steps": res.steps, "resumed_from_step": res.resumed_from,
        "world": world, "train_clips_per_second": res.clips_per_second, "train_seconds": res.seconds,
        "final_val_loss": hist.val_loss[-1] if hist.val_loss else float("nan"),
        "image_encoder": type(encoder).__name__, "anchor": anchor, "generator": type(generator).__name__,
        "unclip_repo": repo, "unclip_variant": getattr(generator, "variant", None), "device": str(device),
        "amp": str(full.half_dtype(device)).replace("torch.", "") if device.type == "cuda" else None,
        "data": str(data), "index": str(index) if index else None, "stages": clock.stats,
    })  # fmt: skip
    metrics["seconds"] = time.time() - t0
    metrics["peak_memory_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    metrics["config"] = asdict(cfg)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _same_size(frames: list, hw) -> np.ndarray:
    """Real frames come in several sizes: resized (PIL, bicubic) to the pictures' size, to share one gallery row."""
    from PIL import Image

    h, w = int(hw[0]), int(hw[1])
    return np.stack([f if f.shape[:2] == (h, w) else np.asarray(Image.fromarray(f).resize((w, h), Image.BICUBIC))
                     for f in frames])  # fmt: skip


def summary(m: dict) -> str:
    """What ``s2v demo`` prints for a full-profile run (its metrics differ from the toy demo's: no toy judge)."""
    st = m.get("stages", {})
    gpu = max((v.get("peak_gpu_reserved_gb", 0.0) for v in st.values()), default=0.0)
    c = m["clips"]
    return "\n".join([
        f"held-out retrieval  R@1 {m['r_at_1']:.3f}  R@5 {m['r_at_5']:.3f}  R@10 {m['r_at_10']:.3f}  "
        f"(same label @1 {m['same_category_at_1']:.3f}; {c['test']} held-out clips)",
        f"generated pictures  nearest-frame label accuracy {m['gen_accuracy']:.3f}  vs the true frame's embedding "
        f"{m['oracle_accuracy']:.3f}",
        f"clips: {c['train']} train, {c['test']} held out; {c['missing_files']} indexed without a file, "
        f"{c['failed_train'] + c['failed_test']} failed {c['failure_counts']}; SSL entries skipped: "
        f"{m['ssl']['skipped_entries']}",
        f"{m['steps']} steps at {m['train_clips_per_second']:.0f} clips/s on {m['device']} (x{m['world']}); wall time "
        f"{m['seconds']:.0f} s, peak memory {m['peak_memory_gb']:.2f} GB" + (f", GPU {gpu:.1f} GB" if gpu else ""),
    ])  # fmt: skip
