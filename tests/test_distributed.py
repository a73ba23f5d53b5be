"""Scale-out: 2 processes (gloo backend, CPU) give the same feature cache and the same trained weights as 1 process.

The workers run with torch.multiprocessing.spawn; the torchrun entry point is run once as a subprocess too.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

os.environ.setdefault("S2V_QUIET", "1")
torch.set_num_threads(1)
av = pytest.importorskip("av")

from s2v_lib import distributed as D  # noqa: E402
from s2v_lib import video as V  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------------------------------------
# shared pieces (module level: the spawned workers import them)


class PatchEncoder:
    """A stand-in frozen image encoder with real float arithmetic: 8x8 average pool -> fixed random linear -> tanh."""

    dim = 16

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(3 * 8 * 8, self.dim, generator=g) / 8

    def encode(self, frames) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames)).permute(0, 3, 1, 2).float() / 255
        return torch.tanh(F.adaptive_avg_pool2d(x, 8).flatten(1) @ self.w)


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 16))


def infonce_l2(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The paper's loss: symmetric InfoNCE with logits = -Euclidean distance."""
    logits = -torch.cdist(a, v)
    target = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def training_data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(52, 8, generator=g), torch.randn(52, 16, generator=g)


def run_all(out: Path, folder: V.VideoFolder, ssl: dict, tag: str) -> None:
    """Feature precomputation + two trainings; the main process writes what it got under ``out / tag``."""
    rank, _ = D.dist_info()
    cache = D.precompute_features_distributed(folder, PatchEncoder(), out / f"cache-{tag}", topk=ssl, batch_clips=2,
                                              progress=False)  # fmt: skip
    x, y = training_data()
    sgd = lambda params: torch.optim.SGD(params, lr=0.2)  # noqa: E731 - plain SGD: sensitive to the gradient's scale
    contrastive = D.train_ddp(mlp(), infonce_l2, x, y, epochs=2, batch_size=8, seed=5, gather=True, optimizer=sgd)
    mse = D.train_ddp(mlp(), F.mse_loss, x.numpy(), y.numpy(), epochs=2, batch_size=8, seed=5, gather=False,
                      optimizer=sgd)  # fmt: skip
    if rank == 0:
        torch.save({"ids": cache.ids, "embeds": np.asarray(cache.embeds), "frames": np.asarray(cache.frames),
                    "audio": np.asarray(cache.audio), "failed": cache.failed,
                    "contrastive": contrastive.model.state_dict(), "contrastive_losses": contrastive.losses,
                    "mse": mse.model.state_dict(), "mse_losses": mse.losses, "steps": contrastive.steps},
                   out / f"result-{tag}.pt")  # fmt: skip


def _worker(rank: int, world: int, rendezvous: str, out: str, root: str, records, ssl) -> None:
    torch.set_num_threads(1)
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        run_all(Path(out), V.VideoFolder(root, records), ssl, "ddp")
    finally:
        dist.destroy_process_group()


def write_clip(path: Path, fps, seconds: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    fps = Fraction(fps)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = out.add_stream("aac", rate=22050)
        aus.layout = "mono"
        for k in range(int(round(seconds * fps))):
            img = np.repeat(np.repeat(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), 8, 0), 8, 1)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = k, 1 / fps
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        t = np.arange(int(seconds * 22050)) / 22050
        af = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t)).astype(np.float32)[None],
                                        format="fltp", layout="mono")  # fmt: skip
        af.sample_rate, af.pts = 22050, 0
        for p in aus.encode(af):
            out.mux(p)
        for p in aus.encode():
            out.mux(p)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    records = []
    for i in range(7):
        rec = V.ClipRecord(f"clip{i:07d}abc", float(i), "x", "train")
        records.append(rec)
        if i != 5:  # clip 5 is missing: a failure both runs must report the same way
            write_clip(root / f"{rec.youtube_id}_{i:06d}.mp4", fps=[10, 7.5, 30][i % 3], seconds=1.5 + 0.5 * i, seed=i)
    ssl = {r.clip_id: {"top1_box": None, "top10_moments": [(7 * j + 3) % 100]} for j, r in enumerate(records)}
    return root, records, ssl


def spec_data():
    """Spectrogram-like inputs [52, 1, 4, 16] with silent margins (5 frames each side), so that the augmentation
    (train.augment_spectrograms: a time shift within the margins) really moves them."""
    g = torch.Generator().manual_seed(3)
    x = torch.zeros(52, 1, 4, 16)
    x[..., 5:11] = torch.rand(52, 1, 4, 6, generator=g) + 0.5
    return x, torch.randn(52, 16, generator=g)


def spec_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16))


def train_job(job: dict) -> dict:
    """One train_ddp run on the spectrogram data (Adam: its state must survive a resume)."""
    x, y = spec_data()
    rank, _ = D.dist_info()
    kw = dict(epochs=job.get("epochs", 2), batch_size=8, seed=5, checkpoint=job.get("checkpoint"), checkpoint_every=4,
              max_steps=job.get("max_steps"), augment=job.get("augment", True))  # fmt: skip
    if job.get("slow_rank0_at") is not None:  # rank 0 dawdles after one step: the clocks disagree

        def on_step(step, loss, at=job["slow_rank0_at"]):
            if rank == 0 and step == at:
                time.sleep(1.5)

        kw.update(on_step=on_step, max_seconds=job["max_seconds"], epochs=50)
    res = D.train_ddp(spec_model(), infonce_l2, x, y, **kw)
    return {"steps": res.steps, "losses": res.losses, "state": res.model.state_dict(), "stopped": res.stopped_early,
            "resumed_from": res.resumed_from}  # fmt: skip


def _train_worker(rank: int, world: int, rendezvous: str, out: str, jobs: list) -> None:
    torch.set_num_threads(1)
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))  # fmt: skip
    try:
        results = {}
        for job in jobs:
            results[job["tag"]] = train_job(job)
            if job.get("copy_checkpoint") and rank == 0:
                shutil.copy(job["checkpoint"], job["copy_checkpoint"])
            D.barrier()
        torch.save(results, Path(out) / f"train-rank{rank}.pt")
    finally:
        dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------------------------
# tests


def test_two_gloo_processes_match_one_process(dataset, tmp_path):
    root, records, ssl = dataset
    run_all(tmp_path, V.VideoFolder(root, records), ssl, "single")
    torch.multiprocessing.spawn(_worker, args=(2, str(tmp_path / "rdv"), str(tmp_path), str(root), records, ssl),
                                nprocs=2, join=True)  # fmt: skip
    one = torch.load(tmp_path / "result-single.pt", weights_only=False)
    two = torch.load(tmp_path / "result-ddp.pt", weights_only=False)
    # features: same clips, same order, bit-identical embeddings, frames and audio, same failure report
    assert one["ids"] == two["ids"] == [r.clip_id for i, r in enumerate(records) if i != 5]
    for key in ("embeds", "frames", "audio"):
        np.testing.assert_array_equal(one[key], two[key])
    assert one["failed"] == two["failed"] and [f["id"] for f in one["failed"]] == [records[5].clip_id]
    assert one["frames"][:, 0].tolist() == [3, 10, 17, 24, 31, 45]  # the SSL top-1 frames were the ones encoded
    assert not [p for p in tmp_path.iterdir() if ".shard" in p.name]  # shards merged and removed
    # training: 2 epochs x 6 global batches of 8, split 4 + 4 over the ranks
    assert one["steps"] == two["steps"] == 12
    np.testing.assert_allclose(one["contrastive_losses"], two["contrastive_losses"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(one["mse_losses"], two["mse_losses"], rtol=1e-5, atol=1e-6)
    for run in ("contrastive", "mse"):
        for name, p in one[run].items():
            torch.testing.assert_close(two[run][name], p, rtol=1e-5, atol=1e-6, msg=f"{run} {name}")
    # and they trained: the parameters moved and the contrastive loss fell
    start = mlp().state_dict()
    assert all(not torch.allclose(one["contrastive"][k], start[k]) for k in start)
    assert np.mean(one["contrastive_losses"][-3:]) < np.mean(one["contrastive_losses"][:3])


def test_train_ddp_single_process_contract():
    x, y = training_data()
    res = D.train_ddp(mlp(), infonce_l2, x, y, epochs=1, batch_size=8, seed=5, max_steps=4)
    assert res.steps == 4 and len(res.losses) == 4 and res.clips == 32 and res.clips_per_second > 0
    again = D.train_ddp(mlp(), infonce_l2, x, y, epochs=1, batch_size=8, seed=5, max_steps=4)
    assert res.losses == again.losses  # seeded: reproducible
    with pytest.raises(ValueError, match="fewer than one batch"):
        D.train_ddp(mlp(), infonce_l2, x[:4], y[:4], batch_size=8)
    with pytest.raises(ValueError, match="one row per clip"):
        D.train_ddp(mlp(), infonce_l2, x, y[:10], batch_size=8)


def test_spectrogram_transform_matches_front_end():
    from s2v_lib.audio import FrontEnd

    for preset in ("toy", "paper"):
        front = FrontEnd.preset(preset)
        wave = torch.randn(2, front.n_samples - 100)  # a little short: both tile it
        spec = D.spectrogram_transform(front)(wave)
        torch.testing.assert_close(spec, front(wave))
        assert spec.shape == (2, 1, *front.shape) and spec.device == wave.device  # the window follows the batch


def test_torchrun_entry_point_precompute(dataset, tmp_path):
    root, records, ssl = dataset
    index = tmp_path / "index.csv"
    index.write_text("".join(f"{r.youtube_id},{int(r.start)},{r.label},{r.split}\n" for r in records))
    ssl_path = V.write_topk_json(tmp_path / "ssl.json", ssl)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "s2v_lib.distributed", "precompute", "--videos", str(root), "--index", str(index), "--ssl", str(ssl_path),
           "--encoder", "test_distributed:PatchEncoder", "--out", str(tmp_path / "cache"), "--batch-clips", "2",
           "--workers", "1", "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # never leave torchrun's workers behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary == {
        "cache": str(tmp_path / "cache"),
        "clips": 6,
        "failed": 1,
        "world": 2,
        "failure_counts": {"missing_file": 1},
    }
    single = V.precompute_features(V.VideoFolder(root, records), PatchEncoder(), tmp_path / "single", topk=ssl,
                                   batch_clips=2, progress=False)  # fmt: skip
    cache = V.FeatureCache(tmp_path / "cache")
    assert cache.ids == single.ids
    np.testing.assert_array_equal(cache.embeds, single.embeds)


def test_ranks_agree_on_when_to_stop(tmp_path):
    """max_seconds: rank 0 is past the limit after step 2 while rank 1 is not. Without an agreement rank 1 would go on
    to step 3 and wait in its collective for ever (here: until the 60 s timeout); with it both stop at step 2."""
    jobs = [{"tag": "stop", "slow_rank0_at": 2, "max_seconds": 0.75}]
    t0 = time.time()
    torch.multiprocessing.spawn(_train_worker, args=(2, str(tmp_path / "rdv"), str(tmp_path), jobs), nprocs=2,
                                join=True)  # fmt: skip
    assert time.time() - t0 < 50
    r0, r1 = (torch.load(tmp_path / f"train-rank{r}.pt", weights_only=False)["stop"] for r in (0, 1))
    assert r0["stopped"] and r1["stopped"] and r0["steps"] == r1["steps"] <= 2
    for name, p in r0["state"].items():  # and they hold the same model
        torch.testing.assert_close(r1["state"][name], p)


def test_checkpoint_resume_continues_exactly_on_any_number_of_processes(tmp_path):
    """2 gloo ranks: a run stopped after 5 of 12 steps and resumed from its checkpoint ends exactly where an
    uninterrupted run does (same data order, augmentation, Adam state). Without augmentation (seeded per rank) the
    same checkpoint resumed by a single process gives the single-process run's result."""
    ckpt = tmp_path / "run.ckpt"
    jobs = [{"tag": "whole"},
            {"tag": "part", "max_steps": 5, "checkpoint": str(ckpt)},
            {"tag": "resumed", "checkpoint": str(ckpt)},
            {"tag": "part_plain", "max_steps": 5, "checkpoint": str(tmp_path / "plain.ckpt"), "augment": False,
             "copy_checkpoint": str(tmp_path / "plain-copy.ckpt")}]  # fmt: skip
    torch.multiprocessing.spawn(_train_worker, args=(2, str(tmp_path / "rdv"), str(tmp_path), jobs), nprocs=2,
                                join=True)  # fmt: skip
    got = torch.load(tmp_path / "train-rank0.pt", weights_only=False)
    whole, part, resumed = got["whole"], got["part"], got["resumed"]
    assert whole["steps"] == 12 and part["steps"] == 5 and resumed["steps"] == 12 and resumed["resumed_from"] == 5
    assert len(resumed["losses"]) == 12 and resumed["losses"][:5] == part["losses"]
    np.testing.assert_allclose(resumed["losses"], whole["losses"], rtol=1e-6, atol=1e-7)
    for name, p in whole["state"].items():
        torch.testing.assert_close(resumed["state"][name], p, rtol=1e-6, atol=1e-7)
    # augmentation really ran: without it the same run ends elsewhere
    plain_whole = train_job({"tag": "plain_whole", "augment": False})
    assert not np.allclose(plain_whole["losses"], whole["losses"])
    # the 2-rank checkpoint (no augmentation) resumed by one process = one process from the start
    one = train_job({"tag": "plain_resumed", "checkpoint": str(tmp_path / "plain-copy.ckpt"), "augment": False})
    assert one["resumed_from"] == 5 and one["steps"] == 12
    np.testing.assert_allclose(one["losses"][5:], plain_whole["losses"][5:], rtol=1e-5, atol=1e-6)
    for name, p in plain_whole["state"].items():
        torch.testing.assert_close(one["state"][name], p, rtol=1e-5, atol=1e-6)
    # a checkpoint of another run is refused, not silently continued
    x, y = spec_data()
    with pytest.raises(ValueError, match="another run"):
        D.train_ddp(spec_model(), infonce_l2, x, y, batch_size=4, seed=5, checkpoint=ckpt)


def test_amp_auto_is_float32_on_the_cpu_and_rejects_unknown_values():
    assert D.autocast_dtype("auto", torch.device("cpu")) is None
    assert D.autocast_dtype("fp16", torch.device("cpu")) == torch.float16
    with pytest.raises(ValueError, match="amp must be"):
        D.autocast_dtype("fp8", torch.device("cpu"))
    assert D.augment_seed(1, 0, 7) != D.augment_seed(1, 1, 7) != D.augment_seed(1, 0, 8)
