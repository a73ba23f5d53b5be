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
# # 03 · Alignment training: the audio encoder and its loss
#
# Sound2Vision trains one network: an **audio encoder** that maps a sound into the embedding space of a frozen image
# encoder, so that a frozen generator built for that space can draw from it (paper guide, steps 4 and 6). This notebook
# trains it on the toy world, with the paper's loss, and measures what it learned by *retrieval*: given a sound,
# is its own frame the nearest among all held-out frames?
#
# **What you will learn**
# - the audio encoder: a ResNet-18 over the spectrogram, then an MLP head into the image-embedding space;
# - the paper's loss, InfoNCE over negative Euclidean distances of *un-normalised* embeddings, and why the length
#   of the embedding matters as much as its direction when a generator reads it;
# - how to read a training curve and retrieval R@k, and what a sound cannot tell (where the object is);
# - how the loss compares with plain regression (MSE, L1) and with direction-only variants.

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

from s2v_lib import course, losses, metrics, viz
from s2v_lib import toyworld as tw
from s2v_lib.audio_encoder import AudioEncoder
from s2v_lib.experiment import prepare_experiment, train_variant

info = course.setup_notebook()

# %% [markdown]
# ## 1. Pairs of a sound and a frame
#
# `prepare_experiment` builds toy clips, splits them into training, validation and held-out test clips, turns every
# sound into a spectrogram, and runs notebook 02's frame selection over the training clips: each keeps its SSL top-1
# frame, and clips whose source is never seen are dropped. The frozen image encoder embeds the chosen frames: these
# embeddings $v_i$ are the targets, the **anchors**.

# %%
exp = prepare_experiment(n_train=700, n_val=120, n_test=200, ssl_select=True)
print(f"training pairs {len(exp.train)}, validation {len(exp.val)}, held-out {len(exp.test)}; SSL: {exp.ssl_counts}")
frame_index, anchors = exp.training_pairs("top1")
print(f"anchors: {tuple(anchors.shape)}, mean length {anchors.norm(dim=1).mean():.1f}")

# %% [markdown]
# One training pair: the spectrogram the encoder reads, and the frame whose embedding it must land on.

# %%
rows = [int(np.flatnonzero(exp.train.label == c)[0]) for c in range(4)]
frames = exp.train.frames[rows, frame_index[rows]]
fig = viz.gallery(exp.specs["train"][rows], frames, frames[:, None], [tw.CATEGORY_NAMES[exp.train.label[r]] for r in rows],
                  title="spectrogram | the SSL-selected frame (its embedding is the target)")  # fmt: skip
viz.audio_player(exp.train.audio[rows[0]].astype(np.float32))

# %% [markdown]
# ## 2. The audio encoder
#
# As in the authors' code: torchvision's ResNet-18 from scratch, with a one-channel first convolution (a spectrogram
# has one channel), global average pooling to 512 numbers, then a head $512 \to 512 \to D$ ($D = 128$ here,
# $1024$ for OpenCLIP ViT-H/14 in the full profile, where the head is $512 \to 1024 \to 1024$).

# %%
encoder = AudioEncoder()
n_params = sum(p.numel() for p in encoder.parameters())
print(f"{n_params / 1e6:.1f} M parameters; spectrogram {tuple(exp.specs['train'][:1].shape)} -> "
      f"embedding {tuple(encoder(exp.specs['train'][:2].float()).shape)}")  # fmt: skip

# %% [markdown]
# ## 3. The loss
#
# For a batch of $B$ pairs, with audio embeddings $a_i = f_\theta(s_i)$ and anchors $v_j$, the logits are the
# *negative distances*, and the loss is a cross-entropy in both directions (sound $\to$ frame, frame $\to$ sound):
#
# $$ D_{ij} = \lVert a_i - v_j \rVert_2, \qquad
#    \mathcal{L} = -\frac{1}{2B}\sum_{i=1}^{B}\Big[\log\frac{e^{-D_{ii}}}{\sum_j e^{-D_{ij}}}
#                + \log\frac{e^{-D_{ii}}}{\sum_j e^{-D_{ji}}}\Big]. $$
#
# Two things differ from CLIP's loss. The embeddings are **not normalised**, so $a_i$ must match $v_i$'s length as
# well as its direction: the generator reads the whole vector. And there is no temperature: the scale of the
# distances is the scale of the frozen space. A batch where every sound sits on its own anchor scores far lower
# than a random one:

# %%
v = anchors[:64]
a_random = torch.randn_like(v) * v.std()
for name, a in (("random", a_random), ("halfway", (a_random + v) / 2), ("on the anchors", v)):
    print(f"{name:15s} InfoNCE-L2 {losses.infonce_l2(a, v):6.3f}   MSE {losses.mse(a, v):6.3f}")

# %% [markdown]
# The distance matrix $D$ of that random batch, and of a batch on its anchors: training makes its diagonal small.

# %%
fig, axes = plt.subplots(1, 2, figsize=(7, 3))
for ax, (name, a) in zip(axes, (("random", a_random), ("on the anchors", v))):
    im = ax.imshow(losses.pairwise_l2(a[:16], v[:16]).numpy(), cmap="viridis")
    ax.set_title(f"D, {name}", fontsize=9)
    fig.colorbar(im, ax=ax)

# %% [markdown]
# ## 4. Training
#
# Adam, learning rate $10^{-3}$, weight decay $10^{-5}$, batch 64, seed 1234 (the paper's settings), a random
# circular time shift of each spectrogram as augmentation, and a validation set held out from training.

# %%
s2v = train_variant(exp, "infonce_l2", "top1", epochs=3)
fig = viz.training_curve(s2v.history)


# %% [markdown]
# ## 5. What the encoder learned: retrieval
#
# For each held-out sound, rank all held-out frames by their distance to its embedding. **R@k** is the share of
# sounds whose own frame is among the $k$ nearest. A sound says which object is there, how loud, high and busy it is,
# but not *where* it stands or what else is in view, so instance retrieval stays low; *same category @1* (is the
# nearest frame at least the right kind of object?) says what the sound can tell.

# %%
def retrieval(variant):
    r = metrics.retrieval_recall(variant.test_embeddings, exp.anchors_test)
    r["same_category_at_1"] = metrics.same_category_at_1(variant.test_embeddings, exp.anchors_test, exp.test.label)
    return r


print({k: round(x, 3) for k, x in retrieval(s2v).items()}, f"(chance R@1 {1 / len(exp.test):.3f})")

# %% [markdown]
# The five nearest held-out frames of a few sounds (the true frame first). Listen to the first one.

# %%
d = torch.cdist(s2v.test_embeddings, exp.anchors_test)
queries = [int(np.flatnonzero(exp.test.label == c)[0]) for c in (0, 2, 5, 7)]
nearest = d[queries].argsort(1)[:, :5].numpy()
grid = np.concatenate([exp.test_frames[queries][:, None], exp.test_frames[nearest]], 1)
fig = viz.image_grid(
    grid, [tw.CATEGORY_NAMES[exp.test.label[q]] for q in queries], ["true frame"] + [f"#{k}" for k in range(1, 6)]
)
viz.audio_player(exp.test.audio[queries[0]].astype(np.float32))

# %% [markdown]
# ## 6. The paper's loss against regression
#
# Would plain regression onto the anchor do as well? The full comparison of all five losses, with generated
# pictures, is `s2v ablate` (notebook 04 shows its table); here one rival on the same clips.

# %%
mse_variant = train_variant(exp, "mse", "top1", epochs=3)
for name, variant in (("InfoNCE-L2", s2v), ("MSE", mse_variant)):
    r = retrieval(variant)
    print(f"{name:11s} R@1 {r['r_at_1']:.3f}  R@5 {r['r_at_5']:.3f}  same category @1 {r['same_category_at_1']:.3f}")

# %% [markdown]
# How long are the embeddings? The generator was trained on anchors of a certain length; an audio embedding far
# shorter or longer is a point it has never seen.

# %%
for name, variant in (("InfoNCE-L2", s2v), ("MSE", mse_variant)):
    print(
        f"{name:11s} mean |a| = {variant.test_embeddings.norm(dim=1).mean():5.1f}   (anchors: {exp.anchors_test.norm(dim=1).mean():.1f})"
    )

# %% [markdown]
# ## Summary
#
# - The audio encoder is an ordinary image classifier backbone run over spectrograms, ending in the frozen image
#   encoder's space; it is the only network Sound2Vision trains.
# - The loss is InfoNCE with negative Euclidean distances of raw embeddings: contrastive (each sound must be nearer
#   its own frame than the others of the batch) *and* metric (length matters, since a generator will read it).
# - Retrieval R@k measures the alignment without any generator; what a sound cannot tell (position, background)
#   caps instance R@1, while the category is recovered far more often.
# - MSE regression pulls embeddings towards the *mean* of what a sound could look like: shorter vectors, fewer
#   distinctions between instances. Whether that hurts the pictures is measured in notebook 04.
#
# ## Exercises
#
# 1. Train with the cosine InfoNCE (`"infonce_cosine"`) on the same clips. Compare R@k computed with the L2
#    distance and with cosine similarity (`metrics.retrieval_recall(..., metric="cosine")`). Which one suits which
#    loss, and why?
# 2. The loss has no temperature. Compute `losses.infonce_l2(a, v, temperature=t)` for the trained encoder's
#    embeddings of a validation batch with $t$ = 0.5, 1, 2: what does a temperature do to the scale the encoder must
#    reach?
# 3. Which categories does the encoder confuse? For each held-out sound, take the category of its nearest frame
#    and count, per true category, how often it is right.

# %% tags=["solution"]
# Solution 1: a direction-only loss is judged fairly by cosine retrieval; its L2 retrieval suffers from its lengths.
cos_variant = train_variant(exp, "infonce_cosine", "top1", epochs=3)
for name, variant in (("InfoNCE-L2", s2v), ("cosine InfoNCE", cos_variant)):
    l2 = metrics.retrieval_recall(variant.test_embeddings, exp.anchors_test)["r_at_5"]
    cos = metrics.retrieval_recall(variant.test_embeddings, exp.anchors_test, metric="cosine")["r_at_5"]
    print(f"{name:15s} R@5 by L2 {l2:.3f}, by cosine {cos:.3f}")

# %% tags=["solution"]
# Solution 2: dividing distances by t > 1 flattens the softmax: the encoder would have to spread embeddings further.
a_val = s2v.model.eval()(exp.specs["val"][:64].float()).detach()
for t in (0.5, 1.0, 2.0):
    print(f"temperature {t}: loss {losses.infonce_l2(a_val, exp.anchors_val[:64], temperature=t):.3f}")

# %% tags=["solution"]
# Solution 3: the nearest frame's category against the sound's, per category.
nearest_category = exp.test.label[d.argmin(1).numpy()]
for c, name in enumerate(tw.CATEGORY_NAMES):
    mine = exp.test.label == c
    print(f"{name:8s} {np.mean(nearest_category[mine] == c):.0%} of {mine.sum()} sounds")
