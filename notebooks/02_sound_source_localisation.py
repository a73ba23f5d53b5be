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
# # 02 · Sound-source localisation and frame selection
#
# Sound2Vision learns from pairs (sound, video frame). A video has many frames, and in many of them the thing you
# hear is not on screen: it has walked out of view, something stands in front of it, or a silent object takes the
# whole picture. The authors therefore pick each clip's training frame with a **sound-source localisation (SSL)**
# model: it scores every frame by how well it shows what is heard, and the best frame (top-1) becomes the target
# (paper guide, step 2). They released only the resulting frame indices, not the SSL code. This notebook builds and
# *measures* such a model, which the toy world makes possible: it knows in which frames the sounding object is
# visible and where.
#
# **What you will learn**
# - why the middle frame, the obvious default, is often a bad training target;
# - a label-free localiser: an audio embedding compared with every position of a frame's feature map, trained by
#   contrastive multiple-instance learning (EZ-VSL style), and why the *max* over frames and positions is the
#   right objective when most frames do not show the source;
# - how a map becomes a per-frame score (max, mean or top-k pooling) and a top-1 / top-10 frame ranking;
# - how to measure it against ground truth (pointing game, cIoU, selection precision) and what it buys
#   downstream (pictures generated from sound);
# - what to do with clips that must not become pairs: silent clips, clips whose source is never seen.

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

from s2v_lib import course, registry, results, ssl, stats, viz
from s2v_lib import toyworld as tw
from s2v_lib.data import build_toy_dataset

info = course.setup_notebook()

# %% [markdown]
# ## 1. Why frame choice matters
#
# We take held-out clips of the toy world (seed 4000: never used to train anything). Each has eight frames.
# `visible[i, t]` is the ground truth: is clip *i*'s sounding object in view in frame *t*?

# %%
clips = build_toy_dataset(300, seed=ssl.SSL_EVAL_SEED)
T = clips.frames.shape[1]
middle_ok = clips.visible[:, T // 2]
print(f"{len(clips)} clips x {T} frames; the middle frame shows the sounding object in {middle_ok.mean():.0%} of clips")
print(f"a random frame shows it {clips.visible.mean():.0%} of the time; some frame shows it in "
      f"{clips.visible.any(1).mean():.0%} of clips")

# %% [markdown]
# Three clips whose middle frame (t = 4) misses the source. Frames framed green show the sounding object, red ones
# do not; listen to the first clip and find its object.

# %%
bad_middle = np.flatnonzero(~middle_ok)[:3]
for i in bad_middle:
    name = tw.CATEGORY_NAMES[clips.label[i]]
    fig = viz.frame_strip(clips.frames[i], marks=clips.visible[i], title=f"clip {i}: the sound is a {name}")
viz.audio_player(clips.audio[bad_middle[0]])

# %% [markdown]
# Trained on such a middle frame, the audio encoder is asked to map the sound of a *bell* onto the picture of an
# empty field or of a silent distractor. A few percent of such pairs would be noise; the middle frame misses the
# source in every clip that the first line above does not count, which makes it a different task.
#
# ## 2. The localisation model and its maths
#
# Two small encoders, trained together from scratch, with no labels:
#
# - the **audio encoder** maps the clip's spectrogram (the same front end as the rest of the course, notebook 01:
#   `log(S + 1e-7)` of a power spectral density, z-scored per clip) to one unit vector $a \in \mathbb{R}^{64}$;
# - the **visual encoder** is fully convolutional: it maps frame $t$ (32 x 32 pixels) to a 16 x 16 grid of unit
#   vectors $v_{t,p}$, one per position $p$.
#
# The **localisation map** of frame $t$ is the cosine similarity at every position,
# $$S_t(p) = \cos(a, v_{t,p}) = a^\top v_{t,p} \in [-1, 1].$$
#
# **Training: contrastive multiple-instance learning.** Nothing tells us which frame and which position show the
# source; we only know that *some* position of *some* frame of the same clip does. So a clip is a *bag*
# $\mathcal{B}$ of $8 \times 16 \times 16$ instances and the clip-level similarity of audio $i$ and video $j$ is a
# maximum over the bag. EZ-VSL (Mo & Morgado, 2022) uses the hard max; we use its smooth version, the log-sum-exp maximum with bag
# temperature $T_b = 0.1$:
# $$s_{ij} = T_b \log \frac{1}{|\mathcal{B}|} \sum_{t,p} \exp\!\big(\cos(a_i, v_{j,t,p}) / T_b\big)
#   \;\xrightarrow{T_b \to 0}\; \max_{t,p} \cos(a_i, v_{j,t,p}).$$
# A symmetric InfoNCE over the batch (temperature $\tau = 0.03$) pulls each clip's own pair above the others:
# $$\mathcal{L} = -\frac{1}{2B}\sum_i \Big[\log \frac{e^{s_{ii}/\tau}}{\sum_j e^{s_{ij}/\tau}}
#   + \log \frac{e^{s_{ii}/\tau}}{\sum_j e^{s_{ji}/\tau}}\Big].$$
# Why the smooth max: with a hard max only one instance per (audio, video) pair receives a gradient. EZ-VSL can
# afford that because its visual encoder starts from ImageNet; ours starts from random weights, and with the hard
# max its loss was still at chance ($\log 64 \approx 4.16$) after 150 steps, while the smooth max had already
# learned to localise.
#
# **Per-frame score and ranking.** A frame's score pools its map: max (default, the same pooling as the training
# bag), mean, or the mean of the $k$ largest positions,
# $$\text{score}_t = \max_p S_t(p), \qquad \text{top-1} = \arg\max_t \text{score}_t .$$
# Frames sorted by score give the top-10 list the authors cache per clip.

# %%
model = ssl.load_ssl_model()  # data/models/toy-ssl.safetensors, checked against its sha256
made = registry.model_info("toy-ssl")  # its manifest entry: how it was made
print(f"{made['params']:,} parameters, trained {made['seconds']:.0f} s ({made['steps']} steps) on {made['world']}")
print(f"config {model.config}; rebuild with `{made['command']}`")

# %% [markdown]
# The loss on a hand-built bag: four clips, six instances each; clip *i*'s own bag holds one instance that answers
# its sound. The loss is near 0; with no signal it is $\log 4$, chance.

# %%
sim = torch.full((4, 4, 6), -0.5)
for i in range(4):
    sim[i, i, i] = 0.9
print(f"loss with the source in each own bag: {ssl.mil_infonce(sim):.3f};  with no signal: "
      f"{ssl.mil_infonce(torch.zeros(4, 4, 6)):.3f} (log 4 = {np.log(4):.3f})")

# %% [markdown]
# ## 3. Heatmaps over frames
#
# Each frame with its localisation map on top (red: where the model hears the sound), the sounding object's true
# outline in white, the frame's score and `*` on the top-1 frame. Green frames show the source.

# %%
maps = ssl.localisation_maps(model, clips, size=32)  # [n, T, 32, 32]
scores = ssl.frame_scores(model, clips)  # [n, T], max pooling
masks = ssl.source_masks(ssl.SSL_EVAL_SEED, int(bad_middle.max()) + 1)[bad_middle]
fig = viz.localisation_grid(clips.frames[bad_middle], maps[bad_middle], masks, clips.visible[bad_middle],
                            scores=scores[bad_middle], title="localisation maps, clips whose middle frame misses the source")

# %% [markdown]
# ## 4. Per-frame scores (the paper's frame ranking)
#
# The bars are each frame's score; green where the source is in view. The SSL top-1 (`*`) lands on a green bar; the
# middle frame (`m`) often does not. The dashed line is the model's *no source in view* threshold (section 6).

# %%
fig = viz.score_bars_grid(scores[bad_middle], clips.visible[bad_middle], threshold=float(model.absent_threshold),
                          labels=[f"clip {i}" for i in bad_middle], title="per-frame SSL score")

# %%
top10 = ssl.topk_frames(scores, k=10)
print("ranking of the first clip, best first:", top10[bad_middle[0]].tolist(),
      "· frames showing the source:", np.flatnonzero(clips.visible[bad_middle[0]]).tolist())

# %% [markdown]
# ## 5. Measured against ground truth
#
# - **pointing game**: the map's peak falls inside the sounding object (any copy of it), over frames that show it;
# - **cIoU**: IoU between the map binarised at half its range and the object; `auc_ciou` is the area under the
#   curve "fraction of frames with cIoU >= t" for t from 0 to 1 (the SSL literature's AUC);
# - **selection precision**: the top-1 frame shows the source; baselines: the middle frame, a random frame;
# - **downstream**: the same audio-encoder training on SSL top-1 pairs vs middle-frame pairs, judged top-1 accuracy
#   of the pictures the frozen generator draws from held-out sounds.
#
# `s2v ssl --seeds 3` measures all of it on 1,000 held-out clips per seed, plus the two alignment trainings per seed;
# the course ships its table (`data/results/ssl/`), and your own `runs/ssl` replaces it. Every figure is a mean over
# three seeds with a 95% interval; the comparisons below say "beats" only where the intervals do not overlap.

# %%
measured = results.load("ssl")
print(results.describe(measured))
f = stats.fmt
for key in ("pointing_game", "auc_ciou", "ciou_at_0.5", "selection_precision", "selection_precision_middle",
            "selection_precision_random", "gen_top1_accuracy_top1", "gen_top1_accuracy_middle",
            "oracle_top1_accuracy"):  # fmt: skip
    print(f"{key:30s} {f(measured.get(key)):>16s}")
print(stats.compare(measured["selection_precision"], measured["selection_precision_middle"],
                    names=("SSL top-1 frames", "middle frames")), "at showing the source")  # fmt: skip
print(stats.compare(measured["gen_top1_accuracy_top1"], measured["gen_top1_accuracy_middle"],
                    names=("training on SSL top-1 frames", "training on middle frames")),
      "at judged top-1 accuracy of the pictures")  # fmt: skip

# %% [markdown]
# The same localisation measures on the 300 clips of section 1, computed here in seconds:

# %%
here, _ = ssl.evaluate_localisation(model, n=300)
print({k: round(here[k], 3) for k in ("pointing_game", "selection_precision", "selection_precision_middle")})
print("selection precision by pooling:", {k: round(v, 3) for k, v in here["selection_precision_by_pooling"].items()})

# %% [markdown]
# ## 6. Clips that must not become pairs
#
# A pair is only useful if the frame shows what is heard. Three kinds of clip break that, and
# `ssl.select_top1_frame` flags each instead of returning a silently wrong frame:
#
# | clip | detection | handling |
# |---|---|---|
# | silent (nothing above the ambient floor) | loudest 64 ms below `ssl.SILENCE_DBFS` (9 dB above the room) | `silent`: skipped |
# | the source is never in view | best frame score below the model's threshold, or below 85% of what the same sound scores on other clips | `no_source_in_view`: skipped |
# | a single frame | `T == 1` | `single_frame`: kept (no choice to make), counted, still checked for absence |
#
# Both absence checks are set **without labels**. The threshold: frame scores of the training clips are bimodal
# (frames that show the source vs frames that do not) and Otsu's method cuts between the two modes. The comparison:
# among ~100 ordinary clips some show the same kind of source, so the sound's best score over *their* frames is what
# it scores when its source is in view; a clip whose own best frame stays far below that does not show its source.
# The comparison catches what a fixed threshold misses: a silent look-alike (a magenta cross for a red hum) can
# score above the threshold, but not as high as a real hum. The 30 bad clips below are compared with the 300
# ordinary clips from section 1.

# %%
for name, cfg in {"never visible": tw.WorldConfig(never_visible=True), "silent": tw.WorldConfig(silent=True),
                  "single frame": tw.WorldConfig(n_frames=1)}.items():
    bad = build_toy_dataset(30, seed=77, config=cfg, cache=False)
    print(f"{name:14s} {ssl.select_training_frames(model, bad, reference=clips).summary()}")
print(f"{'normal':14s} {ssl.select_training_frames(model, clips).summary()}")

# %% [markdown]
# ## 7. Real video: the authors' top-10 file
#
# For VGGSound-style folders the same code ranks the frames sampled at 10 fps and writes, per clip, the top-10
# frame numbers and the top-1 box, in the layout of the authors' `top1_boxes_top10_moments.json`
# (`ssl.write_video_topk(model, VideoFolder(...), path, format="authors")`, read back by
# `s2v_lib.video.read_topk_json`). One clip's entry, with its frames upscaled to 128 px as a video would be:

# %%
big = clips.frames[bad_middle[0]].repeat(4, axis=1).repeat(4, axis=2)  # [8, 128, 128, 3]
print(ssl.rank_clip_frames(model, clips.audio[bad_middle[0]].astype(np.float32), big))

# %% [markdown]
# ## Summary
#
# - The middle frame often misses the sound's source (section 5 reads how often); a label-free SSL model's top-1
#   frame rarely does.
# - The model is an audio vector compared with every position of every frame (a cosine map), trained by
#   contrastive multiple-instance learning: the max (here a smooth max) over frames and positions is what lets it
#   learn from clips whose source is mostly out of view.
# - A frame's score pools its map; ranking frames gives the top-1 training frame and the top-10 list.
# - Silent clips and clips whose source is never seen are flagged and skipped, single-frame clips are counted.
#
# ## Exercises
#
# 1. **Pooling.** Compute the selection precision of `max`, `mean` and `topk` pooling on `clips`
#    (`ssl.frame_scores(model, clips, pooling=...)`). Which is worst, and why, given that a toy object covers
#    2-20% of a frame?
# 2. **Hard or smooth max.** For a random similarity tensor `sim` of shape [8, 8, 4, 16], compare
#    `ssl.mil_infonce(sim, bag_temperature=0)` and `bag_temperature=0.1`, and count, for each, how many entries of
#    `sim` receive a non-zero gradient. What does that mean for a model trained from scratch?
# 3. **The threshold's trade-off.** Sweep the no-source threshold from 0.2 to 0.8 and plot the share of
#    never-visible clips that are skipped against the share of normal clips that are (wrongly) skipped. Where does
#    Otsu's threshold sit?

# %% tags=["solution"]
# Exercise 1
rows_ = np.arange(len(clips))
for pooling in ssl.POOLINGS:
    s = ssl.frame_scores(model, clips, pooling=pooling)
    print(f"{pooling:5s} selection precision {clips.visible[rows_, s.argmax(1)].mean():.3f}")
# mean pooling averages 256 positions of which only a few cover the object: the background decides the score,
# and a frame with a large silent distractor or a bright wall can win. max and top-k look at the object alone.

# %% tags=["solution"]
# Exercise 2
sim = 0.5 * torch.rand(8, 8, 4, 16, generator=torch.Generator().manual_seed(0))  # cosines in [0, 0.5]
for temp in (0.0, 0.1):
    x = sim.clone().requires_grad_(True)
    loss = ssl.mil_infonce(x, bag_temperature=temp)
    loss.backward()
    print(f"bag temperature {temp}: loss {loss:.3f}, entries with a gradient {(x.grad != 0).float().mean():.1%}")
# the hard max sends gradient to 1 of the 64 instances of each pair: early on that instance is a random position,
# so learning is slow and noisy; the smooth max spreads the gradient by softmax weight and anneals towards the max.

# %% tags=["solution"]
# Exercise 3
never = build_toy_dataset(100, seed=78, config=tw.WorldConfig(never_visible=True), cache=False)
best_never, best_normal = ssl.frame_scores(model, never).max(1), scores.max(1)
ths = np.linspace(0.2, 0.8, 25)
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot([(best_normal < t).mean() for t in ths], [(best_never < t).mean() for t in ths], "o-", ms=3)
thr = float(model.absent_threshold)
ax.plot((best_normal < thr).mean(), (best_never < thr).mean(), "r*", ms=12, label=f"Otsu {thr:.2f}")
ax.set_xlabel("normal clips skipped")
ax.set_ylabel("never-visible clips skipped")
ax.legend()
plt.show()
