"""The full profile end to end on a GPU with random weights of the real architectures (no download).

**Status: not yet run on a GPU** (only ``--tiny`` has run, on a CPU). What it does:

1. writes a few synthetic mp4 clips in a VEGAS-style folder (one folder per label, no index), in several frame sizes
   (640x360, 480x640, 320x240), with one corrupt and one audio-less file among them (both must be skipped and counted);
2. builds Stable unCLIP 2.1 with random weights of the real architecture (SD 2.1 unCLIP-H UNet, VAE, OpenCLIP-H text
   tower, and the ViT-H/14 image tower: :func:`s2v_lib.full.build_stable_unclip_pipeline` ``("sd21",
   image_encoder="full")``) and saves it in fp16 as a local repository, with the ``fp16`` variant file names the hub
   uses, so that the real loading code reads it (``S2V_UNCLIP_REPO``);
3. runs ``run_full_demo`` on it (what ``S2V_PROFILE=full s2v demo --data DIR`` runs): anchors from the pipeline's own
   ViT-H, feature caches, a few epochs of the paper's audio encoder, pictures at 768 px, and records each stage's time
   and peak GPU memory into ``benchmarks/results/<card>-<date>.json`` (section ``end_to_end``).

``--emulate-t4`` makes the run take a Colab T4's path on a bigger card: fp16 (no bf16), the memory plan of a 15 GB
card, and a hard cap of 14 GB on what torch may allocate (``torch.cuda.set_per_process_memory_fraction``): a stage that
needs more fails with an out-of-memory error instead of passing. It measures memory, not a T4's speed.

    python benchmarks/full_profile_e2e.py --emulate-t4      # the Colab plan: every stage under 14 GB?
    python benchmarks/full_profile_e2e.py                   # the card's own path (bf16 on Ampere or newer)
    python benchmarks/full_profile_e2e.py --tiny            # CPU smoke test (tiny random models, about a minute)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from full_profile_gpu import environment, results_path, update_results  # noqa: E402

from s2v_lib import full  # noqa: E402

T4_CAP_GB = 14.0


def write_clips(root: Path, n: int, sizes, seconds: float = 3.0) -> None:
    """n clips in two label folders (a 300 Hz hum with reddish frames, a 1.2 kHz whistle with bluish ones), ``sizes``
    in turn; plus one corrupt and one audio-less file."""
    import av

    for i in range(n):
        label = ("hum", "whistle")[i % 2]
        path = root / label / "videos" / f"{label}{i:05d}.mp4"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        w, h = sizes[i % len(sizes)]
        colour = np.array([[200, 40 + i, 30], [30, 40 + i, 200]][i % 2], np.uint8)
        with av.open(str(path), "w") as out:
            vs = out.add_stream("libx264", rate=Fraction(25, 2))
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            aus = out.add_stream("aac", rate=22050)
            aus.layout = "stereo"
            for k in range(int(12.5 * seconds)):
                img = np.broadcast_to(colour, (h, w, 3)).copy()
                img[: h // 4, (k * 7) % w :] = 255  # something moves
                f = av.VideoFrame.from_ndarray(img, format="rgb24")
                f.pts, f.time_base = k, Fraction(2, 25)
                for p in vs.encode(f):
                    out.mux(p)
            for p in vs.encode():
                out.mux(p)
            t = np.arange(int(22050 * seconds)) / 22050
            tone = 0.3 * np.sin(2 * np.pi * (300.0, 1200.0)[i % 2] * (1 + 0.01 * i) * t)
            af = av.AudioFrame.from_ndarray(np.stack([tone, tone]).astype(np.float32), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 22050, 0
            for p in aus.encode(af):
                out.mux(p)
            for p in aus.encode():
                out.mux(p)
    (root / "hum" / "videos" / "broken00001.mp4").write_bytes(os.urandom(4096))
    silent = root / "whistle" / "videos" / "silent00001.mp4"
    if not silent.exists():
        with av.open(str(silent), "w") as out:
            vs = out.add_stream("libx264", rate=10)
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
            for k in range(20):
                f = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
                f.pts, f.time_base = k, Fraction(1, 10)
                for p in vs.encode(f):
                    out.mux(p)
            for p in vs.encode():
                out.mux(p)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny random models on the CPU")
    p.add_argument("--emulate-t4", action="store_true", help="fp16, a 15 GB card's memory plan, a 14 GB cap")
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--work", default=None, help="folder for the clips, the saved repository and the run")
    p.add_argument("--out", default=None, help="results JSON (default: benchmarks/results/<card>-<date>.json)")
    args = p.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"  # nothing from the hub: the repository is local
    device = full.best_device() if not args.tiny else torch.device("cpu")
    work = Path(args.work or tempfile.mkdtemp(prefix="s2v-e2e-"))
    path = Path(args.out) if args.out else results_path(device, args.tiny)
    section = "end_to_end_t4_emulated" if args.emulate_t4 else "end_to_end"
    update_results(path, None, {}, environment(device, args.tiny))
    report: dict = {"status": "started", "clips": args.clips, "epochs": args.epochs}
    update_results(path, section, report)
    t0 = time.time()
    sizes = ((64, 48), (48, 64), (80, 48)) if args.tiny else ((640, 360), (480, 640), (320, 240))
    write_clips(work / "clips", args.clips, sizes)
    report["write_clips_seconds"] = round(time.time() - t0, 1)

    # a local "repository" of random weights with the real architecture, saved as the hub lays it out
    t = time.time()
    repo = work / "unclip-repo"
    if not (repo / "model_index.json").exists():
        if args.tiny:
            full.build_stable_unclip_pipeline("tiny", seed=0).save_pretrained(repo)
        else:
            pipe = full.build_stable_unclip_pipeline(
                "sd21", device=str(device), dtype=torch.float16, image_encoder="full"
            )
            pipe.save_pretrained(repo, variant="fp16")
            del pipe
            torch.cuda.empty_cache()
    report["save_repository_seconds"] = round(time.time() - t, 1)
    report["repository_gb"] = round(sum(f.stat().st_size for f in repo.rglob("*") if f.is_file()) / 1e9, 2)
    update_results(path, section, report)

    if args.emulate_t4:
        if device.type != "cuda":
            raise SystemExit("--emulate-t4 needs a CUDA card")
        full.half_dtype = lambda device: torch.float16 if torch.device(device).type == "cuda" else torch.float32
        full.card_memory_gb = lambda device: 15.0 if torch.device(device).type == "cuda" else None
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(T4_CAP_GB * 1e9 / total, device)
        report["cap_gb"] = T4_CAP_GB
    os.environ[full.UNCLIP_REPO_SETTING] = str(repo)
    from s2v_lib.demo import DemoConfig
    from s2v_lib.full_demo import run_full_demo

    cfg = DemoConfig(n_train=args.clips, n_test=args.clips, epochs=args.epochs, n_images=2)
    t = time.time()
    try:
        m = run_full_demo(work / "run", cfg, force=True, data=work / "clips")
    except Exception as err:
        report.update(status="failed", error=f"{type(err).__name__}: {str(err).splitlines()[0][:400]}")
        update_results(path, section, report)
        raise
    report.update(
        status="ok", seconds=round(time.time() - t, 1), stages=m["stages"], clips_used=m["clips"], ssl=m["ssl"],
        amp=m["amp"], variant=m["unclip_variant"], train_clips_per_second=round(m["train_clips_per_second"], 1),
        r_at_1=m["r_at_1"], gen_accuracy=m["gen_accuracy"], oracle_accuracy=m["oracle_accuracy"],
        peak_gpu_reserved_gb=max((s.get("peak_gpu_reserved_gb") or 0) for s in m["stages"].values()),
        note="random weights: the accuracies mean nothing; time and memory are the point",
    )  # fmt: skip
    update_results(path, section, report)
    print(f"{section}: {report['status']} in {report['seconds']} s; stages {m['stages']}; results in {path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("S2V_QUIET", "1")
    sys.exit(main())
