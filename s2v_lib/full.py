"""The full profile's frozen models: OpenCLIP ViT-H/14 and Stable unCLIP 2.1 (paper guide steps 5 and 7).

    gen = load_stable_unclip()                     # StableUnCLIPGenerator around StableUnCLIPImg2ImgPipeline
    enc = unclip_image_encoder(gen)                # the pipeline's own ViT-H/14 image tower: the anchor space
    pictures = gen.generate(audio_embeds, n=4, seed=0)   # uint8 [B, 4, 768, 768, 3]

These load the authors' real models with their libraries' own code (transformers / diffusers ``from_pretrained``,
``open_clip``). They need the weights from the Hugging Face hub or its local cache, and a GPU to be practical; every
loader picks the best device by default (:func:`best_device`) and half precision there.

**The repository is a setting.** Stability AI removed its SD 2.x repositories from the hub in November 2025, the
authors' ``stabilityai/stable-diffusion-2-1-unclip`` among them. :func:`unclip_repo` reads ``S2V_UNCLIP_REPO``
(or the ``repo`` argument; a local folder works too) and defaults to the community mirror
``sd2-community/stable-diffusion-2-1-unclip``, which carries the same files and is what most projects switched to;
set ``S2V_UNCLIP_REPO=stabilityai/stable-diffusion-2-1-unclip`` for the original where it is still reachable (e.g. a
cache made before the removal). In half precision the ``fp16`` variant files are fetched when the repository has
them (~3.9 GB instead of ~7.7 GB of fp32 files), the full-precision files otherwise.

**One ViT-H, downloaded once.** The anchor space is the embedding Stable unCLIP takes as ``image_embeds``: the
OpenCLIP ViT-H/14 (laion2b_s32b_b79k) image tower, which the pipeline carries itself (``image_encoder`` +
``feature_extractor``, in transformers' format). :func:`load_unclip_image_encoder` loads just that tower from the
unCLIP repository, and :func:`load_stable_unclip` reuses it (``image_encoder=``), so one copy is downloaded and one
sits in GPU memory. open_clip's own copy of the same weights (:func:`load_openclip_image_encoder`, a second ~3.9 GB
download) stays available when asked for.

**Failures are one line each** (:class:`~s2v_lib.registry.ModelError`): *not downloaded* (offline, or not in the
cache: names the repository, the setting and ``hf download <repo>``), *not on the hub* (removed or renamed),
*out of memory* (GPU or RAM), or anything else; the full original error goes to a log file the line names.

**Precision.** Inputs are cast to the dtype of the layer that consumes them (the patch-embedding convolution), never
to that of a model's first parameter: open_clip's fp16/bf16 conversion leaves ``class_embedding`` in fp32.

How the audio embedding drives Stable unCLIP (read from diffusers' ``StableUnCLIPImg2ImgPipeline``): the 1024-d
embedding is passed as ``image_embeds``; the pipeline normalises it with the CLIP statistics, noises it to
``noise_level`` (0 = the authors' setting; the squared-cosine schedule leaves it unchanged at 0), appends a sinusoidal
embedding of the noise level (-> 2048-d) and feeds that to the UNet as ``class_labels``. With ``guidance > 1`` the
unconditional branch is the same call with that whole 2048-d vector set to **zeros** (and the text branch with the
empty negative prompt), batched with the conditional branch: ``eps = eps_u + guidance * (eps_c - eps_u)``.

:class:`StableUnCLIPGenerator` offers two engines that compute exactly that:

* ``"diffusers"`` - the plain pipeline call, one call per embedding (the reference);
* ``"s2v"`` (default) - the same steps written out: the empty-prompt text embedding is computed once and cached, both
  guidance branches and several embeddings run as one UNet batch, and :meth:`StableUnCLIPGenerator.optimize` can
  compile the UNet/VAE (``torch.compile``; CUDA graphs with ``mode="reduce-overhead"``) on a GPU.

Both draw their noise the same way (a CPU ``torch.Generator(seed)`` per embedding: first the embedding noise, then the
``n`` starting latents), so an embedding's pictures do not depend on what else is in the batch, the same ``seed``
starts every embedding from the same noise (handy for interpolation), and the two engines agree (bit for bit on a CPU
with deterministic samplers such as the default DDIM; see ``tests/test_full.py``).

For tests and benchmarks without downloads, :func:`build_stable_unclip_pipeline` builds a real
``StableUnCLIPImg2ImgPipeline`` with random weights, either tiny or with the SD 2.1 unCLIP architecture
(:data:`SD21_UNCLIP_CONFIGS`, written out from Stability's ``v2-1-stable-unclip-h-inference.yaml`` and diffusers'
conversion rules, not downloaded); saved with ``save_pretrained`` it is a local "repository" the real loaders read
(``S2V_UNCLIP_REPO=/that/folder``). :func:`offline_clip_tokenizer` makes a byte-level CLIP tokenizer without any
vocabulary download.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

OPENCLIP_MODEL, OPENCLIP_PRETRAINED = "ViT-H-14", "laion2b_s32b_b79k"
OPENCLIP_HUB_REPO = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"  # where open_clip fetches those weights from
UNCLIP_REPO_SETTING = "S2V_UNCLIP_REPO"
UNCLIP_REPO_MIRROR = "sd2-community/stable-diffusion-2-1-unclip"  # community mirror of the same files (default)
UNCLIP_REPO_ORIGINAL = "stabilityai/stable-diffusion-2-1-unclip"  # the authors' id, removed from the hub 2025-11
UNCLIP_REPO = UNCLIP_REPO_MIRROR
# what a half-precision load fetches (computed from the parameter counts: UNet 870M, text encoder 340M, ViT-H image
# tower 632M, VAE 84M, at 2 bytes); twice that in fp32. Not measured here: no download is possible on this machine.
UNCLIP_DOWNLOAD_GB = {"fp16": 3.9, "fp32": 7.7}
# the authors' generation settings (paper guide step 7)
UNCLIP_DEFAULTS = {"steps": 20, "guidance": 10.0, "noise_level": 0, "prompt": "", "eta": 0.0}

TOY_ALTERNATIVE = "On a machine without internet, use the toy profile instead (S2V_PROFILE=toy, the default)."
LOG_DIR_SETTING = "S2V_LOG_DIR"

log = logging.getLogger(__name__)


def unclip_repo(repo: str | None = None) -> str:
    """The Stable unCLIP repository to load: ``repo``, else ``$S2V_UNCLIP_REPO``, else the community mirror."""
    return (repo or os.environ.get(UNCLIP_REPO_SETTING, "").strip() or UNCLIP_REPO_MIRROR).strip()


def best_device() -> torch.device:
    """CUDA if there is a GPU (the current one), else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def half_dtype(device) -> torch.dtype:
    """The 16-bit type a card computes fast: bf16 from Ampere on (compute capability 8.0), fp16 before (a Colab T4
    is 7.5: no bf16 tensor cores) and on MPS; float32 on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16
    return torch.float16 if device.type == "mps" else torch.float32


def card_memory_gb(device) -> float | None:
    """Total memory of a CUDA device in GiB (None elsewhere)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).total_memory / 2**30


def input_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of the layer that consumes a vision model's pixels: ``conv1`` (open_clip), else the first
    convolution or linear layer. Not the first parameter's: open_clip's half precision keeps ``class_embedding``
    (and the positional embedding) in fp32 while ``conv1`` is fp16/bf16."""
    conv1 = getattr(module, "conv1", None)
    if isinstance(conv1, nn.Module) and getattr(conv1, "weight", None) is not None:
        return conv1.weight.dtype
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            return m.weight.dtype
    return next(module.parameters()).dtype


def _error(message: str):
    from .registry import ModelError

    return ModelError(message)


def _chain(err: BaseException) -> list[BaseException]:
    out, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        out.append(err)
        err = err.__cause__ or err.__context__
    return out


def failure_kind(err: BaseException) -> str:
    """``"oom"`` (out of GPU or host memory), ``"not_found"`` (no such repository on the hub: removed, renamed,
    gated), ``"not_downloaded"`` (offline or not in the cache) or ``"other"``, read from the exception chain."""
    chain = _chain(err)
    names = {c.__name__ for e in chain for c in type(e).__mro__}
    text = " ".join(str(e) for e in chain).lower()
    if names & {"OutOfMemoryError", "MemoryError"} or "out of memory" in text:
        return "oom"
    if names & {"RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError", "DisabledRepoError"} or any(
        s in text for s in ("is not a valid model identifier", "repository not found", "404 client error")
    ):
        return "not_found"
    if names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectionError", "CachedRepoTreeNotFoundError"} or any(
        s in text
        for s in ("not fully cached", "offline mode", "local cache", "cannot reach", "couldn't connect",
                  "internet connection", "failed to download")
    ):  # fmt: skip
        return "not_downloaded"
    return "other"


def write_error_log(name: str, err: BaseException) -> Path | None:
    """The full traceback of ``err`` in ``$S2V_LOG_DIR`` (default: a ``s2v-logs`` folder in the temp dir)."""
    import traceback

    folder = Path(os.environ.get(LOG_DIR_SETTING) or Path(tempfile.gettempdir()) / "s2v-logs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text("".join(traceback.format_exception(err)))
    except OSError:
        return None
    log.debug("loading %s failed", name, exc_info=err)
    return path


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0][:200]


def _load_failed(what: str, err: BaseException, log_name: str, download: str, setting: str | None = None,
                 repo: str | None = None):  # fmt: skip
    """One line for a failed load (see the module docstring), the original error kept in a log file."""
    kind = failure_kind(err)
    path = write_error_log(log_name, err)
    where = f"full error in {path}" if path else "no log written"
    cause = f"{type(err).__name__}: {_first_line(err)}"
    if kind == "oom":
        gpu = "GPU " if any(type(e).__name__ == "OutOfMemoryError" for e in _chain(err)) else ""
        return _error(f"{what}: out of {gpu}memory while loading ({cause}; {where}). Free memory (restart the runtime, "
                      f"close other notebooks) or use a larger card; docs/full_profile.md lists what each stage needs.")  # fmt: skip
    alternative = (f" Set {setting} to another copy (e.g. {UNCLIP_REPO_ORIGINAL if repo != UNCLIP_REPO_ORIGINAL else UNCLIP_REPO_MIRROR}"
                   f", or a local folder)." if setting else "")  # fmt: skip
    if kind == "not_found":
        return _error(f"{what}: the Hugging Face hub has no repository {repo} (removed or renamed?) ({cause}; {where})."
                      f"{alternative} {TOY_ALTERNATIVE}")  # fmt: skip
    if kind == "not_downloaded":
        setting_text = f" (setting: {setting})" if setting else ""
        return _error(f"{what} is not downloaded and the hub cannot be reached{setting_text}: run once with internet, "
                      f"or `{download}` ({cause}; {where}).{alternative} {TOY_ALTERNATIVE}")  # fmt: skip
    return _error(f"{what} could not be loaded ({cause}; {where}). {TOY_ALTERNATIVE}")


def _need(module: str, pip_name: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise _error(f"the full profile needs the package {pip_name!r} ({err}); install it with "
                     f"`pip install {pip_name}` or `pip install -e .[full]`. {TOY_ALTERNATIVE}") from None  # fmt: skip


@contextlib.contextmanager
def _held_logs():
    """Hold the libraries' log records while loading: dropped if loading fails (our ModelError says it all, without
    the hub's retry chatter), passed on unchanged if it succeeds."""
    records: list[logging.LogRecord] = []

    class Hold(logging.Handler):
        def emit(self, record):
            records.append(record)

    names = ("", "open_clip", "diffusers", "transformers", "huggingface_hub")
    saved = [(lg, lg.handlers[:], lg.propagate) for lg in map(logging.getLogger, names)]
    hold = Hold()
    for lg, _, _ in saved:
        lg.handlers, lg.propagate = [hold], False
    ok = False
    try:
        yield
        ok = True
    finally:
        for lg, handlers, propagate in saved:
            lg.handlers, lg.propagate = handlers, propagate
        if ok:
            for record in records:
                logging.getLogger(record.name).handle(record)


# ----------------------------------------------------------------------------------------------------------------
# OpenCLIP ViT-H/14 (the anchor space)


def _as_frames(frames) -> list[np.ndarray]:
    """uint8 frames (an array [B, H, W, 3], one [H, W, 3], or a list of frames of any sizes) -> a checked list."""
    if isinstance(frames, np.ndarray | torch.Tensor) and np.asarray(frames).ndim == 3:
        frames = np.asarray(frames)[None]
    frames = [np.asarray(f) for f in frames]
    for f in frames:
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[-1] != 3:
            raise ValueError(f"expected uint8 RGB frames [H, W, 3], got {f.dtype} {f.shape}")
    return frames


class OpenCLIPImageEncoder(nn.Module):
    """OpenCLIP's visual tower behind the toy encoder's interface: ``encode(uint8 frames) -> [B, dim]``.

    Frames go through open_clip's own preprocessing for the model (for ViT-H-14: resize the short side to 224 with
    bicubic interpolation, centre crop, CLIP mean/std), then ``visual`` gives the projected, *un-normalised* image
    embedding - the same vector Stable unCLIP takes as ``image_embeds``. Only the visual tower is kept.
    Frames of different sizes may come in one call (``mixed_sizes``): each is preprocessed on its own.
    """

    mixed_sizes = True

    def __init__(self, visual: nn.Module, preprocess, dim: int = 1024):
        super().__init__()
        self.visual, self.preprocess, self.dim = visual, preprocess, dim

    @property
    def device(self) -> torch.device:
        return next(self.visual.parameters()).device

    @torch.no_grad()
    def encode(self, frames, batch_size: int = 64) -> torch.Tensor:
        """uint8 frames (an array [B, H, W, 3] or a list of [H, W, 3] of any sizes) -> float32 [B, dim] on the CPU."""
        from PIL import Image

        frames = _as_frames(frames)
        self.visual.eval()
        dtype = input_dtype(self.visual)  # conv1's, not class_embedding's (fp32 in open_clip's half precision)
        out = []
        for i in range(0, len(frames), batch_size):
            x = torch.stack([self.preprocess(Image.fromarray(f)) for f in frames[i : i + batch_size]])
            out.append(self.visual(x.to(self.device, dtype)).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed images [B, 3, S, S] -> embeddings [B, dim]."""
        return self.visual(x.to(input_dtype(self.visual)))


def load_openclip_image_encoder(device=None, name: str = OPENCLIP_MODEL, pretrained: str | None = OPENCLIP_PRETRAINED,
                                precision: str | None = None, cache_dir: str | None = None) -> OpenCLIPImageEncoder:  # fmt: skip
    """open_clip ``name`` with weights ``pretrained`` (a tag, a file, or None for random weights) on ``device``
    (default: :func:`best_device`).

    ``precision`` defaults to the card's fast half type (:func:`half_dtype`: bf16 from Ampere on, fp16 on a T4) and
    fp32 on the CPU. The weights are downloaded before the model is built, so offline this fails in seconds with a
    :class:`~s2v_lib.registry.ModelError`. This is a second copy of the ViT-H weights Stable unCLIP carries: the full
    profile's default anchor encoder is :func:`load_unclip_image_encoder`.
    """
    open_clip = _need("open_clip", "open_clip_torch")
    device = torch.device(device) if device is not None else best_device()
    if precision is None:
        precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(half_dtype(device), "fp32")
    try:
        with _held_logs():
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=device, precision=precision, cache_dir=cache_dir
            )
    except Exception as err:
        download = f"hf download {OPENCLIP_HUB_REPO}" if name == OPENCLIP_MODEL else "see open_clip's pretrained list"
        raise _load_failed(f"OpenCLIP {name} ({pretrained}, ~3.9 GB)", err, "openclip", download) from None
    visual = model.visual.eval().requires_grad_(False)
    dim = getattr(visual, "output_dim", None) or model.text_projection.shape[-1]
    del model  # the text tower is not needed
    return OpenCLIPImageEncoder(visual, preprocess, dim=int(dim))


class UnCLIPImageEncoder(nn.Module):
    """Stable unCLIP's own image tower (OpenCLIP ViT-H/14 in transformers' format: ``CLIPVisionModelWithProjection``
    and its ``CLIPImageProcessor``) behind the same interface: ``encode(uint8 frames) -> float32 [B, dim]``.

    It computes exactly what ``StableUnCLIPImg2ImgPipeline`` computes when given a picture (``feature_extractor`` ->
    ``image_encoder(...).image_embeds``), so the anchors are the generator's own embedding of the frame.
    """

    mixed_sizes = True

    def __init__(self, model: nn.Module, processor):
        super().__init__()
        self.model, self.processor = model.eval().requires_grad_(False), processor
        self.dim = int(model.config.projection_dim)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, frames, batch_size: int = 64) -> torch.Tensor:
        """uint8 frames (an array [B, H, W, 3] or a list of [H, W, 3] of any sizes) -> float32 [B, dim] on the CPU."""
        frames = _as_frames(frames)
        dtype = input_dtype(self.model)  # the patch-embedding convolution
        out = []
        for i in range(0, len(frames), batch_size):
            x = self.processor(images=frames[i : i + batch_size], return_tensors="pt").pixel_values
            out.append(self.model(pixel_values=x.to(self.device, dtype)).image_embeds.float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.dim)


def unclip_image_encoder(generator) -> UnCLIPImageEncoder:
    """The anchor encoder a loaded :class:`StableUnCLIPGenerator` (or pipeline) already holds: no second copy."""
    pipe = getattr(generator, "pipe", generator)
    return UnCLIPImageEncoder(pipe.image_encoder, pipe.feature_extractor)


def _variants(variant: str | None, dtype: torch.dtype) -> list[str | None]:
    """Variant files to try in order: ``"auto"`` = the fp16 files for a half-precision load, then the default ones."""
    if variant == "auto":
        return ["fp16", None] if dtype in (torch.float16, torch.bfloat16) else [None]
    return [variant]


def _from_pretrained(load, variants: list[str | None]):
    """``load(variant)`` for each variant in turn; the first that works. Out of memory is not retried."""
    for i, v in enumerate(variants):
        try:
            return load(v), v
        except Exception as err:
            if failure_kind(err) == "oom" or i == len(variants) - 1:
                raise
    raise ValueError("no variant to load")


def load_unclip_image_encoder(device=None, repo: str | None = None, dtype: torch.dtype | None = None,
                              cache_dir: str | None = None, variant: str | None = "auto") -> UnCLIPImageEncoder:  # fmt: skip
    """Only the image tower of the Stable unCLIP repository (:func:`unclip_repo`): the anchor encoder of the full
    profile, from the same files the generator uses (module docstring). Half precision on a GPU, fp32 on the CPU."""
    _need("transformers", "transformers")
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    repo = unclip_repo(repo)
    device = torch.device(device) if device is not None else best_device()
    dtype = dtype or half_dtype(device)

    def load(v):
        model = CLIPVisionModelWithProjection.from_pretrained(repo, subfolder="image_encoder", dtype=dtype,
                                                              variant=v, cache_dir=cache_dir)  # fmt: skip
        return model.to(device)

    try:
        with warnings.catch_warnings(), _held_logs():
            warnings.simplefilter("ignore", FutureWarning)
            model, _ = _from_pretrained(load, _variants(variant, dtype))
            processor = CLIPImageProcessor.from_pretrained(repo, subfolder="feature_extractor", cache_dir=cache_dir)
    except Exception as err:
        raise _load_failed(f"Stable unCLIP's image encoder ({repo})", err, "unclip-image-encoder",
                           f"hf download {repo}", UNCLIP_REPO_SETTING, repo) from None  # fmt: skip
    return UnCLIPImageEncoder(model, processor)


def tiny_openclip_config(embed_dim: int = 32, image_size: int = 32) -> dict:
    """A tiny open_clip model config (ViT) for tests: write it as ``NAME.json`` and ``open_clip.add_model_config``."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": image_size, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 16, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
    }


# ----------------------------------------------------------------------------------------------------------------
# Stable unCLIP (the frozen generator)


class StableUnCLIPGenerator(nn.Module):
    """``generate(embeds [B, D], n, seed) -> uint8 [B, n, H, W, 3]`` through a ``StableUnCLIPImg2ImgPipeline``.

    Defaults are the authors' (noise_level 0, empty prompt, 20 steps, guidance 10 with zero embeddings as the
    unconditional branch); each can be changed on the instance (``gen.steps = 50``) or per call.
    ``engine`` is ``"s2v"`` (batched, cached, compilable) or ``"diffusers"`` (the plain pipeline call).
    ``batch_size`` is the number of embeddings per UNet batch in the ``s2v`` engine (each brings ``2 n`` images) and
    ``vae_batch_size`` the number of pictures the VAE decodes at once; ``None`` sizes both to the card's memory
    (:func:`memory_plan`: on a 16 GB T4 one embedding and one picture at a time). Pictures holding NaN or inf
    (a half-precision overflow) raise ``FloatingPointError`` instead of coming back black.
    """

    def __init__(self, pipe, steps: int = 20, guidance: float = 10.0, noise_level: int = 0, prompt: str = "",
                 eta: float = 0.0, height: int | None = None, width: int | None = None, engine: str = "s2v",
                 batch_size: int | None = None, vae_batch_size: int | None = None):  # fmt: skip
        super().__init__()
        self.pipe = pipe
        pipe.set_progress_bar_config(disable=True)
        for module in pipe.components.values():  # frozen
            if isinstance(module, nn.Module):
                module.eval().requires_grad_(False)
        # register the pipeline's networks so .to(), .parameters() and .eval() see them
        self.unet, self.vae, self.text_encoder = pipe.unet, pipe.vae, pipe.text_encoder
        self.image_normalizer = pipe.image_normalizer
        self.steps, self.guidance, self.noise_level, self.prompt, self.eta = steps, guidance, noise_level, prompt, eta
        scale = pipe.vae_scale_factor
        self.height = height or pipe.unet.config.sample_size * scale
        self.width = width or pipe.unet.config.sample_size * scale
        self.engine, self.batch_size, self.vae_batch_size = engine, batch_size, vae_batch_size
        self.emb_dim = int(pipe.image_normalizer.mean.shape[-1])
        self._text_cache: dict = {}
        self._channels_last = False

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    def to(self, *args, **kwargs):
        self.pipe.to(*args, **kwargs)
        self._text_cache.clear()
        return super().to(*args, **kwargs)

    def optimize(self, compile: bool = True, mode: str | None = None, vae: bool = True,
                 channels_last: bool = True, fuse_qkv: bool = False) -> StableUnCLIPGenerator:  # fmt: skip
        """GPU speed-ups that leave the computation unchanged: channels-last memory format and ``torch.compile`` of the
        UNet (and the VAE decoder) *in place*, so the plain pipeline call (``engine="diffusers"``) runs the same
        compiled modules as ours; ``mode="reduce-overhead"`` adds CUDA graphs. ``fuse_qkv`` fuses the attention
        projections (diffusers ``fuse_qkv_projections``). Global switches (TF32 ...) are not touched here: set them
        once for the whole process with :func:`fast_gpu_flags`, so that every measurement sees the same ones."""
        if channels_last:
            self.unet.to(memory_format=torch.channels_last)
            self.vae.to(memory_format=torch.channels_last)
            self._channels_last = True
        if fuse_qkv and hasattr(self.unet, "fuse_qkv_projections"):
            self.unet.fuse_qkv_projections()
        if compile:
            self.unet.compile(mode=mode, fullgraph=False)
            if vae:
                self.vae.decoder.compile(mode=mode, fullgraph=False)
        return self

    def plan(self, n: int = 1) -> dict:
        """The batch sizes a call with ``n`` pictures per embedding uses (instance settings, else :func:`memory_plan`)."""
        auto = memory_plan(self.device, n)
        return {"batch_size": self.batch_size or auto["batch_size"],
                "vae_batch_size": self.vae_batch_size or auto["vae_batch_size"]}  # fmt: skip

    # -- generation ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, embeds, n: int = 1, seed: int = 0, steps: int | None = None, guidance: float | None = None,
                 noise_level: int | None = None, prompt: str | None = None, engine: str | None = None,
                 batch_size: int | None = None) -> np.ndarray:  # fmt: skip
        """n pictures for each embedding: uint8 [B, n, H, W, 3]. Raises ValueError on NaN/inf embeddings."""
        from .generators import check_embeds

        e = check_embeds(embeds, self.emb_dim)
        cfg = dict(steps=self.steps if steps is None else steps, guidance=self.guidance if guidance is None else guidance,
                   noise_level=self.noise_level if noise_level is None else noise_level,
                   prompt=self.prompt if prompt is None else prompt)  # fmt: skip
        max_level = self.pipe.image_noising_scheduler.config.num_train_timesteps
        if not 0 <= cfg["noise_level"] < max_level:
            raise ValueError(f"noise_level must be in [0, {max_level - 1}], got {cfg['noise_level']}")
        if n < 1 or cfg["steps"] < 1:
            raise ValueError(f"n and steps must be >= 1 (got n={n}, steps={cfg['steps']})")
        engine = engine or self.engine
        if engine == "diffusers":
            out = [self._generate_diffusers(e[b : b + 1], n, seed, **cfg) for b in range(len(e))]
        elif engine == "s2v":
            plan = self.plan(n)
            bs = max(1, batch_size or plan["batch_size"])
            out = [self._generate_s2v(e[i : i + bs], n, seed, vae_batch=plan["vae_batch_size"], **cfg)
                   for i in range(0, len(e), bs)]  # fmt: skip
        else:
            raise ValueError(f"engine must be 's2v' or 'diffusers', not {engine!r}")
        images = torch.cat(out) if out else torch.zeros(0, 3, self.height, self.width)
        check_finite_pictures(images)
        images = self._to_uint8(images)
        return images.reshape(len(e), n, *images.shape[1:])

    @staticmethod
    def _to_uint8(images: torch.Tensor) -> np.ndarray:
        """[N, 3, H, W] in [0, 1] -> uint8 [N, H, W, 3] (rounded as diffusers' ``numpy_to_pil``)."""
        return (images.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def _generate_diffusers(self, e, n, seed, steps, guidance, noise_level, prompt) -> torch.Tensor:
        """The plain pipeline call for one embedding [1, D] -> [n, 3, H, W] in [0, 1]."""
        out = self.pipe(image_embeds=e.to(self.device, self.dtype), prompt=prompt, noise_level=noise_level,
                        num_inference_steps=steps, guidance_scale=guidance, num_images_per_prompt=n,
                        height=self.height, width=self.width, eta=self.eta,
                        generator=torch.Generator().manual_seed(seed), output_type="pt")  # fmt: skip
        return out.images

    def _text_embeds(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(conditional, unconditional) text embeddings [1, L, C] of ``prompt`` and of the empty negative prompt."""
        key = (prompt, self.device, self.dtype)
        if key not in self._text_cache:
            cond, uncond = self.pipe.encode_prompt(prompt=prompt, device=self.device, num_images_per_prompt=1,
                                                   do_classifier_free_guidance=True, negative_prompt=None)  # fmt: skip
            self._text_cache[key] = (cond, uncond)
        return self._text_cache[key]

    def _generate_s2v(self, e, n, seed, steps, guidance, noise_level, prompt, vae_batch: int = 8) -> torch.Tensor:
        """What the pipeline does, written out for a batch of embeddings [b, D] -> [b * n, 3, H, W] in [0, 1]."""
        from diffusers.utils.torch_utils import randn_tensor

        pipe, device, dtype = self.pipe, self.device, self.dtype
        b = len(e)
        shape = (
            n,
            pipe.unet.config.in_channels,
            self.height // pipe.vae_scale_factor,
            self.width // pipe.vae_scale_factor,
        )
        # noise exactly as the pipeline draws it for each embedding: embedding noise first, then the n latents
        conds, latents = [], []
        e = e.to(device, dtype)
        for i in range(b):
            gen = torch.Generator().manual_seed(seed)
            noise = randn_tensor(e[i : i + 1].shape, generator=gen, device=device, dtype=dtype)
            conds.append(
                pipe.noise_image_embeddings(e[i : i + 1], torch.tensor([noise_level], device=device), noise=noise)
            )
            latents.append(randn_tensor(shape, generator=gen, device=device, dtype=dtype))
        cond = torch.cat(conds).repeat_interleave(n, 0)  # [b n, 2 D]
        latents = torch.cat(latents) * pipe.scheduler.init_noise_sigma
        text_c, text_u = self._text_embeds(prompt)
        cfg = guidance > 1.0
        if cfg:
            class_labels = torch.cat([torch.zeros_like(cond), cond])
            text = torch.cat([text_u.expand(len(cond), -1, -1), text_c.expand(len(cond), -1, -1)])
        else:
            class_labels, text = cond, text_c.expand(len(cond), -1, -1)
        scheduler = copy.deepcopy(pipe.scheduler)  # no shared state between calls
        scheduler.set_timesteps(steps, device=device)
        extra = pipe.prepare_extra_step_kwargs(None, self.eta)
        unet = pipe.unet  # compiled in place by optimize(), if it was called
        if self._channels_last:
            latents = latents.contiguous(memory_format=torch.channels_last)
        for t in scheduler.timesteps:
            x = torch.cat([latents, latents]) if cfg else latents
            x = scheduler.scale_model_input(x, t)
            eps = unet(x, t, encoder_hidden_states=text, class_labels=class_labels, return_dict=False)[0]
            if cfg:
                eps_u, eps_c = eps.chunk(2)
                eps = eps_u + guidance * (eps_c - eps_u)
            latents = scheduler.step(eps, t, latents, **extra, return_dict=False)[0]
        decode = pipe.vae.decode
        scale = pipe.vae.config.scaling_factor
        chunk = max(1, vae_batch)  # VAE decoding at 768 px is the memory peak: a few pictures at a time
        images = torch.cat(
            [decode(latents[i : i + chunk] / scale, return_dict=False)[0] for i in range(0, len(latents), chunk)]
        )
        return pipe.image_processor.postprocess(images, output_type="pt")


def memory_plan(device, n: int = 1) -> dict:
    """Batch sizes for 768 px generation that fit the card (estimates, see docs/full_profile.md): UNet images per
    batch (each embedding brings ``2 n``: both guidance branches) 32 on >= 40 GB, 16 on >= 20 GB, 8 below (a 16 GB
    T4); pictures per VAE decode 8 / 2 / 1. On the CPU: 4 embeddings and 8 pictures."""
    gb = card_memory_gb(device)
    if gb is None:
        return {"batch_size": 4, "vae_batch_size": 8}
    unet_images, vae = (32, 8) if gb >= 40 else (16, 2) if gb >= 20 else (8, 1)
    return {"batch_size": max(1, unet_images // (2 * max(1, n))), "vae_batch_size": vae}


def check_finite_pictures(images: torch.Tensor) -> None:
    """FloatingPointError naming how many pictures hold NaN/inf (a half-precision overflow), instead of black ones."""
    bad = ~torch.isfinite(images.flatten(1)).all(1)
    if bool(bad.any()):
        raise FloatingPointError(f"{int(bad.sum())} of {len(images)} generated pictures hold NaN or inf values (a "
                                 f"half-precision overflow in the UNet or VAE?): try dtype=torch.bfloat16 on a card "
                                 f"that has it, or torch.float32")  # fmt: skip


def fast_gpu_flags() -> None:
    """TF32 matmuls and convolutions, cuDNN autotuning: set once per process, before anything is measured."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True


def _local_folder(repo: str) -> bool:
    """A local folder rather than a hub id (``owner/name``)."""
    return os.path.isdir(repo) or repo.startswith(("/", ".", "~")) or repo.count("/") > 1


def _check_local(repo: str) -> None:
    if _local_folder(repo) and not os.path.isdir(os.path.expanduser(repo)):
        raise _error(f"{UNCLIP_REPO_SETTING}={repo}: no such folder (a local copy of the Stable unCLIP repository, "
                     f"or a hub id such as {UNCLIP_REPO_MIRROR}). {TOY_ALTERNATIVE}")  # fmt: skip


def fetch_stable_unclip(repo: str | None = None, dtype: torch.dtype = torch.float16, cache_dir: str | None = None,
                        variant: str | None = "auto") -> str:  # fmt: skip
    """Download (or find in the cache) the files :func:`load_stable_unclip` needs, without loading anything: the
    fp16 variant for a half-precision ``dtype`` when the repository has it. Returns the local folder. Run it on one
    process (rank 0) before the others load; offline it fails in seconds with a :class:`~s2v_lib.registry.ModelError`."""
    diffusers = _need("diffusers", "diffusers")
    repo = unclip_repo(repo)
    _check_local(repo)
    if _local_folder(repo):
        return os.path.expanduser(repo)
    try:
        with warnings.catch_warnings(), _held_logs():
            warnings.simplefilter("ignore", FutureWarning)
            path, _ = _from_pretrained(
                lambda v: diffusers.DiffusionPipeline.download(repo, variant=v, cache_dir=cache_dir),
                _variants(variant, dtype),
            )  # fmt: skip
    except Exception as err:
        raise _load_failed(f"Stable unCLIP ({repo})", err, "stable-unclip", f"hf download {repo}", UNCLIP_REPO_SETTING,
                           repo) from None  # fmt: skip
    return str(path)


def load_stable_unclip(device=None, repo: str | None = None, dtype: torch.dtype | None = None,
                       cache_dir: str | None = None, image_encoder: UnCLIPImageEncoder | None = None,
                       variant: str | None = "auto", **settings) -> StableUnCLIPGenerator:  # fmt: skip
    """Stable unCLIP 2.1 (:func:`unclip_repo`: ``repo``, ``$S2V_UNCLIP_REPO`` or the community mirror) as a
    :class:`StableUnCLIPGenerator` on ``device`` (default :func:`best_device`), in the card's half type
    (:func:`half_dtype`) on a GPU and fp32 on the CPU, from the fp16 variant files where the repository has them.

    ``image_encoder``: an already loaded :class:`UnCLIPImageEncoder` (:func:`load_unclip_image_encoder`) that the
    pipeline reuses instead of loading a second ViT-H. ``settings`` go to the generator (``steps``, ``guidance``,
    ``noise_level``, ``prompt``, ``engine``, ``batch_size`` ...). Failures: module docstring.
    """
    diffusers = _need("diffusers", "diffusers")
    _need("transformers", "transformers")
    repo = unclip_repo(repo)
    _check_local(repo)
    device = torch.device(device) if device is not None else best_device()
    dtype = dtype or half_dtype(device)
    reuse = {} if image_encoder is None else {"image_encoder": image_encoder.model,
                                              "feature_extractor": image_encoder.processor}  # fmt: skip

    def load(v):
        pipe = diffusers.StableUnCLIPImg2ImgPipeline.from_pretrained(repo, dtype=dtype, variant=v,
                                                                     cache_dir=cache_dir, **reuse)  # fmt: skip
        return pipe.to(device)

    try:
        with warnings.catch_warnings(), _held_logs():
            warnings.simplefilter("ignore", FutureWarning)
            pipe, used = _from_pretrained(load, _variants(variant, dtype))
    except Exception as err:
        raise _load_failed(f"Stable unCLIP ({repo})", err, "stable-unclip", f"hf download {repo}", UNCLIP_REPO_SETTING,
                           repo) from None  # fmt: skip
    gen = StableUnCLIPGenerator(pipe, **settings)
    gen.repo, gen.variant = repo, used
    return gen


# ----------------------------------------------------------------------------------------------------------------
# random-weight pipelines of the real classes (tests, benchmarks): no download


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP byte-level alphabet: 256 printable characters standing for the 256 byte values."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, extra = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def offline_clip_tokenizer(model_max_length: int = 77, folder=None):
    """A byte-level ``CLIPTokenizer`` with no merges (514 tokens: bytes, bytes + ``</w>``, start, end): it tokenizes any
    text, and needs no download. ``folder`` is where vocab.json/merges.txt go for transformers < 5 (a temp dir)."""
    import inspect
    import json
    import tempfile
    from pathlib import Path

    from transformers import CLIPTokenizer

    chars = _bytes_to_unicode()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    if "vocab" in inspect.signature(CLIPTokenizer.__init__).parameters:  # transformers >= 5
        return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)
    folder = Path(folder or tempfile.mkdtemp(prefix="s2v-clip-tok-"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"),
                         model_max_length=model_max_length)  # fmt: skip


# SD 2.1 unCLIP-H, from Stability's v2-1-stable-unclip-h-inference.yaml (model_channels 320, channel_mult 1-2-4-4,
# attention at the first three levels, num_head_channels 64, linear transformer projections, context 1024,
# "sequential" class conditioning with adm_in_channels 2048, v-prediction, 96x96 latents = 768 px; VAE ch 128,
# ch_mult 1-2-4-4, scale 0.18215; noise augmentation: 1000 squared-cosine steps over 1024-d embeddings) converted with
# diffusers' convert_from_ckpt rules. The text encoder is OpenCLIP ViT-H's text tower up to its penultimate layer (23
# of 24 layers), as in SD 2.x. Written out by hand: the hub's own config files were not available here.
SD21_UNCLIP_CONFIGS = {
    "unet": dict(
        sample_size=96, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=(5, 10, 20, 20), use_linear_projection=True, cross_attention_dim=1024,
        class_embed_type="projection", projection_class_embeddings_input_dim=2048, upcast_attention=True,
    ),
    "vae": dict(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=768,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215,
    ),
    "text_encoder": dict(
        vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
        max_position_embeddings=77, hidden_act="gelu", projection_dim=512, layer_norm_eps=1e-5,
    ),
    # OpenCLIP ViT-H/14 image tower in transformers' format (unused when image_embeds are given: only its dtype is read)
    "image_encoder": dict(
        hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16, image_size=224,
        patch_size=14, projection_dim=1024, hidden_act="gelu", layer_norm_eps=1e-5,
    ),
    "scheduler": dict(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=False, steps_offset=1,
    ),
    "image_noising_scheduler": dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2"),
    "embedding_dim": 1024,
}  # fmt: skip

TINY_UNCLIP_CONFIGS = {
    "unet": dict(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, cross_attention_dim=32, norm_num_groups=8,
        class_embed_type="projection", projection_class_embeddings_input_dim=32,
    ),
    "vae": dict(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, sample_size=16, norm_num_groups=8,
        block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, scaling_factor=0.18215,
    ),
    "text_encoder": dict(
        vocab_size=514, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=16, hidden_act="gelu", projection_dim=32,
    ),
    "image_encoder": dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=16, patch_size=8,
        projection_dim=16,
    ),
    "scheduler": SD21_UNCLIP_CONFIGS["scheduler"],
    "image_noising_scheduler": SD21_UNCLIP_CONFIGS["image_noising_scheduler"],
    "embedding_dim": 16,
}  # fmt: skip


def build_stable_unclip_pipeline(size: str = "tiny", device: str = "cpu", dtype: torch.dtype = torch.float32,
                                 seed: int = 0, image_encoder: str = "stub"):  # fmt: skip
    """A real ``StableUnCLIPImg2ImgPipeline`` with random weights and no download.

    ``size="tiny"`` (CPU tests: 16 px, 16-d embeddings) or ``"sd21"`` (the SD 2.1 unCLIP-H architecture: 768 px,
    1024-d embeddings, ~865M-parameter UNet; build it on a GPU). ``image_encoder="stub"`` gives a one-layer vision model
    (the pipeline never runs it when ``image_embeds`` are passed, it only reads its dtype); ``"full"`` the ViT-H size.
    The CLIP image-embedding statistics of the normaliser are random too (mean ~ N(0, 1), std ~ U(0.5, 1.5)).
    """
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableUnCLIPImg2ImgPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    configs = {"tiny": TINY_UNCLIP_CONFIGS, "sd21": SD21_UNCLIP_CONFIGS}.get(size)
    if configs is None:
        raise ValueError(f"size must be 'tiny' or 'sd21', not {size!r}")
    tok = offline_clip_tokenizer(model_max_length=configs["text_encoder"]["max_position_embeddings"])
    emb = configs["embedding_dim"]
    vision = dict(configs["image_encoder"])
    if image_encoder == "stub":
        vision.update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=16,
                      patch_size=8)  # fmt: skip
    elif image_encoder != "full":
        raise ValueError(f"image_encoder must be 'stub' or 'full', not {image_encoder!r}")
    vision["projection_dim"] = emb
    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel(**configs["unet"])
        vae = AutoencoderKL(**configs["vae"])
        text = CLIPTextModel(CLIPTextConfig(**configs["text_encoder"], bos_token_id=tok.bos_token_id,
                                            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))  # fmt: skip
        image = CLIPVisionModelWithProjection(CLIPVisionConfig(**vision))
        normalizer = StableUnCLIPImageNormalizer(embedding_dim=emb)
    g = torch.Generator().manual_seed(seed + 1)
    normalizer.mean.data.copy_(torch.randn(1, emb, generator=g))
    normalizer.std.data.copy_(torch.rand(1, emb, generator=g) + 0.5)
    size_px = vision["image_size"]
    pipe = StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(size={"shortest_edge": size_px}, crop_size={"height": size_px, "width": size_px}),
        image_encoder=image, image_normalizer=normalizer,
        image_noising_scheduler=DDPMScheduler(**configs["image_noising_scheduler"]),
        tokenizer=tok, text_encoder=text, unet=unet, scheduler=DDIMScheduler(**configs["scheduler"]), vae=vae,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    for module in pipe.components.values():  # plain nn.Module.to: nothing here must stay in float32
        if isinstance(module, nn.Module):
            nn.Module.to(module, device=device, dtype=dtype)
    return pipe
