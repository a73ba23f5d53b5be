"""Shared fixtures: one torch thread (tests must not oversubscribe a 2-core machine), offline hub, quiet bars,
and a private data folder so tests never touch the user's cache (shipped models are read from the repo)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("S2V_QUIET", "1")
os.environ.setdefault("S2V_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["S2V_THREADS"]))


@pytest.fixture
def cache_tmp(tmp_path, monkeypatch):
    """Point the toy-world cache at a temporary folder (models still come from the repository's data/models)."""
    import s2v_lib.config as config

    models = config.models_dir()
    monkeypatch.setenv("S2V_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(config, "models_dir", lambda: models)
    import s2v_lib.registry as registry

    monkeypatch.setattr(registry, "models_dir", lambda: models)
    return tmp_path / "data"
