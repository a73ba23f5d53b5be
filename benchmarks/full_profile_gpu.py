"""GPU benchmark of the full profile (issue 8): sound -> image latency and audio-encoder training throughput.

**Status: this script has NOT yet been run on a GPU.** It was written and checked on a 2-core CPU machine without a
GPU; only its ``--tiny`` CPU mode has been run. The first GPU run should be read with that in mind (e.g. a
``torch.compile`` mode that fails falls back to eager and says so in the output).

What it measures, on one card, in one run, with random weights of the real architecture (no download):

1. **Sound -> image latency** at the authors' settings: Stable unCLIP 2.1 (SD 2.1 unCLIP-H UNet / VAE / OpenCLIP-H
   text encoder built from :data:`s2v_lib.full.SD21_UNCLIP_CONFIGS`), 768 x 768 px, 20 DDIM steps, guidance 10 with
   zero image embeddings as the unconditional branch, noise_level 0, empty prompt, fp16:

   * ``diffusers_fp16`` - the plain ``StableUnCLIPImg2ImgPipeline`` call (the reference; the issue measured 0.60 s
     per image at batch 1 on an H200);
   * ``s2v_eager`` - :class:`s2v_lib.full.StableUnCLIPGenerator`'s own loop (cached empty-prompt embedding, both
     guidance branches and several sounds in one UNet batch), no compilation;
   * ``s2v_compiled`` - the same after ``optimize()`` (channels-last, TF32, ``torch.compile`` of UNet and VAE decoder;
     ``--compile-mode reduce-overhead`` adds CUDA graphs).

   Seconds per image at batch 1 and at ``--batch`` sounds per call, plus how far the compiled pictures are from the
   plain pipeline's (mean |difference| in uint8 levels; fp16 kernels differ, so not 0).
   Goal (issue 8): <= 0.30 s per image without changing steps, resolution or guidance.

2. **Audio-encoder training throughput** from a feature cache: a :class:`s2v_lib.video.FeatureCache` of
   ``--train-clips`` clips (10 s 16 kHz float16 audio + 1024-d targets, random) is written to disk and memory-mapped;
   :func:`s2v_lib.distributed.train_ddp` trains ``AudioEncoder.paper()`` (ResNet-18, 512 -> 1024 -> ReLU -> 1024) with
   the paper's InfoNCE-L2 loss, the paper front end (257 x 1004 log-power spectrograms) computed on the GPU, bf16
   autocast and channels-last. Clips per second end to end (disk/page cache -> pinned memory -> GPU -> STFT -> step).
   Goal (issue 8): >= 2,400 clips/s.

Usage::

    python benchmarks/full_profile_gpu.py --out runs/bench-full.json            # a GPU machine (~5-10 min)
    python benchmarks/full_profile_gpu.py --tiny                                # CPU smoke test (seconds)
    torchrun --nproc_per_node=8 benchmarks/full_profile_gpu.py --skip-generation # training throughput on 8 GPUs

Prints one JSON object (and writes it to ``--out``) with the card's name, versions and every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from s2v_lib import distributed as D  # noqa: E402
from s2v_lib import full  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int) -> tuple[float, object]:
    """Median wall seconds of ``repeats`` calls (after the caller's warm-up) and the last result."""
    times, out = [], None
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def realistic_embeds(gen: full.StableUnCLIPGenerator, b: int, seed: int = 0) -> torch.Tensor:
    """Random embeddings with the statistics the normaliser holds (as CLIP image embeddings would have)."""
    norm = gen.pipe.image_normalizer
    g = torch.Generator().manual_seed(seed)
    return norm.mean.detach().float().cpu() + norm.std.detach().float().cpu() * torch.randn(b, gen.emb_dim, generator=g)


def bench_generation(args, device: torch.device) -> dict:
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    t0 = time.perf_counter()
    pipe = full.build_stable_unclip_pipeline("tiny" if args.tiny else "sd21", device=str(device), dtype=dtype)
    gen = full.StableUnCLIPGenerator(pipe, steps=args.steps, guidance=args.guidance, batch_size=args.batch)
    res: dict = {"build_seconds": round(time.perf_counter() - t0, 2), "size_px": gen.height, "steps": args.steps,
                 "guidance": args.guidance, "dtype": str(dtype), "batch": args.batch,
                 "unet_params_M": round(sum(p.numel() for p in pipe.unet.parameters()) / 1e6, 1)}  # fmt: skip
    e1, eb = realistic_embeds(gen, 1), realistic_embeds(gen, args.batch, seed=1)

    def run(engine, e):
        return lambda: gen.generate(e, n=1, seed=0, engine=engine)

    # 1. the plain diffusers pipeline (reference), batch 1
    run("diffusers", e1)()  # warm-up
    s, ref = timed(run("diffusers", e1), device, args.repeats)
    res["diffusers_fp16_s_per_image_b1"] = round(s, 4)
    # 2. our loop, eager
    run("s2v", e1)()
    s, eager = timed(run("s2v", e1), device, args.repeats)
    res["s2v_eager_s_per_image_b1"] = round(s, 4)
    res["s2v_eager_vs_diffusers_mean_abs_uint8"] = float(np.abs(eager.astype(int) - ref).mean())
    run("s2v", eb)()
    s, _ = timed(run("s2v", eb), device, max(1, args.repeats // 2))
    res[f"s2v_eager_s_per_image_b{args.batch}"] = round(s / args.batch, 4)
    # 3. our loop, compiled
    if args.compile_mode != "none":
        mode = None if args.compile_mode == "default" else args.compile_mode
        try:
            gen.optimize(compile=True, mode=mode)
            t0 = time.perf_counter()
            run("s2v", e1)()
            run("s2v", e1)()
            res["compile_warmup_seconds_b1"] = round(time.perf_counter() - t0, 1)
            s, comp = timed(run("s2v", e1), device, args.repeats)
            res["s2v_compiled_s_per_image_b1"] = round(s, 4)
            res["s2v_compiled_vs_diffusers_mean_abs_uint8"] = float(np.abs(comp.astype(int) - ref).mean())
            t0 = time.perf_counter()
            run("s2v", eb)()
            run("s2v", eb)()
            res[f"compile_warmup_seconds_b{args.batch}"] = round(time.perf_counter() - t0, 1)
            s, _ = timed(run("s2v", eb), device, max(1, args.repeats // 2))
            res[f"s2v_compiled_s_per_image_b{args.batch}"] = round(s / args.batch, 4)
            res["compile_mode"] = args.compile_mode
        except Exception as err:  # report and keep the eager numbers
            res["compile_error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
    best = min(v for k, v in res.items() if k.startswith("s2v_") and "_s_per_image_" in k)
    res["best_s2v_s_per_image"] = best
    res["goal_s_per_image"] = 0.30
    res["best_speedup_per_image_vs_diffusers_b1"] = round(res["diffusers_fp16_s_per_image_b1"] / best, 2)
    gen = pipe = None  # free the GPU memory before the training benchmark
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return res


def bench_training(args, device: torch.device) -> dict:
    from s2v_lib.audio import FrontEnd
    from s2v_lib.audio_encoder import AudioEncoder
    from s2v_lib.losses import infonce_l2
    from s2v_lib.video import FeatureCache

    rank, world = D.dist_info()
    if args.tiny:
        front, model, dim = FrontEnd.preset("toy"), AudioEncoder(emb_dim=16, hidden=32, front_end="toy"), 16
    else:
        front, model, dim = FrontEnd.preset("paper"), AudioEncoder.paper(), 1024
    n = args.train_clips
    folder = Path(args.cache_dir or tempfile.gettempdir()) / f"s2v-bench-cache-{n}-{front.n_samples}-{dim}"
    t0 = time.perf_counter()
    if rank == 0 and not (folder / "ids.json").exists():
        rng = np.random.default_rng(0)
        audio = np.empty((n, front.n_samples), np.float16)
        for i in range(0, n, 256):  # noise at varied levels, written in blocks to bound memory
            m = min(256, n - i)
            audio[i : i + m] = (rng.standard_normal((m, front.n_samples), np.float32)
                                * rng.uniform(0.01, 0.5, (m, 1))).astype(np.float16)  # fmt: skip
        embeds = rng.standard_normal((n, 1, dim), np.float32)
        FeatureCache.write(folder, [f"clip{i}" for i in range(n)], embeds, np.zeros((n, 1)), audio, {"synthetic": True})
    D.barrier()
    cache = FeatureCache(folder)
    res = {"cache_write_seconds": round(time.perf_counter() - t0, 1), "clips_in_cache": n,
           "cache_GB": round(sum(f.stat().st_size for f in folder.iterdir()) / 1e9, 2), "world": world,
           "batch_size": args.train_batch, "amp": args.amp if device.type == "cuda" else None,
           "spectrogram": list(front.shape)}  # fmt: skip
    kw = dict(batch_size=args.train_batch, transform=D.spectrogram_transform(front), device=device, seed=0,
              amp=args.amp if device.type == "cuda" else None, channels_last=device.type == "cuda",
              compile=args.compile_train, epochs=10_000)  # fmt: skip
    torch.manual_seed(0)
    warm = D.train_ddp(model, infonce_l2, cache.audio, cache.embeds[:, 0], max_steps=args.train_warmup, **kw)
    run = D.train_ddp(warm.model, infonce_l2, cache.audio, cache.embeds[:, 0], max_steps=args.train_steps,
                      max_seconds=args.train_seconds, **kw)  # fmt: skip
    res.update(steps=run.steps, seconds=round(run.seconds, 2), clips_per_second=round(run.clips_per_second, 1),
               goal_clips_per_second=2400, first_loss=round(run.losses[0], 4), last_loss=round(run.losses[-1], 4))  # fmt: skip
    if args.remove_cache and rank == 0:
        shutil.rmtree(folder, ignore_errors=True)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny random models on the CPU: a smoke test in seconds")
    p.add_argument("--device", default=None)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=4, help="sounds per call for the batched numbers")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--compile-mode", default="reduce-overhead",
                   help="torch.compile mode for the s2v engine: reduce-overhead (CUDA graphs), default, "
                        "max-autotune, max-autotune-no-cudagraphs, or none")  # fmt: skip
    p.add_argument("--skip-generation", action="store_true")
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--train-clips", type=int, default=4096)
    p.add_argument("--train-batch", type=int, default=256, help="global batch (the paper uses 64)")
    p.add_argument("--train-warmup", type=int, default=10)
    p.add_argument("--train-steps", type=int, default=200)
    p.add_argument("--train-seconds", type=float, default=60.0)
    p.add_argument("--amp", default="bf16", choices=("bf16", "fp16"))
    p.add_argument("--compile-train", action="store_true")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--remove-cache", action="store_true")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.tiny:
        args.device = args.device or "cpu"
        args.repeats = min(args.repeats, 2)
        args.batch = min(args.batch, 2)
        args.train_clips, args.train_batch = min(args.train_clips, 64), min(args.train_batch, 16)
        args.train_warmup, args.train_steps, args.compile_mode = 1, min(args.train_steps, 3), "none"
        args.remove_cache = True
    info = D.init_distributed(device=args.device)
    device = info.device
    import diffusers

    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
              "tiny": args.tiny, "torch": torch.__version__, "diffusers": diffusers.__version__,
              "gpu_run_verified": False}  # fmt: skip
    if not args.skip_generation and info.is_main:
        report["generation"] = bench_generation(args, device)
    if not args.skip_training:
        report["training"] = bench_training(args, device)
    if info.is_main:
        text = json.dumps(report, indent=1)
        print(text)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(text + "\n")
    D.shutdown()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("S2V_QUIET", "1")
    sys.exit(main())
