"""One line to get a frozen model by name, in either profile (DESIGN.md "Library"; open_clip's factory in spirit).

    enc = load_image_encoder("toy")              # or "openclip-vit-h-14" (full profile)
    gen = load_generator("toy-diffusion")        # or "toy-gan", "stable-unclip"
    judge = load_judge("toy")

Toy models are shipped under ``data/models`` as safetensors (never pickle) with ``manifest.json`` recording, per
file, its sha256, the class and config, the command and seed that made it and how long training took. A missing or
tampered file raises :class:`ModelError` naming the file, the expected checksum and the command that rebuilds it.
Full-profile models load with their libraries' own ``from_pretrained`` code and fail offline with a clear message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from torch import nn

from .config import models_dir, profile

MANIFEST = "manifest.json"


class ModelError(RuntimeError):
    """A frozen model that cannot be loaded, said in words a student can act on."""


# name -> (file stem, class name, the command that rebuilds it)
TOY_MODELS = {
    "toy-image-encoder": ("toy-image-encoder", "ToyImageEncoder", "s2v pretrain image-encoder"),
    "toy-diffusion": ("toy-diffusion", "ToyDiffusionGenerator", "s2v pretrain diffusion"),
    "toy-gan": ("toy-gan", "ToyGAN", "s2v pretrain gan"),
    "toy-judge": ("toy-judge", "ToyJudge", "s2v pretrain judge"),
    "toy-ssl": ("toy-ssl", "SSLModel", "s2v pretrain ssl"),
}
IMAGE_ENCODERS = {"toy": "toy-image-encoder", "openclip-vit-h-14": None}
GENERATORS = {"toy-diffusion": "toy-diffusion", "toy-gan": "toy-gan", "stable-unclip": None}
DEFAULTS = {"toy": {"image_encoder": "toy", "generator": "toy-diffusion"},
            "full": {"image_encoder": "openclip-vit-h-14", "generator": "stable-unclip"}}  # fmt: skip


def _classes() -> dict[str, type[nn.Module]]:
    from .encoders import ToyImageEncoder
    from .generators import ToyDiffusionGenerator, ToyGAN
    from .metrics import ToyJudge
    from .ssl import SSLModel

    return {c.__name__: c for c in (ToyImageEncoder, ToyDiffusionGenerator, ToyGAN, ToyJudge, SSLModel)}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder: Path | None = None) -> dict:
    path = (folder or models_dir()) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def save_model(model: nn.Module, name: str, info: dict, folder: Path | None = None, half: bool = True) -> Path:
    """Write ``name.safetensors`` (float16 weights unless ``half=False``) and its manifest entry, atomically."""
    from safetensors.torch import save_file

    folder = Path(folder or models_dir())
    folder.mkdir(parents=True, exist_ok=True)
    stem, cls, command = TOY_MODELS[name]
    state = {
        k: (v.half() if half and v.is_floating_point() and "num_batches" not in k else v).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    path = folder / f"{stem}.safetensors"
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(fd)
    save_file(state, tmp, metadata={"class": cls, "config": json.dumps(model.config)})
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    with _manifest_lock(folder):  # stages may finish at the same moment (parallel pre-training)
        _update_manifest(folder, name, path, model, info, cls, command)
    return path


@contextlib.contextmanager
def _manifest_lock(folder: Path):
    import fcntl

    lock = Path(tempfile.gettempdir()) / f"s2v-manifest-{hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]}.lock"
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _update_manifest(folder: Path, name: str, path: Path, model: nn.Module, info: dict, cls: str, command: str) -> None:
    manifest = read_manifest(folder)
    manifest[name] = {
        "file": path.name,
        "sha256": sha256(path),
        "class": cls,
        "config": model.config,
        "params": int(sum(p.numel() for p in model.parameters())),
        "command": info.pop("command", command),
        **info,
    }
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / MANIFEST)


def load_toy_model(name: str, folder: Path | None = None, device: str = "cpu") -> nn.Module:
    """Load a shipped toy model after checking its sha256 against the manifest."""
    from safetensors import safe_open

    if name not in TOY_MODELS:
        raise ModelError(f"unknown toy model {name!r}; known: {', '.join(TOY_MODELS)}")
    folder = Path(folder or models_dir())
    stem, cls_name, command = TOY_MODELS[name]
    path = folder / f"{stem}.safetensors"
    entry = read_manifest(folder).get(name)
    if entry is None or not path.exists():
        raise ModelError(f"{path}: shipped model {name!r} is missing (no file or no manifest entry). "
                         f"Restore it with `git checkout -- data/models` or rebuild it with `{command}`.")  # fmt: skip
    actual = sha256(path)
    if actual != entry["sha256"]:
        raise ModelError(f"{path}: sha256 {actual[:16]}... does not match the manifest's {entry['sha256'][:16]}... "
                         f"(file changed or damaged). Restore it with `git checkout -- {path.name}` in data/models "
                         f"or rebuild it with `{entry.get('command', command)}`.")  # fmt: skip
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(meta.get("config", "{}"))
    model = _classes()[meta.get("class", cls_name)](**config)
    ref = model.state_dict()
    model.load_state_dict({k: v.to(ref[k].dtype) for k, v in state.items()})
    return model.to(device).eval().requires_grad_(False)


# ----------------------------------------------------------------------------------------------------------------
# by profile-level names


def load_image_encoder(name: str | None = None, device: str | None = None) -> nn.Module:
    """``device`` None: the CPU for toy models, the best device (a GPU if there is one) for full-profile ones."""
    name = name or DEFAULTS[profile()]["image_encoder"]
    if name not in IMAGE_ENCODERS:
        raise ModelError(f"unknown image encoder {name!r}; known: {', '.join(IMAGE_ENCODERS)}")
    if IMAGE_ENCODERS[name] is None:
        from .full import load_openclip_image_encoder

        return load_openclip_image_encoder(device=device)
    return load_toy_model(IMAGE_ENCODERS[name], device=device or "cpu")


def load_generator(name: str | None = None, device: str | None = None) -> nn.Module:
    """``device`` None: the CPU for toy models, the best device for Stable unCLIP (repository: ``S2V_UNCLIP_REPO``)."""
    name = name or DEFAULTS[profile()]["generator"]
    if name not in GENERATORS:
        raise ModelError(f"unknown generator {name!r}; known: {', '.join(GENERATORS)}")
    if GENERATORS[name] is None:
        from .full import load_stable_unclip

        return load_stable_unclip(device=device)
    return load_toy_model(GENERATORS[name], device=device or "cpu")


def load_judge(name: str = "toy", device: str = "cpu") -> nn.Module:
    if name != "toy":
        raise ModelError("only the toy world has a judge (it needs ground truth); use R@k and FID on real data")
    return load_toy_model("toy-judge", device=device)


def model_info(name: str) -> dict:
    return read_manifest().get(name, {})

