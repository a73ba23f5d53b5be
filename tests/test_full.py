"""The full profile's models on tiny random-weight instances of the real classes (no download), and their offline
failures. Real names: OpenCLIP ViT-H-14 / Stable unCLIP 2.1 must fail fast offline with a message a student can act on.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("S2V_QUIET", "1")
torch.set_num_threads(1)  # tiny models: one thread is as fast and robust when the CPU is shared

open_clip = pytest.importorskip("open_clip")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from s2v_lib import full  # noqa: E402
from s2v_lib.registry import ModelError  # noqa: E402

TINY_NAME = "s2v-test-tiny-vit"


# ----------------------------------------------------------------------------------------------------------------
# OpenCLIP


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("open_clip_cfg")
    (folder / f"{TINY_NAME}.json").write_text(json.dumps(full.tiny_openclip_config(embed_dim=24, image_size=32)))
    open_clip.add_model_config(folder)
    torch.manual_seed(0)
    return full.load_openclip_image_encoder("cpu", name=TINY_NAME, pretrained=None)


def test_openclip_encoder_interface_and_own_preprocessing(tiny_clip):
    enc = tiny_clip
    assert isinstance(enc, full.OpenCLIPImageEncoder) and enc.dim == 24
    # only the visual tower is kept
    assert not any("transformer.resblocks" in k and not k.startswith("visual") for k, _ in enc.named_parameters())
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 40, 64, 3), dtype=np.uint8)
    e = enc.encode(frames)
    assert e.shape == (5, 24) and e.dtype == torch.float32 and torch.isfinite(e).all()
    # deterministic, batch-size independent, and a single [H, W, 3] frame works
    assert torch.allclose(enc.encode(frames, batch_size=2), e, atol=1e-5)
    assert torch.allclose(enc.encode(frames[0]), e[:1], atol=1e-5)
    # open_clip's own preprocessing: short side -> 32, centre crop. Pixels outside the crop do not matter,
    # pixels inside do.
    edited = frames.copy()
    edited[:, :, :8] = 0  # left 8 of 64 columns: scaled to 6.4 of 51 columns, outside the central 32
    assert torch.allclose(enc.encode(edited), e, atol=1e-5)
    edited[:, :, 28:36] = 255  # the centre
    assert not torch.allclose(enc.encode(edited), e, atol=1e-3)
    # frames of different sizes in one call (a list), same result as one by one
    mixed = [frames[0], rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)]
    both = enc.encode(mixed)
    assert torch.allclose(both[0], e[0], atol=1e-5) and both.shape == (2, 24)
    with pytest.raises(ValueError, match="uint8"):
        enc.encode(frames.astype(np.float32))


def test_openclip_preprocess_matches_open_clip_transform(tiny_clip):
    from PIL import Image

    enc = tiny_clip
    frame = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    x = enc.preprocess(Image.fromarray(frame))
    assert tuple(x.shape) == (3, 32, 32)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN)[:, None, None]
    std = torch.tensor(open_clip.OPENAI_DATASET_STD)[:, None, None]
    assert -mean.max() / std.min() - 0.01 <= x.min() and x.max() <= (1 - mean.min()) / std.min() + 0.01
    assert torch.allclose(enc.visual(x[None]).float(), enc.encode(frame), atol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# Stable unCLIP


@pytest.fixture(scope="module")
def tiny_unclip():
    pipe = full.build_stable_unclip_pipeline("tiny", seed=0)
    return full.StableUnCLIPGenerator(pipe)


def test_pipeline_is_the_real_diffusers_class(tiny_unclip):
    from diffusers import StableUnCLIPImg2ImgPipeline

    gen = tiny_unclip
    assert isinstance(gen.pipe, StableUnCLIPImg2ImgPipeline)
    assert (gen.steps, gen.guidance, gen.noise_level, gen.prompt) == (20, 10.0, 0, "")  # the authors' defaults
    assert gen.emb_dim == 16 and gen.height == gen.width == 16


def test_generate_shapes_determinism_and_diversity(tiny_unclip):
    gen = tiny_unclip
    e = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    a = gen.generate(e, n=2, seed=7)
    assert a.shape == (3, 2, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(gen.generate(e, n=2, seed=7), a)  # same seed, same pictures
    assert not np.array_equal(gen.generate(e, n=2, seed=8), a)  # another seed, other pictures
    assert np.abs(a[:, 0].astype(int) - a[:, 1]).mean() > 5  # n pictures per sound differ (generator noise)
    assert np.abs(a[0].astype(int) - a[1]).mean() > 5  # different embeddings, different pictures
    # an embedding's pictures do not depend on the rest of the batch
    assert np.array_equal(gen.generate(e[1:2], n=2, seed=7)[0], a[1])
    # a 1-d embedding is one sound
    assert gen.generate(e[0], n=1, seed=7).shape == (1, 1, 16, 16, 3)


def test_engines_agree_with_plain_diffusers_pipeline(tiny_unclip):
    gen = tiny_unclip
    e = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    ref = gen.generate(e, n=2, seed=3, engine="diffusers")
    assert np.array_equal(gen.generate(e, n=2, seed=3, engine="s2v", batch_size=1), ref)
    assert np.array_equal(gen.generate(e, n=2, seed=3, engine="s2v", batch_size=3), ref)
    # and the plain call, written out by hand here, is what the diffusers engine does
    out = gen.pipe(
        image_embeds=e[:1],
        prompt="",
        noise_level=0,
        num_inference_steps=20,
        guidance_scale=10.0,
        num_images_per_prompt=2,
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    ).images
    assert np.array_equal((out * 255).round().astype(np.uint8), ref[0])


def _record_unet_calls(gen):
    calls = []

    def hook(module, args, kwargs):
        calls.append(
            {
                "x": args[0].detach().clone(),
                "class_labels": kwargs["class_labels"].detach().clone(),
                "text": kwargs["encoder_hidden_states"].detach().clone(),
            }
        )

    return calls, gen.unet.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("engine", ["s2v", "diffusers"])
def test_audio_embedding_is_image_embeds_and_zeros_are_the_unconditional_branch(tiny_unclip, engine):
    gen = tiny_unclip
    e = torch.randn(1, 16, generator=torch.Generator().manual_seed(2)) * 3
    calls, handle = _record_unet_calls(gen)
    try:
        gen.generate(e, n=2, seed=0, steps=3, engine=engine)
    finally:
        handle.remove()
    assert len(calls) == 3  # one UNet call per step: both guidance branches in one batch
    for c in calls:
        labels = c["class_labels"]
        assert labels.shape == (4, 32)  # [uncond x2, cond x2], 16-d embedding + 16-d noise-level embedding
        assert torch.equal(labels[:2], torch.zeros_like(labels[:2]))  # zero embeddings: the unconditional branch
        # noise_level 0: the embedding itself (up to the schedule's sqrt(alpha_bar_0) ~ 1), then sin/cos of level 0
        assert torch.allclose(labels[2:, :16], e.expand(2, -1), atol=0.05)
        assert torch.allclose(labels[2:, 16:24], torch.ones(2, 8)) and torch.allclose(
            labels[2:, 24:], torch.zeros(2, 8)
        )
        assert torch.equal(c["text"][:2], c["text"][2:])  # empty prompt in both branches
    # guidance 1: no unconditional branch at all
    calls, handle = _record_unet_calls(gen)
    try:
        gen.generate(e, n=2, seed=0, steps=2, guidance=1.0, engine=engine)
    finally:
        handle.remove()
    assert all(c["class_labels"].shape == (2, 32) and (c["class_labels"] != 0).any(1).all() for c in calls)


def test_settings_change_the_pictures(tiny_unclip):
    gen = tiny_unclip
    e = torch.randn(2, 16, generator=torch.Generator().manual_seed(4))
    base = gen.generate(e, n=1, seed=0, steps=5)
    assert not np.array_equal(gen.generate(e, n=1, seed=0, steps=5, guidance=3.0), base)
    assert not np.array_equal(gen.generate(e, n=1, seed=0, steps=5, noise_level=500), base)
    assert not np.array_equal(gen.generate(e, n=1, seed=0, steps=5, prompt="a dog"), base)
    gen.steps = 5
    try:
        assert np.array_equal(gen.generate(e, n=1, seed=0), base)  # instance defaults are settable
    finally:
        gen.steps = 20


def test_bad_inputs_are_refused(tiny_unclip):
    gen = tiny_unclip
    e = torch.randn(2, 16)
    e[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        gen.generate(e)
    with pytest.raises(ValueError, match="shape"):
        gen.generate(torch.randn(2, 15))
    with pytest.raises(ValueError, match="noise_level"):
        gen.generate(torch.randn(1, 16), noise_level=1000)
    with pytest.raises(ValueError, match="engine"):
        gen.generate(torch.randn(1, 16), engine="fast")


def test_sd21_architecture_configs_build_the_real_sizes():
    """The hand-written SD 2.1 unCLIP-H configs give the published sizes (UNet ~865.9M, VAE ~83.7M, text ~340M):
    built on the meta device, so no memory or time is spent on weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = full.SD21_UNCLIP_CONFIGS
    with torch.device("meta"):
        unet = UNet2DConditionModel(**cfg["unet"])
        vae = AutoencoderKL(**cfg["vae"])
        text = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))
    count = lambda m: sum(p.numel() for p in m.parameters()) / 1e6  # noqa: E731
    # UNet: SD 2.1's 865.9M plus the 2048 -> 1280 -> 1280 class-embedding projection (~4.3M)
    assert 865 < count(unet) < 875
    assert 83 < count(vae) < 84.5
    assert 335 < count(text) < 345
    assert cfg["unet"]["sample_size"] * 2 ** (len(cfg["vae"]["block_out_channels"]) - 1) == 768


# ----------------------------------------------------------------------------------------------------------------
# offline: clear errors, fast


def test_offline_real_openclip_fails_fast_with_a_clear_message():
    t0 = time.time()
    with pytest.raises(ModelError) as err:
        full.load_openclip_image_encoder("cpu")
    msg = str(err.value)
    assert time.time() - t0 < 20
    assert "ViT-H-14" in msg and "laion2b_s32b_b79k" in msg and "S2V_PROFILE=toy" in msg and "internet" in msg
    assert "\n" not in msg


def test_offline_real_unclip_fails_fast_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.delenv(full.UNCLIP_REPO_SETTING, raising=False)
    monkeypatch.setenv(full.LOG_DIR_SETTING, str(tmp_path / "logs"))
    for load in (full.load_stable_unclip, full.load_unclip_image_encoder, full.fetch_stable_unclip):
        t0 = time.time()
        with pytest.raises(ModelError) as err:
            load("cpu") if load is not full.fetch_stable_unclip else load()
        msg = str(err.value)
        assert time.time() - t0 < 20
        # the repository (the community mirror by default), the setting, the command, the original id as alternative
        assert full.UNCLIP_REPO_MIRROR in msg and "S2V_UNCLIP_REPO" in msg and full.UNCLIP_REPO_ORIGINAL in msg
        assert f"hf download {full.UNCLIP_REPO_MIRROR}" in msg and "huggingface-cli" not in msg
        assert "not downloaded" in msg and "S2V_PROFILE=toy" in msg and "\n" not in msg
        # the original error is kept in the log file the message names
        import re

        logged = Path(re.search(r"full error in (\S+\.log)", msg)[1])
        assert logged.parent == tmp_path / "logs" and "Traceback" in logged.read_text()


def test_repository_is_a_setting(monkeypatch, tmp_path):
    monkeypatch.delenv(full.UNCLIP_REPO_SETTING, raising=False)
    assert full.unclip_repo() == "sd2-community/stable-diffusion-2-1-unclip" == full.UNCLIP_REPO
    monkeypatch.setenv(full.UNCLIP_REPO_SETTING, full.UNCLIP_REPO_ORIGINAL)
    assert full.unclip_repo() == full.UNCLIP_REPO_ORIGINAL and full.unclip_repo("me/mine") == "me/mine"
    monkeypatch.setenv(full.UNCLIP_REPO_SETTING, str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="no such folder") as err:
        full.load_stable_unclip("cpu")
    assert "S2V_UNCLIP_REPO=" in str(err.value) and "\n" not in str(err.value)


def _raise(exc):
    def load(*args, **kwargs):
        raise exc

    return load


def test_out_of_memory_not_found_and_other_failures_are_told_apart(monkeypatch, tmp_path):
    import httpx
    from diffusers import StableUnCLIPImg2ImgPipeline
    from huggingface_hub.errors import RepositoryNotFoundError

    monkeypatch.setenv(full.LOG_DIR_SETTING, str(tmp_path / "logs"))
    missing = RepositoryNotFoundError("404 Client Error. Repository Not Found for url: https://huggingface.co/x",
                                      response=httpx.Response(404, request=httpx.Request("GET", "https://x")))  # fmt: skip
    cases = {
        "oom": (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "out of GPU memory"),
        "not_found": (missing, "has no repository renamed/unclip (removed or renamed?)"),
        "other": (RuntimeError("something odd"), "could not be loaded (RuntimeError: something odd"),
    }
    for kind, (exc, words) in cases.items():
        monkeypatch.setattr(StableUnCLIPImg2ImgPipeline, "from_pretrained", _raise(exc))
        assert full.failure_kind(exc) == kind
        with pytest.raises(ModelError) as err:
            full.load_stable_unclip("cpu", repo="renamed/unclip")
        msg = str(err.value)
        assert words in msg and "\n" not in msg and "full error in" in msg, msg
        assert "download" not in msg, msg  # never "a download" for memory, a missing repository or odd errors
    assert full.failure_kind(MemoryError()) == "oom"


# ----------------------------------------------------------------------------------------------------------------
# precision and the real loading code, on tiny random weights saved as a local "repository"


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory):
    """The tiny pipeline saved as the hub's repository is laid out: fp32 files plus an fp16 variant (``both``), and a
    copy without the variant (``plain``)."""
    root = tmp_path_factory.mktemp("unclip-repo")
    full.build_stable_unclip_pipeline("tiny", seed=0).save_pretrained(root / "plain")
    full.build_stable_unclip_pipeline("tiny", seed=0).save_pretrained(root / "both")
    full.build_stable_unclip_pipeline("tiny", seed=0, dtype=torch.float16).save_pretrained(
        root / "both", variant="fp16"
    )
    return root


def test_openclip_half_precision_encodes(tiny_clip, tmp_path):
    """open_clip's bf16 conversion (the same path as fp16 on a GPU) keeps class_embedding in fp32: the input must take
    conv1's dtype, not the first parameter's."""
    torch.manual_seed(0)
    enc = full.load_openclip_image_encoder("cpu", name=TINY_NAME, pretrained=None, precision="bf16")
    assert enc.visual.class_embedding.dtype == torch.float32 and enc.visual.conv1.weight.dtype == torch.bfloat16
    assert full.input_dtype(enc.visual) == torch.bfloat16
    enc.visual.load_state_dict(
        {k: v.to(enc.visual.state_dict()[k].dtype) for k, v in tiny_clip.visual.state_dict().items()}
    )
    frames = np.random.default_rng(0).integers(0, 256, (3, 40, 64, 3), dtype=np.uint8)
    e16, e32 = enc.encode(frames), tiny_clip.encode(frames)
    assert e16.dtype == torch.float32 and e16.shape == e32.shape
    assert torch.nn.functional.cosine_similarity(e16, e32).min() > 0.99  # the same model, rounded


def test_unclip_loads_from_a_repository_in_bf16_with_one_image_encoder(tiny_repo):
    enc = full.load_unclip_image_encoder("cpu", repo=str(tiny_repo / "both"), dtype=torch.bfloat16)
    assert enc.model.dtype == torch.bfloat16 and enc.dim == 16 and full.input_dtype(enc.model) == torch.bfloat16
    rng = np.random.default_rng(0)
    mixed = [rng.integers(0, 256, (40, 64, 3), dtype=np.uint8), rng.integers(0, 256, (50, 30, 3), dtype=np.uint8)]
    e = enc.encode(mixed)
    assert e.shape == (2, 16) and e.dtype == torch.float32 and torch.isfinite(e).all()
    assert torch.allclose(enc.encode(mixed[1]), e[1:], atol=1e-6)  # one picture at a time: the same
    gen = full.load_stable_unclip("cpu", repo=str(tiny_repo / "both"), dtype=torch.bfloat16, image_encoder=enc)
    assert gen.variant == "fp16" and gen.dtype == torch.bfloat16 and gen.pipe.image_encoder is enc.model
    # the anchor is what the pipeline itself computes for a picture (feature_extractor -> image_encoder)
    x = gen.pipe.feature_extractor(images=mixed[:1], return_tensors="pt").pixel_values
    assert torch.allclose(gen.pipe.image_encoder(x.to(torch.bfloat16)).image_embeds.float(), e[:1])
    pics = gen.generate(e, n=2, seed=0, steps=4)
    ref = gen.generate(e, n=2, seed=0, steps=4, engine="diffusers")
    assert pics.shape == (2, 2, 16, 16, 3) and pics.dtype == np.uint8
    assert np.abs(pics.astype(int) - ref).mean() < 2  # bf16: the two engines agree up to rounding
    # a repository without the fp16 variant: the full-precision files, converted
    plain = full.load_stable_unclip("cpu", repo=str(tiny_repo / "plain"), dtype=torch.bfloat16)
    assert plain.variant is None and plain.dtype == torch.bfloat16
    assert full.load_stable_unclip("cpu", repo=str(tiny_repo / "plain")).dtype == torch.float32  # CPU default


def test_repository_setting_is_read_by_the_registry(tiny_repo, monkeypatch):
    from s2v_lib.registry import load_generator

    monkeypatch.setenv(full.UNCLIP_REPO_SETTING, str(tiny_repo / "plain"))
    gen = load_generator("stable-unclip")
    assert gen.emb_dim == 16 and gen.device.type == full.best_device().type and gen.repo == str(tiny_repo / "plain")


def test_nan_pictures_raise_instead_of_coming_back_black():
    gen = full.StableUnCLIPGenerator(full.build_stable_unclip_pipeline("tiny", seed=0))
    with torch.no_grad():
        gen.vae.decoder.conv_out.weight.fill_(float("inf"))
    for engine in ("s2v", "diffusers"):
        with pytest.raises(FloatingPointError, match="2 of 2 generated pictures hold NaN"):
            gen.generate(torch.randn(2, 16), n=1, steps=2, engine=engine)


def test_memory_plan_and_devices(monkeypatch):
    assert full.memory_plan("cpu") == {"batch_size": 4, "vae_batch_size": 8}
    assert full.half_dtype("cpu") == torch.float32 and full.best_device().type in ("cpu", "cuda", "mps")
    for gb, n, want in (
        (15.0, 1, (4, 1)),
        (15.0, 4, (1, 1)),
        (24.0, 1, (8, 2)),
        (80.0, 1, (16, 8)),
        (141.0, 4, (4, 8)),
    ):
        monkeypatch.setattr(full, "card_memory_gb", lambda device, gb=gb: gb)
        assert full.memory_plan("cuda", n) == {"batch_size": want[0], "vae_batch_size": want[1]}, (gb, n)
    gen = full.StableUnCLIPGenerator(full.build_stable_unclip_pipeline("tiny", seed=0), vae_batch_size=3)
    assert gen.plan(2) == {"batch_size": 8, "vae_batch_size": 3}  # the 141 GB "card" of the last iteration: 32 // 4


def test_optimize_compiles_in_place_and_leaves_global_flags_alone():
    gen = full.StableUnCLIPGenerator(full.build_stable_unclip_pipeline("tiny", seed=0))
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    gen.optimize(compile=True, mode=None)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark) == flags  # fmt: skip
    # compiled in place: the pipeline's own call (the reference engine) runs the same compiled modules
    assert gen.pipe.unet._compiled_call_impl is not None and gen.pipe.vae.decoder._compiled_call_impl is not None


def test_registry_routes_full_names_to_the_same_errors():
    from s2v_lib import registry

    for load, name in ((registry.load_image_encoder, "openclip-vit-h-14"), (registry.load_generator, "stable-unclip")):
        with pytest.raises(ModelError, match="S2V_PROFILE=toy"):
            load(name)


def test_offline_failure_in_a_fresh_process_prints_only_our_message():
    """What a student sees: the ModelError line, not the libraries' download chatter (held back while loading)."""
    import subprocess
    import sys

    code = (
        "import torch; torch.set_num_threads(1)\n"
        "from s2v_lib.registry import ModelError, load_generator, load_image_encoder\n"
        "for load, name in ((load_image_encoder, 'openclip-vit-h-14'), (load_generator, 'stable-unclip')):\n"
        "    try:\n"
        "        load(name)\n"
        "    except ModelError as err:\n"
        "        print(err)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("OpenCLIP ViT-H-14") and lines[1].startswith("Stable unCLIP")
    assert "Failed to download" not in proc.stderr and "Couldn't connect" not in proc.stderr, proc.stderr[-2000:]


# ----------------------------------------------------------------------------------------------------------------
# `S2V_PROFILE=full s2v demo --data DIR`, end to end on tiny random-weight instances of the real classes


DEMO_SIZES = ((112, 64), (64, 48), (48, 96))  # real clips come in several aspect ratios


def write_demo_folder(root):
    """A VGGSound-style folder: mirror-named mp4s (odd frame rates, stereo, shorter than 10 s, three frame sizes), a
    headerless CSV (id, start, label, split) that also lists two clips whose files are gone and one corrupt file, and
    the SSL top-k JSON in the authors' layout with one malformed entry. Two labels: a 300 Hz hum with red frames, a
    1.2 kHz whistle with blue frames."""
    from test_video import write_video

    from s2v_lib import video as V

    rows, ssl = [], {}
    for i in range(9):
        label = ("hum", "whistle")[i % 2]
        rec = V.ClipRecord(f"demo{i:07d}ab", 4.0 * i, label, "test" if i >= 6 else "train")
        colour = np.array([[200, 30, 30], [30, 30, 200]][i % 2], np.uint8)
        f0 = (300.0, 1200.0)[i % 2]
        w, h = DEMO_SIZES[i % 3]
        write_video(root / "video" / f"{rec.youtube_id}_{int(rec.start):06d}.mp4", fps=(12.5, 7.5, 25)[i % 3],
                    seconds=2.0 + 0.5 * (i % 3), rate=(22050, 44100)[i % 2], channels=1 + i % 2, size=(w, h),
                    audio=lambda t, f0=f0, c=1 + i % 2: np.stack([0.4 * np.sin(2 * np.pi * f0 * t)] * c),
                    frame=lambda k, colour=colour, w=w, h=h: np.broadcast_to(colour, (h, w, 3)).copy())  # fmt: skip
        rows.append(f"{rec.youtube_id},{int(rec.start)},{label},{rec.split}\n")
        ssl[rec.clip_id] = {"top1_box": [0, 0, 10, 10], "top10_moments": [11 + i, 50, 60]}
    (root / "video" / "broken0000_000000.mp4").write_bytes(b"\x00" * 2048)  # corrupt, in the train split
    rows += ["gone00001ab,0,hum,train\n", "gone00002ab,0,whistle,test\n", "broken0000,0,hum,train\n"]
    ssl["broken0000_0_10000"] = {"top1_box": None, "top10_moments": [3]}
    (root / "vggsound.csv").write_text("".join(rows))
    V.write_topk_json(root / "top1_boxes_top10_moments.json", ssl, format="authors")
    data = json.loads((root / "top1_boxes_top10_moments.json").read_text())
    data[1]["junk0000000_0_10000"] = ["not", "frames"]  # one bad entry: skipped and counted, not fatal
    (root / "top1_boxes_top10_moments.json").write_text(json.dumps(data))
    return ssl


def test_full_profile_demo_end_to_end(tiny_repo, monkeypatch, tmp_path):
    """`S2V_PROFILE=full s2v demo` through the real loading code (a local repository of tiny random weights given by
    S2V_UNCLIP_REPO): the pipeline's own image tower is the anchor encoder, loaded once and reused by the generator."""
    from s2v_lib.audio import FrontEnd
    from s2v_lib.audio_encoder import load_audio_encoder
    from s2v_lib.cli import main
    from s2v_lib.video import FeatureCache

    ssl = write_demo_folder(tmp_path / "vgg")
    calls = []
    real_enc, real_gen = full.load_unclip_image_encoder, full.load_stable_unclip

    def spy_enc(*args, **kw):
        calls.append("image_encoder")
        return real_enc(*args, **kw)

    def spy_gen(*args, **kw):
        calls.append(("generator", kw.get("image_encoder") is not None))
        return real_gen(*args, **kw)

    monkeypatch.setattr(full, "load_unclip_image_encoder", spy_enc)
    monkeypatch.setattr(full, "load_stable_unclip", spy_gen)
    monkeypatch.setenv(full.UNCLIP_REPO_SETTING, str(tiny_repo / "plain"))
    monkeypatch.setenv("S2V_PROFILE", "full")
    monkeypatch.setenv("S2V_THREADS", "1")
    monkeypatch.delenv("S2V_ANCHOR", raising=False)
    out = tmp_path / "run"
    t0 = time.time()
    from s2v_lib.demo import DemoConfig
    from s2v_lib.full_demo import run_full_demo, summary

    returned = run_full_demo(out, DemoConfig(epochs=2), force=False, data=tmp_path / "vgg")
    seconds = time.time() - t0
    assert calls == ["image_encoder", ("generator", True)]  # one ViT-H, reused by the generator
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps"] == returned["steps"] and "missing_files" not in summary(m).split("\n")[0]
    assert "2 indexed without a file, 1 failed {'corrupt': 1}; SSL entries skipped: 1" in summary(m)
    assert m["clips"] == {"train": 6, "test": 3, "failed_train": 1, "failed_test": 0, "failure_counts": {"corrupt": 1},
                          "indexed": 12, "missing_files": 2}  # fmt: skip
    assert m["ssl"]["skipped_entries"] == 1 and m["ssl"]["frame_base"] == 1 and m["ssl"]["entries"] == 10
    assert m["pairing"] == "top1" and m["batch_size"] == 6 and m["steps"] == 2 and m["epochs"] == 2
    assert m["image_encoder"] == "UnCLIPImageEncoder" and m["generator"] == "StableUnCLIPGenerator"
    assert m["anchor"] == "unclip" and m["unclip_repo"] == str(tiny_repo / "plain")
    assert set(m["stages"]) == {"load_anchor_encoder", "precompute", "train", "load_generator", "generate"}
    assert all(v["seconds"] >= 0 and v["peak_rss_gb"] > 0 for v in m["stages"].values())
    for key in ("r_at_1", "r_at_5", "same_category_at_1", "gen_accuracy", "oracle_accuracy", "gen_r_at_1"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["r_at_5"] == 1.0  # 3 held-out clips: the true frame is always among the 5 nearest
    for name in ("gallery.png", "training_curve.png", "audio_encoder.safetensors", "audio_encoder.ckpt",
                 "sounds/hum.wav", "sounds/whistle.wav"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    # the caches hold the SSL top-1 frame's embedding of every clip (frames of three sizes) and its 10 s of audio
    train = FeatureCache(out / "cache" / "train")
    assert train.embeds.shape == (6, 1, 16) and train.audio.shape == (6, 160_000)
    assert [int(train.frames[i, 0]) for i in range(6)] == [ssl[c]["top10_moments"][0] for c in train.ids]
    # the saved audio encoder is the paper's (ResNet-18, 1024 head, the paper front end) into the encoder's space
    model = load_audio_encoder(out / "audio_encoder.safetensors")
    assert {k: model.config[k] for k in ("emb_dim", "hidden", "front_end")} == {"emb_dim": 16, "hidden": 1024,
                                                                                 "front_end": "paper"}  # fmt: skip
    assert model.head[0].in_features == 512 and model.front_end.shape == FrontEnd.preset("paper").shape
    test = FeatureCache(out / "cache" / "test")
    from s2v_lib.metrics import retrieval_recall

    emb = model.embed(np.asarray(test.audio, np.float32))
    assert abs(retrieval_recall(emb, torch.from_numpy(np.array(test.embeds[:, 0])))["r_at_1"] - m["r_at_1"]) < 1e-9
    assert seconds < 120
    # a second run in the same folder is refused (no --force), before anything is loaded or recomputed
    calls.clear()
    assert main(["demo", "--data", str(tmp_path / "vgg"), "--out", str(out)]) == 1
    assert calls == []


def test_full_profile_demo_offline_stops_first_with_one_line(monkeypatch, tmp_path, capsys):
    from s2v_lib.cli import main

    write_demo_folder(tmp_path / "vgg")
    monkeypatch.setenv("S2V_PROFILE", "full")
    monkeypatch.delenv(full.UNCLIP_REPO_SETTING, raising=False)
    assert main(["demo", "--data", str(tmp_path / "vgg"), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not downloaded" in err[0] and f"hf download {full.UNCLIP_REPO_MIRROR}" in err[0]
    assert not (tmp_path / "run" / "cache").exists()


def test_full_profile_demo_needs_data_and_toy_profile_refuses_it(monkeypatch, tmp_path, capsys):
    from s2v_lib.cli import main

    monkeypatch.setattr(full, "fetch_stable_unclip", _raise(AssertionError("argument errors come before any load")))
    monkeypatch.setenv("S2V_PROFILE", "full")
    assert main(["demo", "--out", str(tmp_path / "a")]) == 1
    assert "--data DIR" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main(["demo", "--out", str(tmp_path / "a"), "--data", str(tmp_path / "nowhere")]) == 1
    assert "no such data folder" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "a"), "--data", str(tmp_path), "--pairing", "truth"]) == 1
    assert "ground truth" in capsys.readouterr().err and not (tmp_path / "a").exists()
    monkeypatch.setenv("S2V_PROFILE", "toy")
    assert main(["demo", "--out", str(tmp_path / "b"), "--data", str(tmp_path)]) == 1
    assert "S2V_PROFILE=full" in capsys.readouterr().err
