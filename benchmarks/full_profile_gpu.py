"""GPU benchmark of the full profile: sound -> 768 px picture latency, and audio-encoder training throughput.

**Status: not yet run on a GPU.** Written and checked on a 2-core CPU machine without a GPU; only the ``--tiny`` CPU
mode has run. No number in this repository about a GPU is a measurement until a JSON written by this script on that
GPU is committed under ``benchmarks/results/``.

Two separate invocations, each meant to fit 8 minutes on an H100 including ``torch.compile``::

    python benchmarks/full_profile_gpu.py generation     # Stable unCLIP 2.1 at the authors' settings
    python benchmarks/full_profile_gpu.py training       # AudioEncoder.paper() from a memory-mapped feature cache
    python benchmarks/full_profile_gpu.py generation --tiny   # CPU smoke test (seconds)
    torchrun --nproc_per_node=8 benchmarks/full_profile_gpu.py training   # training throughput on 8 GPUs

Both write (and after **every** phase rewrite) ``benchmarks/results/<card>-<date>.json`` (or ``--out``), merging with
what the other invocation wrote there, so an interrupted run keeps what it measured. Top-level keys: ``device``,
``seconds_per_image`` (our best at the authors' settings), ``reference_seconds_per_image`` (the plain diffusers fp16
pipeline at the same batch, uncompiled), ``train_clips_per_second``; the rows are under ``generation`` / ``training``.

**Generation** (random weights of the real architecture, :data:`s2v_lib.full.SD21_UNCLIP_CONFIGS`: 768 x 768 px,
20 DDIM steps, guidance 10 with zero image embeddings as the unconditional branch, noise_level 0, empty prompt, fp16;
no download). The global switches (TF32, cuDNN autotuning: :func:`s2v_lib.full.fast_gpu_flags`) are set once, before
the first row, and never changed. Rows, each at batch 1 and at ``--batch`` sounds per call:

* ``diffusers_eager``: the plain ``StableUnCLIPImg2ImgPipeline`` call, the reference (the issue's H200 figures:
  0.60 s per image at batch 1, 0.31 at batch 8);
* ``s2v_eager``: :class:`s2v_lib.full.StableUnCLIPGenerator`'s own loop (cached empty-prompt embedding, both
  guidance branches and all sounds in one UNet batch);
* after ``optimize()`` compiles the UNet and the VAE decoder *in place* (``--compile-mode``, default
  ``reduce-overhead`` = CUDA graphs): ``s2v_compiled`` and ``diffusers_compiled`` (the plain pipeline call now runs
  the same compiled modules).

Each row: warm-up calls (their time is recorded: compilation), then the median of ``--repeats`` timed calls, seconds
per image, peak GPU memory, and a NaN/inf check of the pictures (``nonfinite`` rows are never the best). Rows past
``--budget`` seconds are skipped and marked so. Goal: <= 0.30 s per image on the measured card.

**Training**: a :class:`s2v_lib.video.FeatureCache` of ``--train-clips`` random clips (10 s of float16 16 kHz audio +
1024-d targets) written to disk and memory-mapped; :func:`s2v_lib.distributed.train_ddp` trains
``AudioEncoder.paper()`` with InfoNCE-L2, the paper front end on the GPU, ``amp="auto"`` (bf16 from Ampere on),
channels-last. Clips per second end to end (page cache -> pinned memory -> GPU -> spectrogram -> step). Goal:
>= 2,400 clips/s on one card.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
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

RESULTS = Path(__file__).resolve().parent / "results"
GOALS = {"seconds_per_image": 0.30, "train_clips_per_second": 2400}


# ----------------------------------------------------------------------------------------------------------------
# the results file


def card_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")


def results_path(device: torch.device, tiny: bool = False) -> Path:
    """``benchmarks/results/<card>-<date>.json``, e.g. ``nvidia-h100-80gb-hbm3-2026-12-03.json``."""
    slug = re.sub(r"[^a-z0-9]+", "-", card_name(device).lower()).strip("-") or "cpu"
    return RESULTS / f"{slug}{'-tiny' if tiny else ''}-{datetime.date.today().isoformat()}.json"


def update_results(path: Path, section: str | None, data: dict, top: dict | None = None) -> dict:
    """Merge ``data`` into ``path[section]`` (and ``top`` into the top level) and rewrite the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    report = json.loads(path.read_text()) if path.exists() else {}
    if section is not None:
        report[section] = {**report.get(section, {}), **data}
    report.update(top or {})
    report["updated"] = datetime.datetime.now().isoformat(timespec="seconds")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, path)
    return report


def environment(device: torch.device, tiny: bool) -> dict:
    import diffusers

    return {"device": card_name(device), "tiny": tiny, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "cuda": torch.version.cuda, "measured_on_gpu": device.type == "cuda" and not tiny}  # fmt: skip


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gb(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


# ----------------------------------------------------------------------------------------------------------------
# generation


def realistic_embeds(gen: full.StableUnCLIPGenerator, b: int, seed: int = 0) -> torch.Tensor:
    """Random embeddings with the statistics the normaliser holds (as CLIP image embeddings would have)."""
    norm = gen.pipe.image_normalizer
    g = torch.Generator().manual_seed(seed)
    return norm.mean.detach().float().cpu() + norm.std.detach().float().cpu() * torch.randn(b, gen.emb_dim, generator=g)


def diffusers_call(gen: full.StableUnCLIPGenerator, e: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The plain pipeline, ``len(e)`` sounds in one call, the authors' settings: float pictures [b, 3, H, W]."""
    b = len(e)
    return gen.pipe(image_embeds=e.to(gen.device, gen.dtype), prompt=[gen.prompt] * b, noise_level=gen.noise_level,
                    num_inference_steps=gen.steps, guidance_scale=gen.guidance, num_images_per_prompt=1,
                    height=gen.height, width=gen.width, generator=torch.Generator().manual_seed(seed),
                    output_type="pt").images  # fmt: skip


def s2v_call(gen: full.StableUnCLIPGenerator, e: torch.Tensor, seed: int = 0) -> np.ndarray:
    return gen.generate(e, n=1, seed=seed, batch_size=len(e))


def run_row(name: str, fn, e: torch.Tensor, device: torch.device, repeats: int, warmups: int) -> tuple[dict, object]:
    """Warm-up calls (timed together: compilation), then the median of ``repeats`` calls; NaN check; peak memory."""
    reset_peak(device)
    row: dict = {"batch": len(e)}
    try:
        t0 = time.perf_counter()
        for _ in range(warmups):
            fn(e)
        sync(device)
        row["warmup_seconds"] = round(time.perf_counter() - t0, 2)
        times, out = [], None
        for _ in range(repeats):
            sync(device)
            t = time.perf_counter()
            out = fn(e)
            sync(device)
            times.append(time.perf_counter() - t)
        row["seconds_per_call"] = round(float(np.median(times)), 4)
        row["seconds_per_image"] = round(float(np.median(times)) / len(e), 4)
        if torch.is_tensor(out):
            row["nonfinite"] = int((~torch.isfinite(out.flatten(1)).all(1)).sum())
            out = (out.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()[:, None]
        else:
            row["nonfinite"] = 0
    except FloatingPointError as err:  # our engine refuses NaN pictures
        row.update(nonfinite=len(e), error=str(err)[:300])
        out = None
    except Exception as err:  # report and go on with the other rows
        row["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        out = None
    row["peak_gpu_gb"] = peak_gb(device)
    print(f"  {name:28s} {json.dumps(row)}", flush=True)
    return row, out


def bench_generation(args, device: torch.device, path: Path) -> dict:
    tiny = args.tiny
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    if device.type == "cuda":
        full.fast_gpu_flags()  # once, for every row alike
    t_start = time.perf_counter()
    reset_peak(device)
    pipe = full.build_stable_unclip_pipeline("tiny" if tiny else "sd21", device=str(device), dtype=dtype)
    gen = full.StableUnCLIPGenerator(pipe, vae_batch_size=args.batch)
    setup = {"build_seconds": round(time.perf_counter() - t_start, 1), "size_px": gen.height, "steps": gen.steps,
             "guidance": gen.guidance, "noise_level": gen.noise_level, "dtype": str(dtype).replace("torch.", ""),
             "batch": args.batch, "unet_params_M": round(sum(p.numel() for p in pipe.unet.parameters()) / 1e6, 1),
             "weights_gpu_gb": peak_gb(device), "compile_mode": args.compile_mode,
             "global_flags": {"tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                              "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                              "cudnn_benchmark": torch.backends.cudnn.benchmark}}  # fmt: skip
    update_results(path, "generation", {"setup": setup, "rows": {}})
    rows: dict = {}
    batches = sorted({1, args.batch})
    embeds = {b: realistic_embeds(gen, b, seed=b) for b in batches}
    pictures: dict = {}

    def row(name, fn, b, warmups):
        key = f"{name}_b{b}"
        if time.perf_counter() - t_start > args.budget:
            rows[key] = {"batch": b, "skipped": f"time budget of {args.budget:.0f} s spent"}
        else:
            rows[key], pictures[key] = run_row(key, fn, embeds[b], device, args.repeats, warmups)
        update_results(path, "generation", {"rows": rows})

    for b in batches:
        row("diffusers_eager", lambda e: diffusers_call(gen, e), b, 1)
        row("s2v_eager", lambda e: s2v_call(gen, e), b, 1)
    if args.compile_mode != "none":
        gen.optimize(compile=True, mode=None if args.compile_mode == "default" else args.compile_mode)
        for b in batches:
            row("s2v_compiled", lambda e: s2v_call(gen, e), b, 2)
            row("diffusers_compiled", lambda e: diffusers_call(gen, e), b, 2)
    # the two engines draw the same noise for one sound: how far apart are their pictures (fp16 kernels differ)
    agree = {}
    for kind in ("eager", "compiled"):
        a, r = pictures.get(f"s2v_{kind}_b1"), pictures.get(f"diffusers_{kind}_b1")
        if a is not None and r is not None:
            agree[f"s2v_vs_diffusers_{kind}_mean_abs_uint8"] = round(
                float(np.abs(a.astype(int) - r.astype(int)).mean()), 3
            )
    ok = {k: v for k, v in rows.items() if "seconds_per_image" in v and not v.get("nonfinite")}
    ours = {k: v for k, v in ok.items() if k.startswith("s2v_")}
    summary: dict = {"agreement": agree, "total_seconds": round(time.perf_counter() - t_start, 1)}
    top: dict = {}
    if ours:
        best = min(ours, key=lambda k: ours[k]["seconds_per_image"])
        b = ours[best]["batch"]
        ref = rows.get(f"diffusers_eager_b{b}", {})
        summary.update(best_row=best, best_batch=b)
        top = {"seconds_per_image": ours[best]["seconds_per_image"],
               "reference_seconds_per_image": ref.get("seconds_per_image"),
               "reference": f"diffusers_eager_b{b}: plain StableUnCLIPImg2ImgPipeline, {setup['dtype']}, batch {b}, not compiled",
               "seconds_per_image_row": best, "goal_seconds_per_image": GOALS["seconds_per_image"]}  # fmt: skip
    update_results(path, "generation", summary, top)
    gen = pipe = None  # free the GPU for what follows
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


# ----------------------------------------------------------------------------------------------------------------
# training


def bench_training(args, device: torch.device, path: Path | None) -> dict:
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
        from s2v_lib.video import CacheWriter

        rng = np.random.default_rng(0)
        with CacheWriter(folder, n, k=1, dim=dim, samples=front.n_samples) as w:
            for i in range(0, n, 256):  # noise at varied levels, written in blocks: bounded memory
                m = min(256, n - i)
                audio = rng.standard_normal((m, front.n_samples), np.float32) * rng.uniform(0.01, 0.5, (m, 1))
                w.add_rows([f"clip{j}" for j in range(i, i + m)], rng.standard_normal((m, 1, dim), np.float32),
                           np.zeros((m, 1)), audio.astype(np.float16))  # fmt: skip
            w.commit({"synthetic": True})
    D.barrier()
    cache = FeatureCache(folder)
    res = {"cache_write_seconds": round(time.perf_counter() - t0, 1), "clips_in_cache": n,
           "cache_gb": round(sum(f.stat().st_size for f in folder.iterdir()) / 1e9, 2), "world": world,
           "batch_size": args.train_batch, "spectrogram": list(front.shape), "amp": args.amp,
           "amp_dtype": str(D.autocast_dtype(args.amp, device)), "compile": args.compile_train}  # fmt: skip
    if path is not None and rank == 0:
        update_results(path, "training", res)
    kw = dict(batch_size=args.train_batch, transform=D.spectrogram_transform(front), device=device, seed=0,
              amp=args.amp, channels_last=device.type == "cuda", compile=args.compile_train, epochs=10_000)  # fmt: skip
    torch.manual_seed(0)
    reset_peak(device)
    t0 = time.perf_counter()
    warm = D.train_ddp(model, infonce_l2, cache.audio, cache.embeds[:, 0], max_steps=args.train_warmup, **kw)
    res["warmup_seconds"] = round(time.perf_counter() - t0, 1)
    run = D.train_ddp(warm.model, infonce_l2, cache.audio, cache.embeds[:, 0], max_steps=args.train_steps,
                      max_seconds=args.train_seconds, **kw)  # fmt: skip
    finite = bool(np.all(np.isfinite(run.losses)))
    res.update(steps=run.steps, seconds=round(run.seconds, 2), clips_per_second=round(run.clips_per_second, 1),
               stopped_by_time=run.stopped_early, losses_finite=finite, first_loss=round(run.losses[0], 4),
               last_loss=round(run.losses[-1], 4), peak_gpu_gb=peak_gb(device),
               goal_clips_per_second=GOALS["train_clips_per_second"])  # fmt: skip
    if path is not None and rank == 0:
        top = {"train_clips_per_second": res["clips_per_second"] if finite else None, "train_world": world}
        update_results(path, "training", res, top)
    if args.remove_cache and rank == 0:
        shutil.rmtree(folder, ignore_errors=True)
    return res


# ----------------------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("phase", choices=("generation", "training"))
    p.add_argument("--tiny", action="store_true", help="tiny random models on the CPU: a smoke test in seconds")
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="results JSON (default: benchmarks/results/<card>-<date>.json)")
    p.add_argument("--batch", type=int, default=8, help="sounds per call for the batched rows")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile-mode", default="reduce-overhead",
                   help="torch.compile mode: reduce-overhead (CUDA graphs), default, max-autotune-no-cudagraphs, none")  # fmt: skip
    p.add_argument("--budget", type=float, default=420.0, help="seconds after which remaining rows are skipped")
    p.add_argument("--train-clips", type=int, default=4096)
    p.add_argument("--train-batch", type=int, default=256, help="global batch (the paper uses 64)")
    p.add_argument("--train-warmup", type=int, default=10)
    p.add_argument("--train-steps", type=int, default=200)
    p.add_argument("--train-seconds", type=float, default=90.0)
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16"))
    p.add_argument("--compile-train", action="store_true")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--remove-cache", action="store_true")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.tiny:
        args.device = args.device or "cpu"
        args.repeats, args.batch, args.compile_mode = min(args.repeats, 2), min(args.batch, 2), "none"
        args.train_clips, args.train_batch = min(args.train_clips, 64), min(args.train_batch, 16)
        args.train_warmup, args.train_steps, args.remove_cache = 1, min(args.train_steps, 3), True
    info = D.init_distributed(device=args.device)
    device = info.device
    path = Path(args.out) if args.out else results_path(device, args.tiny)
    if info.is_main:
        update_results(path, None, {}, environment(device, args.tiny))
        print(f"writing {path}", flush=True)
    if args.phase == "generation":
        if info.is_main:
            bench_generation(args, device, path)
    else:
        bench_training(args, device, path if info.is_main else None)
    if info.is_main:
        print(path.read_text())
    D.shutdown()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("S2V_QUIET", "1")
    sys.exit(main())
