"""Run-time settings shared by every stage: the profile (toy | full), where data lives, and torch's threads.

``S2V_PROFILE=toy|full`` picks the profile (default ``toy``, DESIGN.md "Two worlds, one code path").
``S2V_DATA`` moves the data folder (default: ``data/`` at the repository root). ``S2V_THREADS`` sets torch's
thread count (default: the number of cores, at most 8): torch must never oversubscribe a small machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

PROFILES = ("toy", "full")
REPO_ROOT = Path(__file__).resolve().parent.parent


def profile() -> str:
    name = os.environ.get("S2V_PROFILE", "toy").strip().lower() or "toy"
    if name not in PROFILES:
        raise ValueError(f"S2V_PROFILE={name!r} is not a profile; use one of {', '.join(PROFILES)}")
    return name


def data_dir() -> Path:
    return Path(os.environ.get("S2V_DATA", REPO_ROOT / "data"))


def models_dir() -> Path:
    return data_dir() / "models"


def cache_dir() -> Path:
    path = data_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def setup_torch(threads: int | None = None) -> int:
    """Set torch's intra-op thread count explicitly (and one inter-op thread); returns the count used."""
    if threads is None:
        threads = int(os.environ.get("S2V_THREADS", "").strip() or 0) or min(os.cpu_count() or 1, 8)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
    return threads


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
