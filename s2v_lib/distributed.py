"""Scale-out on PyTorch's own engine: feature precomputation sharded by rank, and DDP training on cached features.

Run either under ``torchrun`` (which sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT); without it
everything runs in one process and gives the same result::

    torchrun --nproc_per_node=8 -m s2v_lib.distributed precompute --videos vggsound/video --index vggsound.csv \\
        --split train --ssl top1_boxes_top10_moments.json --out cache/vggsound-train
    torchrun --nproc_per_node=8 -m s2v_lib.distributed train --cache cache/vggsound-train \\
        --model s2v_lib.audio_encoder:AudioEncoder.paper --loss s2v_lib.losses:infonce_l2 --frontend paper \\
        --epochs 50 --batch-size 64 --checkpoint runs/audio-encoder.ckpt --out runs/audio-encoder.safetensors

**Features** (:func:`precompute_features_distributed`): rank r encodes chunks r, r + W, ... of the index (each chunk
is one encoder batch, identical to the single-process run's), writes its shard, and rank 0 merges the shards into the
cache in index order: the result equals a one-process run. Rows stream to disk (``video.CacheWriter``), so memory
stays bounded at any scale (VGGSound's ~200k clips are ~64 GB of float16 audio). The default encoder is Stable
unCLIP's own ViT-H/14 image tower: the anchors are the generator's own image embeddings.

**Training** (:func:`train_ddp`): any ``nn.Module`` and any ``loss(outputs, targets) -> scalar``. Every step takes
one *global* batch of ``batch_size`` rows (the same permutation on every rank, seeded per epoch) and gives each rank
its contiguous slice. With ``gather=True`` (default) the outputs and targets of all ranks are gathered (outputs with
their gradient path) before the loss, so a contrastive loss such as the paper's InfoNCE sees the whole global batch
of negatives, and the update equals the single-process update with the same global batch. With ``gather=False`` each
rank computes the loss on its slice and DDP averages the gradients (equal to one process for per-sample mean losses).
BatchNorm statistics are per rank unless ``sync_bn`` (CUDA only); models with BatchNorm therefore match a
single-process run only approximately. All ranks agree on when to stop (``max_seconds``), and ``checkpoint`` makes
a run resumable (every ``checkpoint_every`` steps), also on another number of processes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

# ----------------------------------------------------------------------------------------------------------------
# process group


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: str | None = None, device: str | None = None, timeout_s: float = 3600) -> DistInfo:
    """Join the process group torchrun describes (no-op in a plain single process); pick this rank's device."""
    import datetime

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    dev = torch.device(f"cuda:{local_rank}") if cuda else torch.device(device or "cpu")
    if cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if cuda else "gloo"), timeout=datetime.timedelta(seconds=timeout_s))
    rank, world = dist_info()
    return DistInfo(rank, world, local_rank, dev)


def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    if dist_info()[1] > 1:
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------------------------
# feature precomputation


def precompute_features_distributed(folder, encoder, out: str | Path, **kwargs):
    """:func:`s2v_lib.video.precompute_features` split over the ranks of the process group; returns the merged
    :class:`~s2v_lib.video.FeatureCache` on every rank (identical to a single-process run)."""
    from .video import FeatureCache, merge_caches, precompute_features

    rank, world = dist_info()
    out = Path(out)
    if world == 1:
        return precompute_features(folder, encoder, out, **kwargs)
    shards = [out.with_name(f".{out.name}.shard{r}of{world}") for r in range(world)]
    precompute_features(folder, encoder, shards[rank], rank=rank, world=world, **kwargs)
    barrier()
    if rank == 0:
        meta = {"world_used": world}
        merge_caches(shards, out, order=[r.clip_id for r in folder.records], meta=meta)
        for s in shards:
            shutil.rmtree(s, ignore_errors=True)
    barrier()
    return FeatureCache(out)


# ----------------------------------------------------------------------------------------------------------------
# training


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sends each rank the summed gradient of its own slice (all_reduce, any backend)."""

    @staticmethod
    def forward(ctx, x):
        world = dist.get_world_size()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.n = dist.get_rank(), len(x)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather_batch(x: torch.Tensor, with_grad: bool = True) -> torch.Tensor:
    """Concatenate ``x`` from all ranks in rank order (equal shapes); differentiable when ``with_grad``."""
    if dist_info()[1] == 1:
        return x
    if with_grad and x.requires_grad:
        return _GatherWithGrad.apply(x)
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


@dataclass
class TrainResult:
    model: nn.Module
    losses: list[float]  # one per global step since step 0 (a resumed run includes the steps before the resume)
    steps: int  # global steps done in all (including those before a resume)
    seconds: float  # wall time of this invocation
    clips: int  # global clips processed by this invocation (all ranks)
    resumed_from: int = 0  # the step this invocation started from (0: a fresh run)
    stopped_early: bool = False  # max_seconds ended it (every rank at the same step)

    @property
    def clips_per_second(self) -> float:
        return self.clips / self.seconds if self.seconds > 0 else 0.0


def _rows(a, idx: np.ndarray) -> torch.Tensor:
    x = a[idx] if torch.is_tensor(a) else torch.from_numpy(np.ascontiguousarray(np.asarray(a[idx])))
    return x


def autocast_dtype(amp: str | None, device: torch.device) -> torch.dtype | None:
    """``amp``: ``"bf16"``, ``"fp16"``, None (float32) or ``"auto"``: the card's fast half type (bf16 from Ampere on,
    fp16 with a GradScaler on older cards such as a Colab T4), float32 on the CPU."""
    if amp == "auto":
        from .full import half_dtype

        dt = half_dtype(device) if device.type == "cuda" else torch.float32
        return None if dt == torch.float32 else dt
    try:
        return {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[amp]
    except KeyError:
        raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or None, not {amp!r}") from None


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank if ``flag`` is True on any (one all_reduce; the plain flag in a single process)."""
    if dist_info()[1] == 1:
        return flag
    where = torch.device(device) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([1.0 if flag else 0.0], device=where)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def augment_seed(seed: int, rank: int, step: int) -> int:
    """The seed of the augmentation generator for one rank's batch at one global step: from the run's seed and the
    rank, advanced by the step (so a resumed run augments exactly as an uninterrupted one)."""
    return (seed * 1_000_003 + rank * 7_919) * 1_000_000 + step


def _checkpoint_key(n: int, batch_size: int, seed: int, gather: bool) -> dict:
    """What must match for a checkpoint to continue a run: the data order depends on these (not on the world size)."""
    return {"clips": int(n), "batch_size": int(batch_size), "seed": int(seed), "gather": bool(gather)}


def train_ddp(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], inputs, targets, *,
              epochs: int = 1, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 1e-5,
              optimizer: Callable | None = None, seed: int = 1234, transform: Callable | None = None,
              augment: bool = True, device: str | torch.device | None = None, gather: bool = True,
              amp: str | None = None, channels_last: bool = False, compile: bool = False, sync_bn: bool = True,
              max_steps: int | None = None, max_seconds: float | None = None, prefetch: bool = True,
              checkpoint: str | Path | None = None, checkpoint_every: int = 500,
              on_step: Callable[[int, float], None] | None = None) -> TrainResult:  # fmt: skip
    """Train ``model`` so that ``loss_fn(model(augment(transform(inputs[i]))), targets[i])`` falls, on 1 or many
    processes.

    ``inputs`` / ``targets``: arrays or tensors with one row per clip (numpy memory maps from a
    :class:`~s2v_lib.video.FeatureCache` work: rows are read per batch, one batch ahead on a thread). ``transform``
    runs on the device (e.g. waveform -> spectrogram). ``augment`` applies the course's label-preserving augmentation
    (:func:`s2v_lib.train.augment_spectrograms`, the same as the single-process loop) to spectrogram batches
    [B, 1, F, T] after ``transform``, with a CPU generator seeded from ``seed``, the rank and the step
    (:func:`augment_seed`); other inputs are left as they are. ``optimizer(params)`` defaults to the paper's
    Adam(lr 1e-3, weight decay 1e-5). ``amp``: ``"auto"`` | ``"bf16"`` | ``"fp16"`` | None (:func:`autocast_dtype`)
    autocasts the forward pass (the loss is computed in float32); fp16 adds a GradScaler.

    **Stopping.** ``max_steps`` is the total number of global steps (a resumed run counts the steps done before);
    ``max_seconds`` limits this invocation's wall time, and all ranks agree on the step to stop at (one all_reduce
    per step), so no rank is left waiting in a collective.

    **Checkpoints.** With ``checkpoint`` (a path), rank 0 writes the model, optimizer, GradScaler, step and losses
    every ``checkpoint_every`` steps and at the end, atomically; a run given an existing checkpoint resumes from it
    and continues exactly as an uninterrupted run would (same data order and augmentation), on any number of
    processes as long as ``batch_size``, ``seed``, ``gather`` and the clip count are the same.

    The last incomplete global batch of each epoch is dropped. Returns the trained (unwrapped) model and the losses.
    """
    rank, world = dist_info()
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} must be divisible by the number of processes {world}")
    n = len(inputs)
    if len(targets) != n:
        raise ValueError(f"inputs ({n}) and targets ({len(targets)}) must have one row per clip")
    if n < batch_size:
        raise ValueError(f"{n} clips are fewer than one batch of {batch_size}")
    if device is None:
        device = (
            torch.device(f"cuda:{torch.cuda.current_device()}") if torch.cuda.is_available() else torch.device("cpu")
        )
    device = torch.device(device)
    amp_dtype = autocast_dtype(amp, device)
    augment_fn = None
    if augment:
        from .train import augment_spectrograms as augment_fn  # one augmentation for both training loops
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if world > 1 and sync_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    opt = (
        optimizer(model.parameters())
        if optimizer
        else torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    )
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    key = _checkpoint_key(n, batch_size, seed, gather)
    ckpt = Path(checkpoint) if checkpoint else None
    done: list[float] = []  # global losses of the steps before this invocation (and synced ones since)
    start = 0
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if json.loads(state["key"]) != key:
            raise ValueError(f"{ckpt}: a checkpoint of another run ({state['key']}; this run: {json.dumps(key)}); "
                             "delete it or pass another checkpoint path")  # fmt: skip
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start = int(state["step"])
        done = [float(v) for v in state["losses"]]
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    forward = torch.compile(net) if compile else net
    local = batch_size // world
    steps_per_epoch = n // batch_size
    total = epochs * steps_per_epoch if max_steps is None else min(epochs * steps_per_epoch, max_steps)
    pin = device.type == "cuda"

    def batches():
        for step in range(start, total):
            epoch, b = divmod(step, steps_per_epoch)
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).numpy()
            yield perm[b * batch_size : (b + 1) * batch_size][rank * local : (rank + 1) * local]

    def load(idx):
        x, y = _rows(inputs, idx), _rows(targets, idx)
        return (x.pin_memory(), y.pin_memory()) if pin else (x, y)

    pending_losses: list[torch.Tensor] = []

    def sync_losses() -> None:
        """Move this rank's pending losses into ``done`` as global means (a collective when gather=False)."""
        if not pending_losses:
            return
        stacked = torch.stack(pending_losses)
        if not gather and world > 1:
            dist.all_reduce(stacked)
            stacked = stacked / world
        done.extend(float(v) for v in stacked.cpu())
        pending_losses.clear()

    def save(step: int) -> None:
        sync_losses()  # every rank (a collective when gather=False)
        if rank != 0:
            return
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        tmp = ckpt.with_name(f".{ckpt.name}.tmp-{os.getpid()}")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None, "step": step, "losses": done,
                    "key": json.dumps(key)}, tmp)  # fmt: skip
        os.replace(tmp, ckpt)

    pool = None
    if prefetch:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(1)
    step, clips, stopped = start, 0, False
    net.train()
    t0 = time.time()
    try:
        it = batches()
        nxt = next(it, None)
        pending = pool.submit(load, nxt) if (pool and nxt is not None) else None
        while nxt is not None:
            x, y = pending.result() if pending else load(nxt)
            nxt = next(it, None)
            pending = pool.submit(load, nxt) if (pool and nxt is not None) else None
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True).float()
            if x.is_floating_point():
                x = x.float()
            if transform is not None:
                x = transform(x)
            if augment_fn is not None and x.ndim == 4:
                x = augment_fn(x, torch.Generator().manual_seed(augment_seed(seed, rank, step)))
            if channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                out = forward(x)
            out = out.float()
            if gather and world > 1:
                out, y = gather_batch(out, with_grad=True), gather_batch(y, with_grad=False)
            loss = loss_fn(out, y)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            step += 1
            clips += batch_size
            pending_losses.append(loss.detach())
            if on_step is not None:
                on_step(step, float(loss.detach()))
            if ckpt is not None and checkpoint_every > 0 and step % checkpoint_every == 0 and step < total:
                save(step)
            if max_seconds is not None and nxt is not None:  # every rank stops at the same step
                if any_rank(time.time() - t0 > max_seconds, device):
                    stopped = True
                    break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    seconds = time.time() - t0
    if ckpt is not None and step > start:
        save(step)
    sync_losses()
    return TrainResult(model=model, losses=done, steps=step, seconds=seconds, clips=clips, resumed_from=start,
                       stopped_early=stopped)  # fmt: skip


def spectrogram_transform(front) -> Callable[[torch.Tensor], torch.Tensor]:
    """``s2v_lib.audio.FrontEnd`` as a batch transform for :func:`train_ddp` (on the CPU or a GPU alike)."""
    return front  # FrontEnd builds its STFT window on the batch's device, so it runs on a GPU as is


# ----------------------------------------------------------------------------------------------------------------
# torchrun entry point


def _import(spec: str):
    """'package.module:attribute' -> the attribute."""
    import importlib

    if ":" not in spec:
        raise ValueError(f"expected 'module:attribute', got {spec!r}")
    module, attr = spec.split(":", 1)
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


UNCLIP_ENCODER = "unclip-vit-h-14"  # Stable unCLIP's own ViT-H/14 image tower (full.load_unclip_image_encoder)


def _load_encoder(spec: str, device):
    if ":" in spec:
        return _import(spec)()
    if spec == UNCLIP_ENCODER:
        from .full import load_unclip_image_encoder

        return load_unclip_image_encoder(device=device)
    from .registry import load_image_encoder

    return load_image_encoder(spec, device=str(device))


def _cmd_precompute(args) -> int:
    from .video import VideoFolder, read_topk_json

    info = init_distributed(device=args.device)
    folder = VideoFolder(args.videos, args.index, split=args.split)
    topk = read_topk_json(args.ssl, frame_base=args.frame_base) if args.ssl else None
    encoder = _load_encoder(args.encoder, info.device)
    cache = precompute_features_distributed(folder, encoder, args.out, topk=topk, method=args.method, k=args.k,
                                            audio=not args.no_audio, batch_clips=args.batch_clips,
                                            workers=args.workers, size=args.size, progress=info.is_main)  # fmt: skip
    if info.is_main:
        summary = {"cache": str(cache.folder), "clips": len(cache), "failed": len(cache.failed), "world": info.world}
        if cache.failed:
            summary["failure_counts"] = cache.meta.get("failure_counts", {})
        if topk is not None and topk.skipped:
            summary["ssl_entries_skipped"] = len(topk.skipped)
        print(json.dumps(summary))
    shutdown()
    return 0


def _cmd_train(args) -> int:
    from .video import FeatureCache

    info = init_distributed(device=args.device)
    torch.manual_seed(args.seed)
    cache = FeatureCache(args.cache)
    if cache.audio is None:
        raise SystemExit(f"{cache.folder}: the cache has no audio.npy (it was built with --no-audio)")
    model = _import(args.model)(**json.loads(args.model_kwargs))
    loss_fn = _import(args.loss)
    transform = None
    if args.frontend != "none":
        from .audio import FrontEnd

        transform = spectrogram_transform(FrontEnd.preset(args.frontend))
    targets = cache.embeds[:, 0] if cache.embeds.ndim == 3 else cache.embeds
    amp = None if args.amp == "none" else args.amp
    result = train_ddp(model, loss_fn, cache.audio, targets, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, weight_decay=args.weight_decay, seed=args.seed, transform=transform,
                       augment=not args.no_augment, device=info.device, amp=amp, max_steps=args.max_steps,
                       max_seconds=args.max_seconds, checkpoint=args.checkpoint,
                       checkpoint_every=args.checkpoint_every)  # fmt: skip
    if info.is_main:
        if args.out:
            from safetensors.torch import save_file

            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
            save_file(state, args.out, metadata={"model": args.model, "model_kwargs": args.model_kwargs,
                                                 "loss": args.loss, "steps": str(result.steps)})  # fmt: skip
        print(json.dumps({"steps": result.steps, "resumed_from": result.resumed_from,
                          "stopped_early": result.stopped_early,
                          "final_loss": result.losses[-1] if result.losses else None,
                          "clips_per_second": round(result.clips_per_second, 1), "world": info.world}))  # fmt: skip
    shutdown()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m s2v_lib.distributed", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pc = sub.add_parser("precompute", help="decode clips, select frames, encode them and cache the features")
    pc.add_argument("--videos", required=True, help="folder of clips (any depth)")
    pc.add_argument("--index", default=None, help="CSV index (default: read ids and starts from the file names)")
    pc.add_argument("--split", default=None)
    pc.add_argument("--ssl", default=None, help="SSL top-k JSON (needed for --method top1/topk)")
    pc.add_argument("--frame-base", default="auto", type=lambda v: v if v == "auto" else int(v),
                    help="how the SSL JSON numbers frames: 0, 1 or auto (see video.read_topk_json)")  # fmt: skip
    pc.add_argument("--method", default="top1", choices=("top1", "topk", "middle"))
    pc.add_argument("--k", type=int, default=1)
    pc.add_argument("--encoder", default=UNCLIP_ENCODER,
                    help=f"{UNCLIP_ENCODER} (Stable unCLIP's own ViT-H/14, repository S2V_UNCLIP_REPO), a registry "
                         "name (openclip-vit-h-14: open_clip's copy) or module:factory")  # fmt: skip
    pc.add_argument("--out", required=True)
    pc.add_argument("--batch-clips", type=int, default=16)
    pc.add_argument("--workers", type=int, default=4, help="decoding threads per process")
    pc.add_argument("--size", type=int, default=None, help="resize frames to this short side while decoding")
    pc.add_argument("--no-audio", action="store_true")
    pc.add_argument("--device", default=None)
    pc.set_defaults(func=_cmd_precompute)
    pt = sub.add_parser("train", help="train an audio encoder on a feature cache (DDP)")
    pt.add_argument("--cache", required=True)
    pt.add_argument("--model", required=True, help="module:factory of the audio encoder")
    pt.add_argument("--model-kwargs", default="{}")
    pt.add_argument("--loss", required=True, help="module:function, loss(outputs, targets) -> scalar")
    pt.add_argument("--frontend", default="paper", help="FrontEnd preset applied on the device, or 'none'")
    pt.add_argument("--epochs", type=int, default=50)
    pt.add_argument("--batch-size", type=int, default=64, help="global batch (all processes)")
    pt.add_argument("--lr", type=float, default=1e-3)
    pt.add_argument("--weight-decay", type=float, default=1e-5)
    pt.add_argument("--seed", type=int, default=1234)
    pt.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "bf16", "fp16", "none"),
        help="autocast: auto = bf16 on Ampere or newer, fp16 + GradScaler on older cards (T4), none on CPU",
    )
    pt.add_argument("--no-augment", action="store_true", help="no time-shift augmentation (train.augment_spectrograms)")
    pt.add_argument(
        "--max-steps", type=int, default=None, help="total global steps (a resumed run counts earlier ones)"
    )
    pt.add_argument("--max-seconds", type=float, default=None, help="wall-time limit of this run (ranks agree)")
    pt.add_argument("--checkpoint", default=None, help="checkpoint path: written periodically, resumed from if present")
    pt.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    pt.add_argument("--device", default=None)
    pt.add_argument("--out", default=None, help="where rank 0 saves the weights (.safetensors)")
    pt.set_defaults(func=_cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
