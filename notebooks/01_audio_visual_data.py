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
# # 01 · Audio-visual data: the toy world, spectrograms and real video folders
#
# Sound2Vision learns from videos: every clip gives a sound and the pictures that go with it, and nobody labels
# anything. The paper uses VGGSound (about 200,000 ten-second YouTube clips) and VEGAS. This course uses, by
# default, a small **synthetic audio-visual world** that has what no real data set has: exact ground truth. We know
# what sounds, where it is, in which frames it can be seen, and how its sound is tied to its looks, so every claim
# of the method can be *measured*. The same code also reads real VGGSound/VEGAS folders.
#
# **What you will learn**
# - the toy world: eight kinds of sound source, each with its own look; listen and look;
# - its ground truth: boxes, visibility per frame, silent distractors;
# - the ties between sound and picture: loudness and size, pitch and shade, number of events and number of objects;
# - the paper's audio front end, $\log(|\mathrm{STFT}|^2 + 10^{-7})$ z-scored per clip, and what it does to loudness;
# - how real VGGSound/VEGAS folders are laid out and read (a tiny folder of mp4 files written here).

# %%
import sys

if "google.colab" in sys.modules:  # on Colab: fetch the course once and install it (Colab's own torch is kept)
    import subprocess

    subprocess.run("test -d s2v-course || git clone -q --depth 1 https://github.com/OWNER/sound2vision-course s2v-course", shell=True, check=True)  # fmt: skip
    sys.path.insert(0, "s2v-course")
    from s2v_lib.course import install_course

    install_course("s2v-course")
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from s2v_lib import course, data, metrics, video, viz
from s2v_lib import toyworld as tw
from s2v_lib.audio import FrontEnd

info = course.setup_notebook()

# %% [markdown]
# ## 1. Eight kinds of sound source
#
# Each category has its own sound *and* its own look (a shape and a colour no other category shares, so a picture
# can be judged unambiguously).

# %%
for c in tw.CATEGORIES:
    print(f"{c.name:8s} sounds like a {c.sound:16s} and looks like a {c.shape}")
objects = np.stack([tw.render_object(k, size=6.0, shade=0.5) for k in range(tw.N_CATEGORIES)])
fig = viz.image_grid(objects[None], col_titles=tw.CATEGORY_NAMES)

# %% [markdown]
# Listen to one clip of each category. Every clip also carries the same quiet background noise, the "room".

# %%
examples = [tw.make_clip(seed=1, index=c, category=c) for c in range(tw.N_CATEGORIES)]
for name, clip in zip(tw.CATEGORY_NAMES, examples):
    print(name)
    display(viz.audio_player(clip.audio))

# %% [markdown]
# ## 2. One clip and its ground truth
#
# A clip is 2 s of 16 kHz mono audio and 8 frames of 32 x 32 pixels. Everything about it is known:

# %%
clip = tw.make_clip(seed=1, index=76)
source = clip.sources[0]
print(f"sounding: {source.name}, loudness {source.loudness_db:.1f} dBFS, pitch {source.pitch:.2f}, "
      f"{source.n_events} event(s) -> size {source.size:.1f} px, shade {source.shade:.2f}, {source.n_events} object(s)")
print("visible per frame:  ", clip.visible.astype(int))
print("silent objects in view per frame:", [[tw.CATEGORY_NAMES[d] for d in ds] for ds in clip.distractors])

# %% [markdown]
# The frames with the sounding object's boxes. Green frames show it; in red ones it is off-screen or hidden behind
# a wall (drawn over it). A silent object of another category may be in view: it makes no sound, so a frame that
# shows only it is a wrong training target.

# %%
fig = viz.frame_strip(clip.frames, marks=clip.visible, title="frames, with the sounding object's boxes")
for ax, boxes in zip(fig.axes, source.boxes):
    viz.draw_boxes(ax, boxes)
viz.audio_player(clip.audio)

# %% [markdown]
# How often does that happen? Over 600 clips (built once, then cached in `data/cache`):

# %%
ds = data.build_toy_dataset(600, seed=11)
T = ds.frames.shape[1]
middle_shows = ds.visible[:, T // 2]
only_distractor = ~middle_shows & (ds.targets[:, T // 2, 0].sum(-1) > 0)
print(f"the middle frame shows the sounding object in {middle_shows.mean():.0%} of clips")
print(f"it shows only a silent distractor in {only_distractor.mean():.0%}; some frame shows the source in "
      f"{ds.visible.any(1).mean():.0%}")

# %% [markdown]
# `truth_frame` picks, for evaluation only, the frame nearest the middle that shows the source and no distractor.
# Training cannot use it (real videos have no ground truth): choosing the frame from the sound is notebook 02.

# %%
best = data.truth_frame(ds)
print(f"the ground-truth frame is the middle one in {(best == T // 2).mean():.0%} of clips")
print(f"it shows the source in {ds.visible[np.arange(len(ds)), best].mean():.0%} of clips")

# %% [markdown]
# ## 3. Sound and picture are tied
#
# Three attributes of a source show in both modalities, so that changing the sound should change the picture:
#
# $$ \text{size} = r_{\min} + (r_{\max} - r_{\min})\,\frac{L - L_{\min}}{L_{\max} - L_{\min}}, \qquad
#    \text{shade} = 0.32 + 0.40\,p, \qquad \#\text{objects} = \#\text{events}, $$
#
# where $L \in [L_{\min}, L_{\max}]$ is the source's loudness in dBFS (decibels relative to full scale: 0 dBFS is the
# loudest a recording can hold, $\pm 1$; the RMS level while it sounds) and $p \in [0, 1]$ its pitch. A nearer
# source is louder and looks bigger; a higher pitch gives a lighter shade.

# %%
L_min, L_max = tw.LOUDNESS_RANGE_DB
print(f"loudness range {L_min:.0f} .. {L_max:.0f} dBFS -> object size {tw.SIZE_RANGE[0]} .. {tw.SIZE_RANGE[1]} px; "
      f"room noise {tw.NOISE_FLOOR_DB:.0f} dBFS")
ties = [[tw.render_object(5, tw.loudness_to_size(L), 0.5) for L in np.linspace(L_min, L_max, 5)],
        [tw.render_object(5, 5.0, tw.pitch_to_shade(p)) for p in np.linspace(0, 1, 5)],
        [tw.render_object(5, 3.5, 0.5, n_objects=k, seed=s) for k, s in ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1))]]  # fmt: skip
fig = viz.image_grid(np.array(ties), ["quiet -> loud", "low -> high pitch", "events: 1 2 3 2 3"])

# %% [markdown]
# The same ties, measured on the 600 clips: size and shade of the source in its ground-truth frame.

# %%
i, cat = np.arange(len(ds)), ds.label
size, shade = ds.targets[i, best, 1, cat], ds.targets[i, best, 2, cat]
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].scatter(ds.loudness_db, size, s=6)
axes[0].set(xlabel="loudness (dBFS)", ylabel="object size (px)")
axes[1].scatter(ds.pitch, shade, s=6, color="tab:purple")
axes[1].set(xlabel="pitch", ylabel="colour shade (lightness)")
fig.tight_layout()

# %% [markdown]
# Like a real recording, every toy clip stays within full scale: its loudest sample is below 1 (the authors clip
# anything beyond).

# %%
print(f"largest |sample| over the 600 clips: {np.abs(ds.audio.astype(np.float32)).max():.2f}")

# %% [markdown]
# Listen to the tie: the same siren, quiet and loud, in the same room.

# %%
room = tw.noise_floor(np.random.default_rng(0))
quiet = room + tw.synth_source(5, 0.5, L_min, 2, np.random.default_rng(1))
loud = room + tw.synth_source(5, 0.5, L_max, 2, np.random.default_rng(1))
viz.audio_player(np.concatenate([quiet, loud]))  # one player: 2 s quiet, then 2 s loud

# %% [markdown]
# ## 4. The paper's front end: a log power spectral density, z-scored
#
# The audio encoder sees a sound as an image. The authors' data loader computes it in five steps (paper guide,
# step 3), which `FrontEnd` reproduces exactly (checked against scipy in the tests):
#
# 1. tile a short clip and cut it to the clip length (10 s in the paper);
# 2. clip the samples to $[-1, 1]$;
# 3. cut the waveform $x$ into segments of $N = 512$ samples every $H = 159$, remove each segment's mean, multiply
#    it by a Tukey window $w$ (flat, with cosine tapers at both ends) and take its Fourier transform; the **power
#    spectral density** is
#    $$ S(t, k) = \frac{2\,\big|\sum_{n} w[n]\,x_t[n]\,e^{-2\pi i k n/N}\big|^2}{f_s \sum_n w[n]^2}, $$
#    scipy's `spectrogram` default ($f_s$ = 16,000 samples per second; the factor 2 folds in the negative
#    frequencies);
# 4. $L = \log(S + 10^{-7})$;
# 5. a per-clip z-score: $\tilde L = (L - \operatorname{mean} L) / (\operatorname{std} L + 10^{-9})$.
#
# The `toy` preset applies the same formula to the 2-s clips, with segments every 448 samples on the clip padded
# with 160 zeros at each end, so that consecutive windows overlap by their tapers and every sample is heard.

# %%
for preset in ("toy", "paper"):
    fe = FrontEnd.preset(preset)
    print(f"{preset:5s}: {fe.clip_seconds:.0f} s, segments of {fe.nperseg} every {fe.hop} samples -> "
          f"{fe.shape[0]} frequencies x {fe.shape[1]} time steps; least window weight of any sample "
          f"{fe.coverage().min():.2f}")

# %%
front_end = FrontEnd.preset("toy")
specs = front_end(np.stack([c.audio for c in examples]))
fig, axes = plt.subplots(1, tw.N_CATEGORIES, figsize=(12, 1.8))
for ax, spec, name in zip(axes, specs, tw.CATEGORY_NAMES):
    viz.show_spectrogram(ax, spec, name)

# %% [markdown]
# The frequency resolution is $f_s / N \approx 31$ Hz per bin, fine enough to see each category's pitch range: the
# drum, the lowest sound, at its lowest and highest pitch:

# %%
freqs = np.arange(front_end.shape[0]) * front_end.sample_rate / front_end.nperseg
for pitch in (0.0, 1.0):
    drum = tw.synth_source(tw.category_index("drum"), pitch, -25.0, 1, np.random.default_rng(0), events=[(0.1, 1.8)])
    psd = front_end.power_density(drum.astype(np.float32))[0].mean(-1).numpy()
    print(f"drum at pitch {pitch:.0f}: strongest frequency {freqs[psd.argmax()]:.0f} Hz")

# %% [markdown]
# **What the z-score does to loudness.** Step 3 measures *density*: for a clip at an ordinary level most bins sit
# near $10^{-7}$, the constant added in step 4. That constant is an absolute floor: a quieter clip puts more of its
# bins on it, so scaling a whole recording changes the z-scored picture, not only its offset. (If the power were
# far above the floor everywhere, $\log(a^2 S) = \log S + 2 \log a$ and the z-score would remove the gain
# completely.) Measured on the two sirens above and on the loud one made 12 dB louder as a whole:

# %%
pair = front_end(np.stack([quiet, loud]))
whole = front_end(np.stack([loud, loud * 4]))
at_floor = [float((front_end.power_density(x.astype(np.float32)) < 1e-7).float().mean()) for x in (quiet, loud)]
print(f"share of bins below the 1e-7 floor: quiet siren {at_floor[0]:.0%}, loud siren {at_floor[1]:.0%}")
print(f"source {L_min:.0f} -> {L_max:.0f} dBFS in the same room: mean |change| {(pair[0] - pair[1]).abs().mean():.3f} (z units)")
print(f"the whole loud clip x4 (+12 dB): mean |change| {(whole[0] - whole[1]).abs().mean():.3f}")
fig, axes = plt.subplots(1, 2, figsize=(6, 2))
viz.show_spectrogram(axes[0], pair[0], "quiet siren (z-scored)")
viz.show_spectrogram(axes[1], pair[1], "loud siren (z-scored)")

# %% [markdown]
# Measured on the 600 clips: the share of a clip's bins that stand above the floor grows with the source's
# loudness, whatever its category. The room noise of the toy world sits below the floor, so it is not what keeps
# the cue: the floor of the formula does. `s2v control` measures how far the trained encoder's pictures follow it
# (notebook 05).

# %%
psd = torch.cat([front_end.power_density(ds.audio[k : k + 200].astype(np.float32)) for k in range(0, len(ds), 200)])
above = (psd > 1e-7).flatten(1).float().mean(1).numpy()
print(f"Spearman correlation of loudness with the share of bins above the floor: {metrics.spearman(ds.loudness_db, above):.2f}")
fig, ax = plt.subplots(figsize=(4, 3))
ax.scatter(ds.loudness_db, above, s=6, c=ds.label, cmap="tab10")
ax.set(xlabel="source loudness (dBFS)", ylabel="share of bins above 1e-7")
fig.tight_layout()

# %% [markdown]
# ## 5. Real data: VGGSound and VEGAS folders
#
# A real data set is a folder of video files plus an index. VGGSound's index is a CSV *without* a header:
# `youtube_id,start_seconds,label,split`, one 10-s clip per row. Its videos are no longer served by the authors and
# mirrors name files differently, so `s2v_lib.video.VideoFolder` tries the known names for each row:
# `{id}_{start:06d}.mp4` (the Hugging Face mirror), `{id}_{start}_{end}`, `{id}_{start_ms}_{end_ms}` (the key of the
# authors' frame-selection file), `{id}_{start}`, or the whole video `{id}` (cut at `start`).
#
# ```
# vggsound/
#   vggsound.csv              toyClip0001,30,siren,train
#   video/toyClip0001_000030.mp4
# ```
#
# To see the loader at work without downloading anything, we write two toy clips in exactly that layout: mp4
# files with H.264 video (upscaled to 128 px) and an AAC audio track, as YouTube clips are.

# %%
root = course.runs_dir("01_data", "vggsound")
rows = []
for k, clip_index in enumerate((1, 2)):
    c = tw.make_clip(seed=11, index=clip_index)
    data.write_clip_files(c, root / "video", f"toyClip000{k + 1}_{30 * k:06d}")
    rows.append(f"toyClip000{k + 1},{30 * k},{c.sources[0].name},train")
(root / "vggsound.csv").write_text("\n".join(rows) + "\n")
print(*sorted(p.name for p in (root / "video").glob("*.mp4")), sep="\n")

# %% [markdown]
# `VideoFolder` reads the index and finds each row's file; `load` decodes a clip the way the paper uses it:
# mono 16 kHz audio of exactly 10 s (shorter tracks are tiled, as the authors do) and frames at 10 fps (the
# authors' frame numbers 0-99), whatever the file's own frame rate.

# %%
folder = video.VideoFolder(root / "video", index=root / "vggsound.csv", split="train")
decoded = folder.load(0)
print(f"{len(folder)} clips; clip 0 from {decoded.path.name}")
print(f"audio {decoded.audio.shape} at {decoded.sample_rate} Hz, frames {decoded.frames.shape} at {decoded.fps:g} fps")
print(f"the file had {decoded.video_seconds:.1f} s of video at {decoded.source_fps:g} fps -> tiled: {decoded.tiled}")
print("decoded frame per 10-fps step:", decoded.frame_index[:20], "...")

# %%
fig = viz.frame_strip(decoded.frames[::10], title="every 10th of the 100 frames (10 fps, tiled from 2 s at 4 fps)")
paper_spec = FrontEnd.preset("paper")(decoded.audio)
fig, ax = plt.subplots(figsize=(8, 2))
viz.show_spectrogram(ax, paper_spec, f"paper front end: {tuple(paper_spec.shape[-2:])}, 10 s (5 repeats of 2 s)")

# %% [markdown]
# A folder without an index still works: clips are listed from their file names.

# %%
for record in video.records_from_files(root / "video"):
    print(record.youtube_id, record.start, "-> clip id", record.clip_id)

# %% [markdown]
# For training on real data the clips are decoded once and their frames encoded by the frozen image encoder into a
# feature cache (`video.precompute_features`); notebook 02 explains how the training frame of each clip is chosen.
#
# ## Summary
#
# - The toy world makes audio-visual clips with exact ground truth: what sounds, where, in which frames.
# - In about 4 clips out of 10 the middle frame misses the sounding object, and distractors make silent look-alikes
#   of a good frame: frame choice matters (notebook 02).
# - Loudness, pitch and number of events are tied to size, shade and number of objects, so manipulating a sound
#   should manipulate the picture (notebook 05).
# - The paper's front end is the log of a power spectral density plus $10^{-7}$, z-scored per clip. Because the
#   density sits near that floor at ordinary levels, the z-score does not erase loudness: a louder clip stands
#   further above an absolute floor.
# - Real VGGSound/VEGAS folders load with the same code: 10 s of 16 kHz audio and 100 frames per clip.
#
# ## Exercises
#
# 1. Which categories are most often hidden in the middle frame? Compute the share per category.
# 2. Build the front end with `FrontEnd(normalize="global")` (fixed statistics instead of per clip) and correlate
#    the spectrogram's 99% quantile with the loudness. Compare with the per-clip z-score: how much of the loudness
#    does the per-clip z-score keep?
# 3. Many data sets come with an index that *has* a header row. Write the index of the folder above as
#    `video_id,start,label,split` with a header and check that `video.read_index` reads the same records.

# %% tags=["solution"]
# Solution 1
for k, name in enumerate(tw.CATEGORY_NAMES):
    hidden = ~middle_shows[ds.label == k]
    print(f"{name:8s} hidden in the middle frame in {hidden.mean():.0%} of {hidden.size} clips")

# %% tags=["solution"]
# Solution 2: fixed statistics keep the absolute level, so the loudest bins follow the source's loudness.
for normalize in ("clip", "global"):
    s = FrontEnd(normalize=normalize)(ds.audio.astype(np.float32)).flatten(1).quantile(0.99, dim=1).numpy()
    print(f"{normalize:6s}: correlation of the 99% quantile with loudness {np.corrcoef(ds.loudness_db, s)[0, 1]:.2f}")

# %% tags=["solution"]
# Solution 3
with_header = root / "index_with_header.csv"
with_header.write_text("video_id,start,label,split\n" + "\n".join(rows) + "\n")
print(video.read_index(with_header) == video.read_index(root / "vggsound.csv"))
