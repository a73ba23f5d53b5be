# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · The real thing: real clips and the models of the paper
#
# Every chapter so far ran in the toy world, where the truth is known and a laptop is enough. This one runs the same
# code path with the paper's own frozen models, OpenCLIP ViT-H/14 (Stable unCLIP's own image tower) as the image encoder and Stable unCLIP 2.1 as the
# generator, on a small set of real videos: a folder of your own clips, or a few hundred VGGSound clips streamed from a
# public mirror. On a GPU with internet it downloads the models (several GB), turns each clip into cached features,
# trains the audio encoder for a few minutes, draws pictures from held-out sounds and puts the figures next to the
# toy world's. Anywhere else (no GPU, no internet, or the toy profile) it says what it would do and stops cleanly:
# every later step checks one flag and skips.
#
# **What you will learn**
# - what changes between the toy and the full profile, and what stays the same;
# - the paper's front end on a real-length (10 s) clip, and what a short sound becomes;
# - how a folder of real clips is laid out, and where to get some (VGGSound, its mirror and its licence);
# - what a few minutes of training on a few hundred real clips gives, measured as in the toy world where that is
#   possible (retrieval R@k) and by a stand-in where it is not (no judge knows real categories);
# - how to plan a real run: disk space and time.
#
# To run it for real on Google Colab: choose a GPU runtime, run `%env S2V_PROFILE=full` in a cell, then run this
# notebook from the top.

# %%
import sys

if "google.colab" in sys.modules:  # on Colab: fetch the course once and install it (Colab's own torch is kept)
    import subprocess

    subprocess.run("test -d s2v-course || git clone -q --depth 1 https://github.com/OWNER/sound2vision-course s2v-course", shell=True, check=True)  # fmt: skip
    sys.path.insert(0, "s2v-course")
    from s2v_lib.course import install_course

    install_course("s2v-course")
import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image, display

from s2v_lib import audio, audio_encoder, config, course, results, selfcheck, toyworld, viz

info = course.setup_notebook()


# %% [markdown]
# ## 1. Can this machine run it?
#
# Three things are needed: the full profile (`S2V_PROFILE=full`, so that the registry loads the paper's models), a
# GPU (the paper's models are practical only there), and a connection to the Hugging Face hub (the models, and
# VGGSound if you use it). `READY` says whether all three are there.

# %%
def hub_reachable(host="huggingface.co", timeout=5.0):
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


# %%
missing = []
if config.profile() != "full":
    missing.append("the profile is toy (set S2V_PROFILE=full before the first cell; on Colab: %env S2V_PROFILE=full)")
if not torch.cuda.is_available():
    missing.append("there is no GPU (on Colab: Runtime > Change runtime type > GPU)")
if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
    missing.append("HF_HUB_OFFLINE is set, so nothing may be downloaded")
elif not missing and not hub_reachable():
    missing.append("the Hugging Face hub cannot be reached")
READY = not missing
print("READY: the real run follows" if READY else "not running the real thing here, because " + "; ".join(missing))

# %% [markdown]
# ## 2. Toy and full: one code path
#
# | | toy profile | full profile |
# |---|---|---|
# | data | the toy world, made on the fly | real clips: 10 s of 16 kHz sound, frames at 10 per second |
# | frozen image encoder $g$ | the course's small encoder, $d = 128$ | OpenCLIP ViT-H/14, $d = 1024$ |
# | frozen generator $G$ | the toy diffusion model, 32 x 32 | Stable unCLIP 2.1, 768 x 768 |
# | front end | the `toy` preset | the `paper` preset (the authors' numbers) |
# | audio encoder $f_\theta$ | ResNet-18, head $512 \to 512 \to 128$ | ResNet-18, head $512 \to 1024 \to 1024$ |
# | picture checked by | the toy judge (knows the truth) | the label of the held-out frame nearest to the picture |
#
# The calls are the same; `registry.load_image_encoder()` and `registry.load_generator()` pick the models by profile.
# The paper's front end frames a 10-s clip ($N = 160{,}000$ samples) into windows of $n_\text{seg} = 512$ samples that
# overlap by $n_\text{ov} = 353$, so the spectrogram has
#
# $$ F = \frac{n_\text{seg}}{2} + 1 \ \text{frequency bins}, \qquad
#    T = 1 + \left\lfloor \frac{N - n_\text{seg}}{n_\text{seg} - n_\text{ov}} \right\rfloor \ \text{time frames}. $$
#
# A toy clip is shorter than 10 s; like the authors' loader, the front end repeats a short sound until it fills the
# clip. One toy sound through both front ends:

# %%
clip = toyworld.make_clip(seed=7, index=3)
toy_spec, paper_spec = audio.FrontEnd.preset("toy")(clip.audio)[0], audio.FrontEnd.preset("paper")(clip.audio)[0]
fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), gridspec_kw={"width_ratios": [1, 3]})
viz.show_spectrogram(axes[0], toy_spec, f"toy front end: {tuple(toy_spec.shape[-2:])}")
viz.show_spectrogram(axes[1], paper_spec, f"paper front end, the sound repeated to 10 s: {tuple(paper_spec.shape[-2:])}")
fig.tight_layout()

# %%
paper = audio.FrontEnd.preset("paper")
tiled = np.tile(clip.audio, int(np.ceil(paper.n_samples / len(clip.audio))))[: paper.n_samples]
print(f"{len(clip.audio) / 16000:.1f} s toy sound, repeated to {len(tiled) / 16000:.0f} s as the paper's front end reads it")
viz.audio_player(tiled.astype(np.float32))

# %% [markdown]
# The audio encoder has the paper's size in the full profile (the ResNet-18 is the same; the head is wider):

# %%
for name, enc in (("toy", audio_encoder.AudioEncoder()), ("paper", audio_encoder.AudioEncoder.paper())):
    print(f"{name:5s} audio encoder: {sum(p.numel() for p in enc.parameters()) / 1e6:5.1f} M parameters, "
          f"embedding d = {enc.config['emb_dim']}")  # fmt: skip

# %% [markdown]
# ## 3. The data: your clips, or VGGSound
#
# The full profile reads a folder of videos (`s2v_lib.video`): mp4 (or mkv, webm, ...) files at any depth, plus
# optionally an index `index.csv` with one row per clip, `youtube_id, start_seconds, label, split` (VGGSound's own
# format), and optionally the authors' SSL file `top1_boxes_top10_moments.json` (with it each clip trains on its SSL
# top-1 frame, without it on its middle frame). Without an index, clips are named by their files and labelled by
# their folder (one folder per category). Clips may have any length, frame rate and number of audio channels: the
# loader cuts or repeats them to 10 s of mono 16 kHz sound and takes 10 frames a second.
#
# **Your own clips**: put a few hundred short videos in a folder, one subfolder per kind of sound (e.g. `dog/`,
# `rain/`, `train/`), and set `MY_CLIPS` below (or the environment variable `S2V_CLIPS`) to that folder.
#
# **VGGSound** (Chen, Xie, Vedaldi and Zisserman, ICASSP 2020; about 200,000 ten-second YouTube clips in 309 sound
# classes) is no longer served by its authors. The Hugging Face dataset `Loie/VGGSound` mirrors it as 20 archives of
# about 16 GB each plus the index `vggsound.csv`. VGGSound is released under the Creative Commons Attribution 4.0
# licence (cite the paper); the videos' copyright stays with their owners, so keep the clips for study and do not
# redistribute them. This notebook does not download a whole archive: it *streams* the first archive and keeps the
# first `N_CLIPS` clips it meets, with their labels from the index. Those clips fall in many
# classes, a few clips each: a hard, honest test for a short run.

# %%
MY_CLIPS = os.environ.get("S2V_CLIPS") or None  # a folder of your own videos, or None for VGGSound
N_CLIPS = 300  # how many VGGSound clips to stream
EPOCHS = 30  # the paper trains 50 epochs on all of VGGSound; a few hundred clips need minutes
OUT = course.runs_dir("real")  # runs/real: features, the trained encoder, pictures, metrics.json
MIRROR, SHARD = "Loie/VGGSound", "vggsound_00.tar.gz"


# %%
def vggsound_labels():
    """{(youtube_id, start_seconds): label} from the mirror's copy of the official index."""
    from huggingface_hub import hf_hub_download

    from s2v_lib.video import read_index

    path = hf_hub_download(MIRROR, "vggsound.csv", repo_type="dataset")
    return {(r.youtube_id, int(r.start)): r.label for r in read_index(path)}


# %%
def stream_vggsound(folder, n=N_CLIPS):
    """Stream the first n clips of one archive of the mirror into folder; returns their index rows."""
    import tarfile

    from huggingface_hub import HfFileSystem

    labels, rows = vggsound_labels(), []
    with HfFileSystem().open(f"datasets/{MIRROR}/{SHARD}", "rb") as f, tarfile.open(fileobj=f, mode="r|gz") as tar:
        for member in (m for m in tar if m.isfile() and m.name.endswith(".mp4")):
            stem = member.name.rsplit("/", 1)[-1][: -len(".mp4")]  # the mirror's names: {youtube_id}_{start:06d}
            (folder / f"{stem}.mp4").write_bytes(tar.extractfile(member).read())
            rows.append((stem[:-7], int(stem[-6:]), labels.get((stem[:-7], int(stem[-6:])), ""), "train"))
            if len(rows) == n:
                return rows
    return rows


# %%
def write_index(folder, rows):
    """index.csv as VGGSound's: youtube_id, start_seconds, label, split (no test rows: the run holds out a fifth)."""
    import csv

    with open(folder / "index.csv", "w", newline="") as out:
        csv.writer(out).writerows(rows)


# %%
if READY:
    data = course.resolve(MY_CLIPS) if MY_CLIPS else course.runs_dir("real", "vggsound")
    if not MY_CLIPS and not (data / "index.csv").exists():
        write_index(data, stream_vggsound(data))
    print(f"clips from {data}: {sum(1 for p in data.rglob('*') if p.suffix in ('.mp4', '.mkv', '.webm'))} video files")
else:
    print(f"would stream {N_CLIPS} VGGSound clips from the dataset {MIRROR} ({SHARD}) into runs/real/vggsound, "
          "or read your own folder (S2V_CLIPS)")  # fmt: skip

# %% [markdown]
# ## 4. Features, training, pictures
#
# `run_full_demo` (what `S2V_PROFILE=full s2v demo --data DIR` runs) does the whole method, in the paper guide's
# order:
#
# 1. load Stable unCLIP and its own OpenCLIP ViT-H/14 image tower, the anchors (one download, then cached);
# 2. decode every clip once and **cache its features**: the training frame's image embedding $v_i$ (1024 numbers)
#    and its 10 s of sound, so that training reads small arrays instead of videos;
# 3. train the audio encoder with InfoNCE-L2 at the paper's settings (Adam, learning rate $10^{-3}$, weight decay
#    $10^{-5}$, batch 64, seed 1234) for `EPOCHS` epochs;
# 4. measure on the held-out clips: retrieval R@k of their frames from their sounds, and pictures drawn from up to 64
#    held-out sounds and, as the oracle, from their true frames' embeddings;
# 5. write `metrics.json`, a gallery, the training curve, the held-out sounds and the trained encoder to `runs/real`.

# %%
if READY:
    from s2v_lib.demo import DemoConfig
    from s2v_lib.full_demo import run_full_demo

    cfg = DemoConfig(n_train=N_CLIPS, n_test=N_CLIPS, epochs=EPOCHS, pairing="top1", n_images=4)
    small_card = torch.cuda.get_device_properties(0).total_memory < 20e9  # e.g. a Colab T4: fewer pictures to judge
    real = run_full_demo(OUT, cfg, force=True, data=data, n_eval=16 if small_card else 64)
    print(f"{real['clips']['train']} training and {real['clips']['test']} held-out clips; {real['steps']} training "
          f"steps in {real['train_seconds'] / 60:.1f} min; whole run {real['seconds'] / 60:.1f} min on {real['device']}")  # fmt: skip
else:
    print("would run: run_full_demo(runs/real, DemoConfig(n_train=N_CLIPS, epochs=EPOCHS), data=<the clips>)")

# %% [markdown]
# Held-out sounds (their spectrograms), the frames they came with, and four pictures Stable unCLIP drew from each
# sound's embedding; then the training curve. Listen to the sounds the gallery was drawn from.

# %%
if READY:
    display(Image(filename=str(OUT / "gallery.png")))
    if (OUT / "training_curve.png").exists():
        display(Image(filename=str(OUT / "training_curve.png")))
else:
    print("would show runs/real/gallery.png and runs/real/training_curve.png")

# %%
if READY:
    from s2v_lib.audio import load_audio

    for wav in sorted((OUT / "sounds").glob("*.wav"))[:4]:
        print(wav.stem)
        display(viz.audio_player(load_audio(wav)))


# %% [markdown]
# ## 5. Real against toy
#
# The same keys as the toy run, side by side. Retrieval R@k means the same thing in both worlds. *Generated accuracy*
# does not: in the toy world a judge that knows the truth looks at the picture; on real clips there is no such judge,
# so a picture counts as right when the held-out frame nearest to it (in OpenCLIP's space) has the sound's label.
# Read the two columns as two measurements of one method, not as one scale.

# %%
def toy_reference():
    """The toy profile's figures: your `s2v demo` run if there is one, else the shipped ablation table's InfoNCE-L2 row."""
    try:
        m = results.load("demo")
        return m, results.describe(m)
    except FileNotFoundError:
        m = results.load("ablate")
        row = next(r for r in m["rows"].values() if r.get("loss") == "infonce_l2" and r.get("pairing") == "top1"
                   and r.get("generator") == "toy-diffusion" and r.get("source", "audio") == "audio")  # fmt: skip
        return row, results.describe(m)


# %%
toy, toy_source = toy_reference()
real = real if READY else {}
value = lambda x: x.get("mean", np.nan) if isinstance(x, dict) else x  # noqa: E731 - tables with intervals hold a mean
print(f"{'':20s}{'toy':>8s}{'real':>8s}")
for key in ("r_at_1", "r_at_5", "r_at_10", "same_category_at_1", "gen_accuracy", "oracle_accuracy"):
    print(f"{key:20s}{value(toy.get(key, np.nan)):8.3f}{value(real.get(key, np.nan)):8.3f}")
print(f"toy: {toy_source}" + ("" if READY else "; real: not run here (nan)"))

# %% [markdown]
# ## Summary
#
# - The full profile is the toy pipeline with the paper's parts swapped in: OpenCLIP ViT-H/14 anchors, Stable unCLIP
#   2.1 pictures, the authors' front end (a 257 x $T$ spectrogram of 10 s) and the paper's audio encoder size.
# - Real clips bring what the toy world leaves out: many classes with few clips each, sounds whose source is off
#   screen, and no judge that knows the truth, so the picture's accuracy can only be estimated through a frozen
#   encoder.
# - A few hundred clips and a few minutes show the method working end to end; the paper's figures need the whole
#   data set and 50 epochs.
#
# ## Exercises
#
# 1. **The paper's spectrogram.** From the formula for $T$ in section 2, compute the number of time frames of a 10-s
#    clip at 16 kHz with windows of 512 samples overlapping by 353. Check it with
#    `selfcheck.check_paper_frames(T)`.
# 2. **Planning the disk.** The feature cache keeps, per clip, its 10 s of 16 kHz sound as float16 (2 bytes a
#    sample), one 1024-d float32 image embedding and one frame number (2 bytes). How many bytes for `N_CLIPS` clips?
#    Check with `selfcheck.check_cache_bytes(n_bytes, N_CLIPS)`, then work out the size for all of VGGSound.
# 3. **Your own sounds.** With a GPU, point `MY_CLIPS` at a folder of your own videos (one subfolder per kind of
#    sound) and run the notebook again. Which sounds give recognisable pictures, and which do not? Compare with what
#    the toy world's sounds could and could not tell (notebook 03, section 7).

# %% tags=["solution"]
# Solution 1: windows start every 512 - 353 = 159 samples; the first starts at 0.
T = 1 + (10 * 16000 - 512) // (512 - 353)
selfcheck.check_paper_frames(T)

# %% tags=["solution"]
# Solution 2: the audio is almost all of it.
n_bytes = N_CLIPS * (10 * 16000 * 2 + 1024 * 4 + 2)
selfcheck.check_cache_bytes(n_bytes, N_CLIPS)
print(f"all of VGGSound (about 200,000 clips): {200_000 * n_bytes / N_CLIPS / 1e9:.0f} GB")

# %% [markdown]
# ## Where next
#
# This is where the course ends and the method's open questions begin. Train on all of VGGSound for the paper's 50
# epochs, with the authors' SSL file for the training frames, and measure whether the modality gap of notebooks 03
# and 06 appears in the real embedding space as it did in the toy world; feed the real audio embeddings to notebook 06
# (it reads full-profile embeddings too) and try its gap shift on real pictures; or record sounds of your own and see
# what a model that learned only from videos imagines for them.
