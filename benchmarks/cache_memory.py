"""Peak memory of the feature-cache precompute on a synthetic folder of N clips (issue 14, "real data at scale").

Writes N short mp4 clips with sound (several frame sizes, as real VGGSound clips have) once, then runs
``s2v_lib.video.precompute_features`` on the first N/4 and on all N of them, each in a fresh process, and reports that
process's peak resident memory (``ru_maxrss``), the cache's size on disk, and an extrapolation to VGGSound (~200,000
clips): the growth of the peak per clip between the two runs, times the clips. The image encoder is a cheap stand-in
with the real output size (1024-d), so what is measured is the data path, not a network.

``--compare REV`` runs the same on ``s2v_lib/video.py`` as it was at git revision REV (e.g. the version that stacked
every row in RAM before writing), loaded beside the current package, for a before/after figure: on the mixed sizes
(where that version stopped) and on a second folder of clips of one size.

    python benchmarks/cache_memory.py --clips 2000 --folder /tmp/s2v-synth-2000 --compare 9eb5524~1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SIZES = ((64, 48), (48, 64), (64, 36), (64, 64))  # 4:3, portrait, 16:9, square
VGGSOUND_CLIPS = 200_000


def write_folder(folder: Path, n: int, seconds: float = 1.0, sizes=SIZES) -> None:
    """n clips of ``seconds`` (tiled to 10 s by the decoder, as short clips are), 10 fps, ``sizes`` in turn, mono AAC."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        path = folder / f"synth{i:07d}_{i % 50:06d}.mp4"
        if path.exists():
            continue
        w, h = sizes[i % len(sizes)]
        tmp = path.with_name(f".{path.name}")
        with av.open(str(tmp), "w", format="mp4") as out:
            vs = out.add_stream("libx264", rate=Fraction(10))
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            aus = out.add_stream("aac", rate=16000)
            aus.layout = "mono"
            for k in range(int(10 * seconds)):
                f = av.VideoFrame.from_ndarray(np.full((h, w, 3), (7 * i + 20 * k) % 256, np.uint8), format="rgb24")
                f.pts, f.time_base = k, Fraction(1, 10)
                for p in vs.encode(f):
                    out.mux(p)
            for p in vs.encode():
                out.mux(p)
            t = np.arange(int(16000 * seconds)) / 16000
            wave = (0.3 * np.sin(2 * np.pi * (200 + i % 300) * t) + 0.01 * rng.standard_normal(len(t))).astype(
                np.float32
            )
            af = av.AudioFrame.from_ndarray(wave[None], format="fltp", layout="mono")
            af.sample_rate, af.pts = 16000, 0
            for p in aus.encode(af):
                out.mux(p)
            for p in aus.encode():
                out.mux(p)
        os.replace(tmp, path)


class ProjectionEncoder:
    """Stand-in frozen image encoder with ViT-H's output size: 8x8 mean pool -> fixed random projection to 1024-d.
    Takes pictures of mixed sizes (a list), like the real encoders."""

    dim = 1024
    mixed_sizes = True

    def __init__(self):
        self.w = np.random.default_rng(0).standard_normal((3 * 8 * 8, self.dim)).astype(np.float32) / 8

    def encode(self, frames):
        import torch
        import torch.nn.functional as F

        pooled = [F.adaptive_avg_pool2d(torch.from_numpy(np.asarray(f)).permute(2, 0, 1)[None].float() / 255, 8)
                  for f in frames]  # fmt: skip
        return torch.cat(pooled).flatten(1) @ torch.from_numpy(self.w)


def child(args) -> None:
    """Runs in a fresh process: the precompute, then one JSON line with its own peak memory."""
    import torch

    torch.set_num_threads(1)
    if args.rev:
        import importlib.util

        import s2v_lib  # noqa: F401 - the package the old module's relative imports resolve against

        src = subprocess.run(["git", "show", f"{args.rev}:s2v_lib/video.py"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
        path = Path(tempfile.mkdtemp()) / "video_before.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location("s2v_lib._video_before", path)
        V = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = V
        spec.loader.exec_module(V)
    else:
        from s2v_lib import video as V
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    folder = V.VideoFolder(args.folder)
    folder = V.VideoFolder(args.folder, folder.records[: args.limit])
    out = Path(args.cache)
    t0 = time.time()
    cache = V.precompute_features(folder, ProjectionEncoder(), out, method="middle", batch_clips=16, workers=2,
                                  progress=False)  # fmt: skip
    seconds = time.time() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    disk = sum(f.stat().st_size for f in out.iterdir())
    print(json.dumps({"clips": len(cache), "failed": len(cache.failed), "seconds": round(seconds, 1),
                      "peak_rss_mb": round(peak / 1024, 1), "rss_before_precompute_mb": round(base / 1024, 1),
                      "cache_mb": round(disk / 2**20, 1)}))  # fmt: skip


def run_child(folder: Path, n: int, rev: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="s2v-cache-mem-") as tmp:
        cmd = [sys.executable, __file__, "--child", "--folder", str(folder), "--cache", str(Path(tmp) / "cache"),
               "--limit", str(n)] + (["--rev", rev] if rev else [])  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "S2V_QUIET": "1", "PYTHONPATH": str(REPO)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
        return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(folder: Path, n: int, rev: str | None) -> dict:
    """Runs on the first n // 4 and on all n clips; the growth of the peak between the two, per clip, extrapolated
    to VGGSound's size (a constant peak extrapolates to itself)."""
    small, big = run_child(folder, max(1, n // 4), rev), run_child(folder, n, rev)
    if "error" in big:
        return big
    per_clip_mb = (big["peak_rss_mb"] - small["peak_rss_mb"]) / max(big["clips"] - small["clips"], 1)
    return {**big, "peak_rss_mb_at_quarter": small["peak_rss_mb"], "clips_at_quarter": small["clips"],
            "peak_growth_mb_per_1000_clips": round(1000 * per_clip_mb, 1),
            "vggsound_extrapolation": {
                "clips": VGGSOUND_CLIPS,
                "cache_gb_on_disk": round(big["cache_mb"] / big["clips"] * VGGSOUND_CLIPS / 1024, 1),
                "peak_rss_gb": round((big["peak_rss_mb"] + max(per_clip_mb, 0) * (VGGSOUND_CLIPS - big["clips"])) / 1024, 1),
            }}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=2000)
    p.add_argument("--folder", default=None, help="where the synthetic clips are (written once, then reused)")
    p.add_argument("--compare", default=None, help="also measure s2v_lib/video.py at this git revision")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rev", default=None, help=argparse.SUPPRESS)
    p.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    p.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0
    folder = Path(args.folder or Path(tempfile.gettempdir()) / f"s2v-synth-{args.clips}")
    t0 = time.time()
    write_folder(folder, args.clips)
    report = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "synthetic_clips": args.clips,
              "folder": str(folder), "write_seconds": round(time.time() - t0, 1),
              "frame_sizes": [f"{w}x{h}" for w, h in SIZES], "now": measure(folder, args.clips, None)}  # fmt: skip
    if args.compare:  # the old code on the mixed sizes (it stopped there), then on clips of one size
        report[f"at_{args.compare}_mixed_sizes"] = measure(folder, args.clips, args.compare)
        same = folder.with_name(folder.name + "-one-size")
        write_folder(same, args.clips, sizes=SIZES[:1])
        report["now_one_size"] = measure(same, args.clips, None)
        report[f"at_{args.compare}_one_size"] = measure(same, args.clips, args.compare)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
