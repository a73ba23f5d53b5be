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
# # 06 · Geometry of the embedding space: the modality gap and UMAP
#
# The frozen generator of Sound2Vision was trained to draw pictures from *image* embeddings. It has never seen an
# audio embedding. Why, then, does it draw the right picture when we feed it one? The paper's answer is geometric:
# alignment training moves the audio embeddings into the region of the space where the image embeddings live, so that
# to the generator an audio embedding looks like one more image embedding. Before training, the two modalities sit
# apart, a **modality gap** (Liang et al. 2022, "Mind the Gap"). This notebook measures that gap, before and after
# training, for every loss of the ablation, and draws it.
#
# **What you will learn**
# - what the modality gap is, and four ways to measure it: the distance between the two modalities' centroids,
#   paired vs unpaired cosine, a linear probe that tries to tell the modalities apart, and Wang & Isola's alignment
#   and uniformity;
# - how to read a UMAP picture of two modalities (and what it cannot tell you);
# - why the paper's loss, InfoNCE on *un-normalised* Euclidean distances, suits a frozen generator better than
#   losses that only align directions;
# - that a small gap is necessary for generation, but not sufficient.
#
# The embeddings and the table come from `s2v geometry --seeds 3` (an untrained audio encoder and one encoder per
# loss, trained on the same toy clips, three seeds): the course ships them in `data/results/geometry/`, and your own
# `runs/geometry` replaces them. It also reads full-profile embeddings: see section 8.

# %%
import sys

if "google.colab" in sys.modules:  # on Colab: fetch the course once and install it (Colab's own torch is kept)
    import subprocess

    subprocess.run("test -d s2v-course || git clone -q --depth 1 https://github.com/OWNER/sound2vision-course s2v-course", shell=True, check=True)  # fmt: skip
    sys.path.insert(0, "s2v-course")
    from s2v_lib.course import install_course

    install_course("s2v-course")
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from IPython.display import display

from s2v_lib import course, geometry, losses, results, stats, viz
from s2v_lib import toyworld as tw

info = course.setup_notebook()

# %% [markdown]
# ## 1. The idea, and how to measure it
#
# Take $N$ held-out clips. Clip $i$ gives an audio embedding $a_i$ (the audio encoder's output) and an image
# embedding $v_i$ (the frozen image encoder's output for the frame that shows the sound's source), both in
# $\mathbb{R}^D$. Write $\hat x = x / \lVert x \rVert$ for a vector put on the unit sphere.
#
# **Centroid gap** (Liang et al. 2022). The distance between the centres of the two clouds:
# $$\Delta = \Big\lVert \frac{1}{N}\sum_i a_i - \frac{1}{N}\sum_i v_i \Big\rVert_2 .$$
# Liang et al. compute it on normalised embeddings ($\hat a_i, \hat v_i$), as CLIP's space is a sphere; then
# $0 \le \Delta \le 2$. We report both: the **raw** gap is the one the generator sees, since Sound2Vision feeds it
# the un-normalised embedding; the **normalised** gap ignores length, so it compares losses whose embeddings have
# different lengths.
#
# **Paired vs unpaired cosine.** $\frac{1}{N}\sum_i \cos(a_i, v_i)$ against
# $\frac{1}{N(N-1)}\sum_{i \ne j}\cos(a_i, v_j)$: is a sound closer to its own picture than to the others?
#
# **Modality probe.** A logistic regression $p(\text{audio} \mid x) = \sigma(w^\top x + b)$ trained on half of the
# pairs to tell audio from image embeddings, scored on the other half. Accuracy 0.5: a linear read-out cannot tell
# the modalities apart; 1.0: they live in separate regions.
#
# **Alignment and uniformity** (Wang & Isola 2020), on the sphere:
# $$\mathcal{L}_\text{align} = \frac{1}{N}\sum_i \lVert \hat a_i - \hat v_i \rVert_2^2, \qquad
#   \mathcal{L}_\text{unif}(X) = \log \frac{1}{N(N-1)} \sum_{i \ne j} e^{-2 \lVert \hat x_i - \hat x_j \rVert_2^2}.$$
# Alignment is 0 when every pair coincides; uniformity is 0 when a set collapses to one point and about $-4$ when it
# spreads evenly over a high-dimensional sphere.

# %% [markdown]
# ## 2. The embeddings
#
# One **variant** per row: `untrained` (a freshly initialised audio encoder) and one encoder per loss
# (`infonce_l2` is the paper's). For every variant the file holds the held-out clips' audio embeddings, as the
# generator receives them, their image embeddings, and their categories.

# %%
geo = results.load("geometry")  # the table (all seeds) and where it was read from
print(results.describe(geo))
RUN = Path(geo["_path"])  # set this to your own folder to read other embeddings (section 8)
sets, category_names = geometry.load_embeddings(RUN / "embeddings.npz")  # the first seed's held-out embeddings
for name, s in sets.items():
    print(f"{name:<24} audio {s.audio.shape}  image {s.image.shape}  {len(np.unique(s.label))} categories")

# %% [markdown]
# Each point is one held-out clip, a sound and the frame that shows its source, like this bell:

# %%
clip = tw.make_clip(seed=1, index=0, category=tw.category_index("bell"))
fig = viz.frame_strip(clip.frames, marks=clip.visible, title="a bell: its frames (green: the bell is in view)")
viz.audio_player(clip.audio)

# %% [markdown]
# The centroid gap is one line of numpy. Before training:

# %%
before = sets["untrained"]
gap = np.linalg.norm(before.audio.mean(0) - before.image.mean(0))
print(f"raw gap {gap:.2f}; library: {geometry.centroid_gap(before.audio, before.image):.2f}")
print(f"mean length: audio {np.linalg.norm(before.audio, axis=1).mean():.2f}, "
      f"image {np.linalg.norm(before.image, axis=1).mean():.2f}")

# %% [markdown]
# ## 3. Every variant, every measure
#
# First on the embeddings loaded above (one seed), every measure of section 1:

# %%
table = pd.DataFrame(geometry.gap_table(sets)).T
columns = ["gap_centroid", "gap_centroid_normalized", "probe_accuracy", "paired_cosine", "unpaired_cosine",
           "alignment", "uniformity_audio", "uniformity_image", "audio_norm", "image_norm"]
table[columns].round(3)

# %% [markdown]
# And over all seeds of the run, with 95% intervals, beside the judged top-1 accuracy of the pictures drawn from each
# variant's embeddings:

# %%
f = stats.fmt
shown = ("gap_centroid", "gap_centroid_normalized", "audio_norm", "image_norm", "gen_top1_accuracy")
rows = [[name] + [f(r.get(k)) for k in shown] for name, r in geo["variants"].items()]
display(pd.DataFrame(rows, columns=["variant", *shown]).set_index("variant"))
for key in ("gap_ratio_after_before", "gap_ratio_after_before_normalized", "statement", "closing_gap_statement"):
    if key in geo:
        print(f"{key}: {geo[key]:.3f}" if isinstance(geo[key], float) else f"{key}: {geo[key]}")

# %% [markdown]
# What the seeds say, with the course's rule ("A beats B" only where the intervals do not overlap):

# %%
V, c = geo["variants"], stats.compare
print(c(V["infonce_l2"]["gap_centroid"], V["untrained"]["gap_centroid"], higher_is_better=False,
        names=("InfoNCE-L2, trained", "the untrained encoder")), "at a small raw gap")  # fmt: skip
print(c(V["infonce_l2"]["audio_norm"], V["infonce_l2"]["image_norm"],
        names=("InfoNCE-L2's audio embeddings", "the image embeddings")), "at length")  # fmt: skip
for loss in ("infonce_l2_normalized", "infonce_cosine", "mse", "l1"):
    if loss in V:
        print(c(V[loss]["gap_centroid_normalized"], V["infonce_l2"]["gap_centroid_normalized"], higher_is_better=False,
                names=(loss, "infonce_l2")), "at a small normalised gap")  # fmt: skip
if "closing_gap_statement" in geo:
    print("pictures:", geo["closing_gap_statement"], "at judged top-1 accuracy")

# %% [markdown]
# How to read it (each point with the verdict above it):
#
# - **Untrained**: a randomly initialised network maps every sound to nearly the same direction (a narrow *cone*,
#   the effect Liang et al. found at initialisation): the probe separates the modalities, and a sound is no closer
#   to its own picture than to any other (paired and unpaired cosine alike).
# - **InfoNCE-L2, the paper's loss**, puts each sound's embedding nearer to the pictures of its own category than to
#   the others (paired cosine above unpaired), but it does **not** close the gap: its audio embeddings come out
#   longer than the image embeddings, and the raw gap after training is no smaller than before. Section 6
#   explains why.
# - **Losses that land on the anchors** (regression, MSE and L1) or compare directions on the sphere (Sound2Scene's
#   normalised InfoNCE-L2, cosine InfoNCE) are compared with it on the *normalised* gap, which ignores length. The
#   lines above say which of them leave a smaller one. Regression has no negatives, so its audio embeddings spread
#   less than the images (compare `uniformity_audio` with `uniformity_image` in the first table).
#
# So on the toy world the paper's claim that its loss closes the gap does not hold as such. The course reports it as
# measured; sections 5 and 6 ask what the gap does to the pictures.

# %% [markdown]
# ## 4. Pictures: UMAP of both modalities
#
# UMAP (McInnes et al. 2018) draws a 2-D map that keeps each point's nearest neighbours. We fit it on the audio
# and image embeddings *together*: circles are sounds, crosses are pictures, colours are categories.
# Read it for *who neighbours whom*: two islands mean that no sound has a picture among its neighbours. How far
# apart the islands are drawn means little; the centroid gap is the measure of distance.
# (The first `import umap` compiles code with numba: about 10 s.)

# %%
maps = geometry.umap_maps({k: sets[k] for k in geometry.BEFORE_AFTER if k in sets})
fig = viz.embedding_maps(maps, titles=geometry.TITLES, category_names=category_names)

# %% [markdown]
# Before training, the sounds form islands of their own, away from the pictures (a random network already groups
# similar sounds). After training with InfoNCE-L2, the sounds form tight islands (a few categories share one), all
# away from the pictures. Moving all sounds by one vector, the gap vector $\bar v - \bar a$ measured on
# *validation* clips (never the test clips), brings the islands among the pictures, many of them next to the
# pictures of their own category (right panel; section 6).
#
# Per variant:

# %%
maps.update(geometry.umap_maps({k: s for k, s in sets.items() if k not in maps}))
fig = viz.embedding_maps(maps, category_names=category_names, ncols=4)

# %% [markdown]
# ## 5. Does a smaller gap give better pictures?
#
# One point per variant: the centroid gap against the judged accuracy of the pictures drawn from the sounds
# (needs the `s2v geometry` run, which generates and judges them).

# %%
fig = viz.gap_vs_accuracy({k: {m: stats.mean_of(x) for m, x in r.items() if m in ("gap_centroid", "gap_centroid_normalized",
                                                                               "gen_top1_accuracy")}
                           for k, r in geo["variants"].items()})  # fmt: skip
for key in ("spearman_gap_centroid_vs_gen_top1_accuracy", "spearman_gap_centroid_normalized_vs_gen_top1_accuracy"):
    if key in geo:
        print(f"{key}: {geo[key]:.2f}")

# %% [markdown]
# A negative rank correlation (printed above) means: the smaller a variant's gap, the more often its pictures show
# the right category. And the paper's InfoNCE-L2 embeddings, once moved across the gap (`infonce_l2_shifted`),
# draw it more often than where training left them (the last verdict of section 3): much of the embedding's
# *structure* was right; what the generator could not read was its *position*. The generator understands audio
# embeddings best where they overlap the image embeddings: measured here, not assumed. (These encoders are small
# on purpose, 1,280 clips on middle frames, so that eight variants fit in minutes; the ablation of notebook 04
# trains on 4,000 clips and SSL frames, where the raw embedding fares much better.)
#
# ## 6. Why the paper's loss leaves a gap
#
# InfoNCE-L2 asks for one thing only: each sound must be closer to its own picture than to the other pictures of
# the batch, $D_{ii} < D_{ij}$, with $D_{ij} = \lVert a_i - v_j \rVert_2$ and temperature 1. Nothing in it asks for
# $a_i \approx v_i$. Evaluate the loss on the held-out embeddings where training left them, and after closing the
# gap:

# %%
v_test = torch.as_tensor(sets["infonce_l2"].image)
for name in [k for k in ("infonce_l2", "infonce_l2_shifted") if k in sets]:
    a_test = torch.as_tensor(sets[name].audio)
    batches = [losses.infonce_l2(a_test[i : i + 64], v_test[i : i + 64]).item() for i in range(0, len(a_test) - 63, 64)]
    print(f"{name:<20} InfoNCE-L2 on batches of 64: {np.mean(batches):.3f}")

# %% [markdown]
# The loss is *lower* with the gap than without it: the displaced, inflated cloud is what the loss prefers, not a
# failure to converge. Distances, unlike
# squared distances, do not change uniformly when a cloud moves, and a cloud that is spread wider separates its
# own points better, as a lower temperature would. And once the audio cloud is far away, the gradient of a
# distance, $\partial \lVert a - v \rVert_2 / \partial a = (a - v)/\lVert a - v \rVert_2$, is a unit vector
# pointing the same way for every picture, so the pull of the positive and the pushes of the negatives cancel:
# nothing brings a distant cloud back (exercise 3).
#
# ## 7. A small gap is necessary, not sufficient
#
# Could we skip training and close the gap by hand? Shift every *untrained* audio embedding by the gap vector:
# the centroids now coincide exactly.

# %%
shift = geometry.gap_vector(before.audio, before.image).numpy()
shifted = geometry.modality_gap(before.audio + shift, before.image)
print({k: round(shifted[k], 3) for k in ("gap_centroid", "probe_accuracy", "paired_cosine", "unpaired_cosine")})

# %% [markdown]
# The gap is 0, yet a sound is no closer to its own picture than to any other (paired = unpaired cosine): the
# shifted embedding carries nothing of *which* picture (and the probe may still tell the modalities apart a little:
# the untrained audio cloud is a tiny ball inside the image cloud). The centroid gap measures whether the audio embeddings are in the right *region*; paired
# cosine and retrieval measure whether each one is at the right *place*. Training provides the place; the region
# needs either a loss that lands on the anchors themselves (regression, or distances on the sphere) or the shift.
#
# **What this says about why the method works.** The generator is a function learned on the image cloud; outside
# it, its behaviour is unconstrained. An audio encoder whose outputs fall inside that cloud, each among the pictures
# of its category, feeds the generator in-distribution inputs; that is why the frozen generator draws from sound.
# Closing the gap is therefore not a side effect to hope for: measure it, and close it (choice of loss, or a shift
# estimated on validation clips) when training leaves it open.

# %% [markdown]
# ## 8. Your own embeddings (full profile)
#
# The file format is plain numpy (`geometry.save_embeddings`): an array `variants` of names, and for every variant
# `V`: `V.audio` [N, D] float32 (what the generator is fed), `V.image` [N, D] float32 (the frozen image
# encoder's embedding of the same clip's frame), `V.label` [N] int64; optionally `category_names`.
# With the full profile (OpenCLIP ViT-H/14, D = 1024) save the held-out clips' embeddings of your trained audio
# encoder, and of an untrained one, then set `RUN` above to the file's folder and run this notebook again:
#
# ```python
# geometry.save_embeddings("runs/geometry-full/embeddings.npz", {
#     "untrained": geometry.EmbeddingSet(audio_untrained, image_emb, labels),
#     "infonce_l2": geometry.EmbeddingSet(audio_trained, image_emb, labels)})
# ```

# %% [markdown]
# ## Summary
#
# - The modality gap is the offset between the audio and the image clouds; measure it by the centroid distance
#   (raw: what the generator sees; normalised: Liang et al.), by a linear probe, by paired vs unpaired cosine, and by
#   Wang & Isola's alignment and uniformity.
# - Before training, an audio encoder maps every sound into a narrow cone far from the images.
# - On the toy world, the paper's un-normalised InfoNCE-L2 orders the sounds by category but leaves (even widens)
#   the gap, with audio embeddings longer than the images; losses on the sphere and regression leave a smaller
#   normalised gap. Pictures are better where the gap is small, and closing InfoNCE-L2's gap after training with one
#   validation-estimated shift improves its pictures.
# - A zero centroid gap alone means nothing (section 7): the pictures need the right region *and* the right place.
#
# ## Exercises
#
# 1. Compute Wang & Isola's alignment and uniformity of the `infonce_l2` variant yourself with numpy, and check them
#    against the table.
# 2. Is the gap the same for every category? Compute the centroid gap *within* each category for `infonce_l2`
#    (the distance between the mean audio and the mean image embedding of that category's clips).
# 3. Check the last claim of section 6: place the `infonce_l2` audio embeddings of one batch at the image centroid
#    plus $R\,u$ (one random unit vector $u$; keep their own spread) for growing $R$, and compute the loss and the
#    norm of its gradient with respect to the cloud's centre. What happens as $R$ grows?
# 4. A shift fixes the position of the `infonce_l2` cloud, not its size. Also rescale it (per dimension, to the
#    image embeddings' standard deviation). Which measures change, and which do not?

# %% tags=["solution"]
# Exercise 1
s = sets["infonce_l2"]
na = s.audio / np.linalg.norm(s.audio, axis=1, keepdims=True)
nv = s.image / np.linalg.norm(s.image, axis=1, keepdims=True)
align = np.mean(np.sum((na - nv) ** 2, axis=1))
d2 = np.sum((nv[:, None] - nv[None]) ** 2, axis=-1)[~np.eye(len(nv), dtype=bool)]
unif = np.log(np.mean(np.exp(-2 * d2)))
print(f"alignment {align:.3f} (table {table.loc['infonce_l2', 'alignment']:.3f}), "
      f"image uniformity {unif:.3f} (table {table.loc['infonce_l2', 'uniformity_image']:.3f})")

# %% tags=["solution"]
# Exercise 2
s = sets["infonce_l2"]
names = category_names or list(tw.CATEGORY_NAMES)
for c in np.unique(s.label):
    m = s.label == c
    print(f"{names[c]:<12} n={m.sum():3d}  gap {geometry.centroid_gap(s.audio[m], s.image[m]):.2f}")
# each category's gap is about as large as the global one: the whole audio cloud is displaced, not single classes

# %% tags=["solution"]
# Exercise 3
s = sets["infonce_l2"]
v = torch.as_tensor(s.image[:64])
spread = torch.as_tensor(s.audio[:64] - s.audio[:64].mean(0))
u = torch.nn.functional.normalize(torch.randn(v.shape[1], generator=torch.Generator().manual_seed(0)), dim=0)
for R in (0, 5, 20, 80, 320):
    centre = (v.mean(0) + R * u).requires_grad_()
    loss = losses.infonce_l2(centre + spread, v)
    loss.backward()
    print(f"R = {R:4d}: loss {loss.item():.3f}  |d loss / d centre| = {centre.grad.norm():.4f}")
# the loss first falls as the cloud leaves the pictures, then rises; the pull on the centre fades as 1/R

# %% tags=["solution"]
# Exercise 4
s = sets["infonce_l2"]
matched = (s.audio - s.audio.mean(0)) / s.audio.std(0) * s.image.std(0) + s.image.mean(0)
for label, a in (("trained", s.audio), ("shift + rescale", matched)):
    r = geometry.modality_gap(a, s.image)
    print(f"{label:<16} gap {r['gap_centroid']:.3f}  probe {r['probe_accuracy']:.3f}  "
          f"paired cos {r['paired_cosine']:.3f}  unpaired cos {r['unpaired_cosine']:.3f}")
# the gap and the probe collapse and paired cosine rises (cosines are measured from the origin, and the audio cloud
# moved relative to it); what the sounds tell apart does not change: a shift and a rescale are invertible
