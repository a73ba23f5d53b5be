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
# # 04 · Generation and evaluation
#
# An aligned audio embedding is handed to a frozen generator as if it were an image embedding (paper guide, step 7).
# The paper's claims here are that this gives *diverse* and *correct* pictures, that it works for a diffusion model
# and a GAN alike, and that its choices (the loss, the frame each clip is paired with) matter. This notebook turns
# each claim into a number, and looks inside the audio encoder with Grad-CAM.
#
# **What you will learn**
# - one interface for every generator: `generator.generate(embeddings, n, seed)`, diffusion and GAN alike;
# - where the variety of the pictures comes from (the generator's noise), and how to measure it;
# - the paper's metrics: retrieval R@k of generated pictures, Frechet distance (FID) and the Inception Score, and
#   what the toy world adds: a judge that knows the true category, size and shade;
# - how to read the ablation table of `s2v ablate` (losses, frame choice, generator, oracle);
# - Grad-CAM over the spectrogram: which parts of a sound drove a picture.

# %%
import sys

if "google.colab" in sys.modules:  # on Colab: fetch the course once and install it (Colab's own torch is kept)
    import subprocess

    subprocess.run("test -d s2v-course || git clone -q --depth 1 https://github.com/OWNER/sound2vision-course s2v-course", shell=True, check=True)  # fmt: skip
    sys.path.insert(0, "s2v-course")
    from s2v_lib.course import install_course

    install_course("s2v-course")
import numpy as np
from IPython.display import Markdown, display

from s2v_lib import ablation, course, gradcam, metrics, registry, viz
from s2v_lib import toyworld as tw
from s2v_lib.data import build_toy_dataset, take_frames, truth_frame
from s2v_lib.experiment import spectrograms

info = course.setup_notebook()

# %% [markdown]
# ## 1. An aligned audio encoder and held-out sounds
#
# The encoder `s2v demo` trained (or, if you have not run it, the quick one of notebook 00). The held-out clips come
# from a seed no model has seen; their true frames are embedded by the frozen image encoder (the *anchors*).

# %%
audio_encoder, _ = course.quick_audio_encoder()
clips = build_toy_dataset(160, seed=4000)
specs = spectrograms(clips)
true_frames = take_frames(clips, truth_frame(clips))
image_encoder, judge = registry.load_image_encoder("toy"), registry.load_judge()
anchors = image_encoder.encode(true_frames)
sound_embeddings = audio_encoder.embed(clips.audio.astype(np.float32))

# %% [markdown]
# ## 2. Two generators, one interface
#
# The diffusion generator (unCLIP-style, 10 DDIM steps with classifier-free guidance) and the GAN (one forward pass)
# read the same 128-d embedding. Four pictures per sound, one held-out sound per category:

# %%
rows = [int(np.flatnonzero(clips.label == c)[0]) for c in range(tw.N_CATEGORIES)]
names = [tw.CATEGORY_NAMES[c] for c in clips.label[rows]]
generators = {name: registry.load_generator(name) for name in ("toy-diffusion", "toy-gan")}
drawn = {name: g.generate(sound_embeddings[rows], n=4, seed=0) for name, g in generators.items()}
fig = viz.gallery(specs[rows], true_frames[rows], drawn["toy-diffusion"], names, title="sound -> diffusion generator")

# %%
fig = viz.gallery(specs[rows], true_frames[rows], drawn["toy-gan"], names, title="the same embeddings -> GAN")

# %%
for r, name in zip(rows[:3], names[:3]):
    print(name)
    display(viz.audio_player(clips.audio[r].astype(np.float32)))

# %% [markdown]
# ## 3. Measuring the pictures
#
# **Diversity** comes from the generator's noise $z$: the mean pairwise distance, in the image encoder's space,
# between the $n$ pictures of one sound. **Retrieval R@k** of a generated picture: is the true frame among the $k$
# held-out frames nearest to it (the authors used CLIP ViT-B/32; here the toy image encoder)? The **Frechet
# distance** compares Gaussians fitted to features of real ($r$) and generated ($g$) pictures,
#
# $$ \mathrm{FD} = \lVert \mu_r - \mu_g \rVert^2 + \mathrm{Tr}\big(\Sigma_r + \Sigma_g - 2 (\Sigma_r \Sigma_g)^{1/2}\big), $$
#
# with Inception-v3 features it is the FID. The **Inception Score** asks a classifier: each picture clearly one
# class, all classes used, $\mathrm{IS} = \exp\, \mathbb{E}_x\, \mathrm{KL}\big(p(y \mid x)\,\Vert\, p(y)\big)$;
# the toy judge is the classifier here (at most 8, the number of categories). And the judge checks the truth:
# is the sound's category in the picture, at the right size and shade?

# %%
pictures = {name: g.generate(sound_embeddings, n=2, seed=1) for name, g in generators.items()}
pictures["oracle (diffusion)"] = generators["toy-diffusion"].generate(anchors, n=2, seed=1)
table = {name: ablation.picture_metrics(p, clips, anchors, judge, image_encoder) for name, p in pictures.items()}
display(Markdown(ablation.markdown_table(table)))

# %% [markdown]
# The Inception network behind the real FID is slow on a CPU (a quarter of a second per picture), so this notebook
# uses the toy encoder's Frechet distance; `s2v ablate` computes both. Note how Frechet distances grow when the
# sample is small: compare rows of one table, never numbers across papers.

# %% [markdown]
# ## 4. The ablation: which choices matter
#
# `s2v ablate --out runs/ablate` trains one audio encoder per loss and per frame choice on the same 4,000 clips,
# draws every held-out sound with both generators, and adds the oracles (the true frame's embedding) and real
# frames as references: about 14 minutes on two cores. The course ships the table of one such run; your own run
# replaces it.

# %%
run = course.runs_dir() / "ablate" / "metrics.json"
shipped = course.REPO_ROOT / "data" / "results" / "ablate" / "metrics.json"
result = ablation.load_results(run if run.exists() else shipped)
print(f"from {result['path']} ({result['config']['n_train']} training clips, {result['seconds'] / 60:.0f} min)")
display(Markdown(ablation.markdown_table(result["rows"])))

# %%
fig = viz.ablation_bars(result["rows"])
print(result["checks"])

# %% [markdown]
# What the shipped run says (read your own run's table the same way):
#
# - **Regression is not worse here.** MSE and L1 score higher judged accuracy than the paper's InfoNCE-L2: they
#   land on the *mean* embedding of what a sound could look like, a clean prototype; in the toy world a sound fixes
#   category, size, shade and count, so averaging loses little. InfoNCE-L2 keeps more of each instance (its
#   generated-picture R@1 is higher). On real video, where one sound fits many scenes, the mean is a blur.
# - **Accuracy alone misleads.** Middle and random frames score high accuracy but their pictures hold several
#   objects (look at the grid and at `gen_extra`), far from real frames (Frechet distance twice as large).
# - **One seed is not enough.** Rerunning with another thread count moves rows by up to 0.17: differences smaller
#   than that are noise.

# %% [markdown]
# ## 5. Grad-CAM: which part of the sound drew the picture?
#
# Grad-CAM weights the feature maps $A_k$ of a convolutional layer by the mean gradient of a score $s$:
#
# $$ \mathrm{cam}(f, t) = \mathrm{ReLU}\Big(\sum_k \overline{\tfrac{\partial s}{\partial A_k}}\, A_k(f, t)\Big). $$
#
# The score is the audio embedding's projection on the generated picture's embedding,
# $s = f_\theta(x) \cdot g(\hat{x})$: where in time and frequency does the sound push towards what was drawn?

# %%
one_each = drawn["toy-diffusion"][:, 0]
maps = gradcam.explain_pictures(audio_encoder, specs[rows], one_each, image_encoder)
fig = viz.gradcam_figure(specs[rows], maps, one_each, names, title="Grad-CAM over the spectrogram (diffusion pictures)")
print(gradcam.band_energy(maps, specs[rows]))

# %% [markdown]
# ## 6. Bad input
#
# A generator refuses embeddings with NaN in them (e.g. from a broken recording) instead of drawing noise; a silent
# file is refused when it is read (`audio.load_audio`), and `s2v generate` reports it and goes on with the others.

# %%
broken = sound_embeddings[:2].clone()
broken[1, 5] = float("nan")
try:
    generators["toy-diffusion"].generate(broken)
except ValueError as err:
    print("refused:", err)

# %% [markdown]
# ## Summary
#
# - Any generator built for the image encoder's space draws from the aligned audio embedding unchanged; the
#   diffusion model and the GAN differ in picture quality, not in how they are driven.
# - Variety comes from the generator's noise; diversity, FID and the judge's scores measure it and its cost.
# - The oracle row is the ceiling for any audio encoder; real frames are the floor of the distribution metrics.
# - The ablation puts a number on each choice of the paper; read it row against row, with the checks printed.
# - Grad-CAM shows which time-frequency regions pushed the embedding towards the picture that was drawn.
#
# ## Exercises
#
# 1. Classifier-free guidance trades variety for fidelity. Measure diversity and judged accuracy of the diffusion
#    pictures for guidance 1, 2 and 4 (`generate(..., guidance=g)`).
# 2. Explain the GAN's pictures with Grad-CAM too. Are the maps the same as for the diffusion pictures? Why might
#    they be?
# 3. Which categories fail most often with each generator? Score each category on its own.

# %% tags=["solution"]
# Solution 1: more guidance, pictures closer to the condition and to each other.
subset = sound_embeddings[:48]
for g in (1.0, 2.0, 4.0):
    p = generators["toy-diffusion"].generate(subset, n=2, seed=2, guidance=g)
    emb = image_encoder.encode(p.reshape(-1, 32, 32, 3)).view(48, 2, -1)
    acc = metrics.judged_scores(judge, p, clips.label[:48])["accuracy"]
    print(f"guidance {g}: diversity {metrics.diversity(emb):.2f}, judged accuracy {acc:.2f}")

# %% tags=["solution"]
# Solution 2: the score depends on the picture only through its embedding, and both generators draw the same
# object from the same sound, so the maps are close (compare them numerically).
gan_maps = gradcam.explain_pictures(audio_encoder, specs[rows], drawn["toy-gan"][:, 0], image_encoder)
print(f"mean |diffusion map - GAN map| = {np.abs(maps - gan_maps).mean():.3f}")
fig = viz.gradcam_figure(specs[rows], gan_maps, drawn["toy-gan"][:, 0], names, title="Grad-CAM, GAN pictures")

# %% tags=["solution"]
# Solution 3: accuracy per category for each generator.
for name in ("toy-diffusion", "toy-gan"):
    per = [
        metrics.judged_scores(judge, pictures[name][clips.label == c], clips.label[clips.label == c])["accuracy"]
        for c in range(tw.N_CATEGORIES)
    ]
    print(f"{name:14s}", " ".join(f"{n[:5]:>5s} {a:.2f}" for n, a in zip(tw.CATEGORY_NAMES, per)))
