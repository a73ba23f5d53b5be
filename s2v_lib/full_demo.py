"""``S2V_PROFILE=full s2v demo --data DIR``: the whole method on real clips with the authors' frozen models.

The same steps as the toy demo (``s2v_lib.demo``), at the paper's scale: OpenCLIP ViT-H/14 anchors, the paper's
audio encoder and front end, Stable unCLIP 2.1 drawing the pictures, VGGSound/VEGAS-style folders (``s2v_lib.video``),
one or many GPUs (``s2v_lib.distributed``).
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from . import viz
from .audio import save_wav
from .audio_encoder import save_audio_encoder
from .config import setup_torch
from .demo import DemoConfig, prepare_out
from .registry import load_generator, load_image_encoder

FULL_EVAL_IMAGES = 64  # held-out sounds drawn for the generation metrics (each also drawn from its true frame)
FULL_GALLERY_ROWS = 8
FULL_TEST_FRACTION = 0.2  # held out when the index has no "test" split
SSL_JSON_NAMES = ("top1_boxes_top10_moments.json", "ssl_topk.json")


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


def run_full_demo(out, cfg: DemoConfig, force: bool, data: str | Path | None = None) -> dict:
    """The full profile on real clips: ``S2V_PROFILE=full s2v demo --data DIR`` (also under ``torchrun``).

    ``DIR`` is a VGGSound/VEGAS-style folder (``s2v_lib.video``): mp4 clips at any depth, named as the official index
    or the public mirror does, one CSV index (youtube_id, start, label, split; without it ids come from the file
    names) and optionally the SSL top-k JSON (``top1_boxes_top10_moments.json``): with it the training frame is the
    SSL top-1 (``--pairing top1``), without it the middle frame. Steps, as in paper guide:

    1. load the frozen OpenCLIP ViT-H/14 and Stable unCLIP 2.1 (first: offline this fails at once with a
       :class:`~s2v_lib.registry.ModelError` saying what to download);
    2. decode each clip once and cache the selected frame's image embedding and 10 s of 16 kHz audio
       (``OUT/cache/{train,test}``, sharded over the ranks under torchrun); at most ``--clips`` training clips and
       ``n_test`` held-out clips (the index's test split, else a fixed 20 % of the clips);
    3. train the audio encoder at the paper's settings from the caches: ResNet-18 + 512 -> 1024 -> 1024 head on the
       257 x 1007 log-power spectrogram, the chosen loss (InfoNCE-L2), Adam lr 1e-3, weight decay 1e-5, batch 64
       (fewer only if there are fewer clips), seed 1234, ``--epochs`` epochs (the paper: 50), bf16 autocast on a GPU;
    4. measure on the held-out clips: audio -> frame retrieval R@1/5/10 and same-label@1; draw up to 64 held-out
       sounds (and, as the oracle, their true frames' embeddings) with Stable unCLIP at the authors' settings, and
       score the pictures with the frozen image encoder: ``gen_accuracy`` = share whose nearest held-out frame has
       the sound's label, ``gen_r_at_k`` = retrieval of the true frame from the picture;
    5. write ``metrics.json``, ``gallery.png`` (one held-out sound per label), ``training_curve.png``, ``sounds/`` and
       ``audio_encoder.safetensors``.
    """
    import re

    import torch

    from .audio import FrontEnd
    from .audio_encoder import AudioEncoder
    from .distributed import init_distributed, precompute_features_distributed, shutdown, train_ddp
    from .experiment import match_anchor_norm
    from .losses import DIRECTION_ONLY, get_loss
    from .metrics import retrieval_recall, same_category_at_1
    from .train import History, validate
    from .video import FeatureCache, VideoFolder, read_topk_json

    t0 = time.time()
    setup_torch()
    info = init_distributed()
    device = str(info.device)
    # 1. the frozen models first: offline, this is where it stops, naming what is missing
    encoder = load_image_encoder("openclip-vit-h-14", device=device)
    generator = load_generator("stable-unclip", device=device)
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
    index, ssl_path = _find_index_and_ssl(data)
    folder = VideoFolder(data, index)
    train_recs, test_recs = _split_records(folder.records, cfg.n_train, cfg.n_test)
    if not train_recs or not test_recs:
        raise ValueError(f"{data}: {len(train_recs)} training and {len(test_recs)} held-out clips; the demo needs both")
    topk = read_topk_json(ssl_path) if ssl_path else None
    method = "top1" if (topk is not None and cfg.pairing == "top1") else "middle"
    out = prepare_out(out, force) if info.is_main else Path(out)

    # 2. features, once per clip: the selected frame's frozen embedding and the 16 kHz audio
    caches = {}
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
            vl, vr = validate(model, test_specs, anchors, cfg.loss, batch)
            model.train()
            hist.val_loss.append(vl)
            hist.val_r_at_1.append(vr)

    res = train_ddp(model, get_loss(cfg.loss), train.audio, train.embeds[:, 0], epochs=cfg.epochs, batch_size=batch,
                    lr=1e-3, weight_decay=1e-5, seed=1234, transform=front, device=device,
                    amp="bf16" if info.device.type == "cuda" else None, on_step=on_step)  # fmt: skip
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
    with torch.no_grad():
        emb = torch.cat([model(test_specs[i : i + 64].to(device)).float().cpu() for i in range(0, len(test), 64)])
    labels_of = {r.clip_id: r.label for r in test_recs}
    labels = np.array([labels_of[c] for c in test.ids])
    has_labels = bool(labels.size) and all(labels != "")
    metrics = {**retrieval_recall(emb, anchors, ks=(1, 5, 10)),
               "same_category_at_1": same_category_at_1(emb, anchors, labels) if has_labels else float("nan")}  # fmt: skip
    gen_in = emb  # direction-only losses: put the audio embeddings on the anchors' norm before generating
    if cfg.loss in DIRECTION_ONLY:
        gen_in = match_anchor_norm(emb, torch.from_numpy(np.array(train.embeds[:, 0], np.float32)))
    n_eval = min(len(test), FULL_EVAL_IMAGES)
    scored = {}
    for kind, e in (("gen", gen_in[:n_eval]), ("oracle", anchors[:n_eval])):
        pics = generator.generate(e, n=1, seed=cfg.seed)
        seen = encoder.encode(pics[:, 0])
        nearest = torch.cdist(seen, anchors).argmin(1).numpy()
        scored[kind] = float((labels[nearest] == labels[:n_eval]).mean()) if has_labels else float("nan")
        if kind == "gen":
            metrics.update({f"gen_{k}": v for k, v in retrieval_recall(seen, anchors[:n_eval], ks=(1, 5, 10)).items()})
    metrics["gen_accuracy"], metrics["oracle_accuracy"] = scored["gen"], scored["oracle"]

    # 5. figures and sounds: one held-out sound per label (or the first few clips)
    rows = list(dict.fromkeys(labels.tolist())) if has_labels else []
    rows = [int(np.flatnonzero(labels == lab)[0]) for lab in rows][:FULL_GALLERY_ROWS] or list(range(min(len(test), 4)))
    names = [labels[r] if has_labels else test.ids[r] for r in rows]
    by_id = {r.clip_id: r for r in test_recs}
    true = np.stack([folder.load(by_id[test.ids[r]], audio=False).frames[int(test.frames[r, 0])] for r in rows])
    pics = generator.generate(gen_in[rows], n=cfg.n_images, seed=cfg.seed + 1)
    viz.gallery(test_specs[rows], true, pics, names, out / "gallery.png",
                title="held-out sounds -> pictures (full profile: OpenCLIP ViT-H/14 + Stable unCLIP)")  # fmt: skip
    if hist.val_loss:
        viz.training_curve(hist, out / "training_curve.png")
    for r, name in zip(rows, names):
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or f"clip{r}"
        save_wav(out / "sounds" / f"{safe}.wav", np.asarray(test.audio[r], np.float32))
    metrics.update({
        "judge": "nearest held-out frame's label under the frozen image encoder (no toy judge on real data)",
        "pairing": method, "clips": {"train": len(train), "test": len(test), "failed_train": len(train.failed),
                                     "failed_test": len(test.failed)},
        "batch_size": batch, "epochs": cfg.epochs, "steps": res.steps, "world": world,
        "train_clips_per_second": res.clips_per_second, "train_seconds": res.seconds,
        "final_val_loss": hist.val_loss[-1] if hist.val_loss else float("nan"),
        "image_encoder": type(encoder).__name__, "generator": type(generator).__name__, "device": device,
        "data": str(data), "index": str(index) if index else None, "ssl": str(ssl_path) if ssl_path else None,
    })  # fmt: skip
    metrics["seconds"] = time.time() - t0
    metrics["peak_memory_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    metrics["config"] = asdict(cfg)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
