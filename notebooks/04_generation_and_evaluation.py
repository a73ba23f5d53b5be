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
# - how an unCLIP-style diffusion generator is conditioned on an image embedding, one DDIM step written out, and
#   classifier-free guidance, each checked against the toy generator's own code; the settings of the paper's
#   Stable unCLIP;
# - one interface for every generator: `generator.generate(embeddings, n, seed)`, diffusion and GAN alike;
# - where the variety of the pictures comes from (the generator's noise), and how to measure it;
# - the paper's metrics: retrieval R@k of generated pictures, Frechet distance (FID) and the Inception Score, and
#   what the toy world adds: a judge that knows the true category, size and shade;
# - how to read the ablation table of `s2v ablate` (losses, frame choice, generator) against its reference rows;
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
import torch
from IPython.display import Image, Markdown, display

from s2v_lib import ablation, course, full, gradcam, limits, metrics, registry, results, selfcheck, stats, viz
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
# ## 2. A generator primer: how a picture is drawn from an embedding
#
# The toy diffusion generator is built like the paper's Stable unCLIP, small enough to read: a UNet (a convolutional
# network that maps a picture to a picture of the same size) that takes a noisy picture and returns a clean one,
# told *which* picture by an image embedding. Notation: $I_0$ a clean picture, $I_t$ the same picture with noise
# of level $t$ (from $t = 0$, clean, to $t = 1000$, pure noise), $v$ the conditioning embedding, $w$ the guidance
# weight.
#
# ### Conditioning: the embedding joins the timestep
#
# A diffusion UNet is told the noise level $t$ through a *timestep embedding*, a vector added inside every residual
# block of the network. unCLIP-style conditioning adds the image embedding to that same vector: a small MLP maps
# $v$ to the timestep embedding's size and the two are summed (diffusers' `class_embed_type="identity"`), so every
# block of the UNet hears both "how noisy" and "what to draw".

# %%
gen = registry.load_generator("toy-diffusion")
t_emb = gen.unet.time_embedding(gen.unet.time_proj(torch.tensor([500])))  # the timestep embedding of t = 500
c_emb = gen.cond_mlp(anchors[:1])  # the image embedding v, mapped by the conditioning MLP
print(f"v: {tuple(anchors[:1].shape)} -> MLP -> {tuple(c_emb.shape)}, added to the timestep embedding "
      f"{tuple(t_emb.shape)}; the UNet's blocks read the sum")  # fmt: skip

# %% [markdown]
# Two training tricks make this conditioning usable. **Condition dropout**: in one training step out of ten the
# embedding is replaced by a learned **null embedding** $v_\varnothing$ (`gen.null_embed`), so the same network also
# learns to draw *without* a condition. And unCLIP's **noise augmentation**: the conditioning embedding is
# jittered with random noise in training, so the generator tolerates embeddings a little off the anchors (a
# property that matters when it is fed audio embeddings).

# %%
print(f"null embedding v_null: {tuple(gen.null_embed.shape)}, length {gen.null_embed.norm():.2f} "
      f"(an anchor's mean length: {anchors.norm(dim=1).mean():.2f}); noise augmentation scale {gen.cond_noise}")  # fmt: skip

# %% [markdown]
# ### One DDIM step
#
# Training noises a clean picture, $I_t = \sqrt{\alpha_t}\, I_0 + \sqrt{1 - \alpha_t}\, \varepsilon$ with
# $\varepsilon \sim \mathcal{N}(0, \mathrm{I})$ and $\alpha_t$ falling from 1 to 0 as $t$ grows (a cosine
# schedule), and the network learns to predict the clean picture, $\hat I_0 = G(I_t, t, v)$ (**x0-prediction**). To
# draw, start from pure noise and walk down a few timesteps. **DDIM** (denoising diffusion implicit models, Song et
# al. 2021) makes each step deterministic: from the prediction $\hat I_0$ it recovers the noise the picture must
# contain, then re-noises $\hat I_0$ to the next, lower level $t'$:
#
# $$ \hat\varepsilon = \frac{I_t - \sqrt{\alpha_t}\, \hat I_0}{\sqrt{1 - \alpha_t}}, \qquad
#    I_{t'} = \sqrt{\alpha_{t'}}\, \hat I_0 + \sqrt{1 - \alpha_{t'}}\, \hat\varepsilon . $$
#
# The toy generator takes 10 such steps, $t$ = 900, 800, ..., 0 (and $\alpha = 1$ after the last one).
#
# ### Classifier-free guidance
#
# Each step calls the network twice, with the embedding and with the null embedding, and moves *beyond* the
# conditional prediction, away from the unconditional one, by the **guidance** weight $w$ (classifier-free guidance,
# CFG, Ho & Salimans 2022):
#
# $$ \hat I_0^{(w)} = \hat I_0(v_\varnothing) + w\,\big(\hat I_0(v) - \hat I_0(v_\varnothing)\big). $$
#
# $w = 1$ is the conditional prediction alone; $w > 1$ trades variety for pictures that follow the condition more
# closely (the toy generator uses $w = 2$). Here is the first step for four held-out frames' embeddings, by hand:

# %%
sched = gen.make_scheduler("ddim")
sched.set_timesteps(10)
t, t_next = sched.timesteps[0], sched.timesteps[1]
v4 = anchors[:4]
I_t = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # pure noise
with torch.no_grad():
    I0_cond = gen.denoise(I_t, t.expand(4), v4)  # the prediction given v
    I0_null = gen.denoise(I_t, t.expand(4), gen.null_embed.expand_as(v4))  # given the null embedding
w = 2.0
I0 = (I0_null + w * (I0_cond - I0_null)).clamp(-1, 1)  # guidance, then keep the prediction in the picture's range

# %%
a_t, a_next = sched.alphas_cumprod[t], sched.alphas_cumprod[t_next]
eps = (I_t - a_t.sqrt() * I0) / (1 - a_t).sqrt()  # the noise that I_t must contain
I_next = a_next.sqrt() * I0 + (1 - a_next).sqrt() * eps  # the DDIM step from t to t'
library = sched.step(I0, t, I_t).prev_sample  # what the library's sampler does with the same prediction
print(f"t = {int(t)} -> t' = {int(t_next)}; by hand == diffusers' DDIM step: {torch.allclose(I_next, library, atol=1e-5)}")

# %% [markdown]
# The pieces of that step, for each of the four embeddings: the noise it starts from, the two predictions, the
# guided one, and the picture at the next level. After ten such steps the prediction *is* the picture.

# %%
pieces = ((torch.stack([I_t, I0_null, I0_cond, I0, I_next], 1) + 1) / 2).clamp(0, 1).permute(0, 1, 3, 4, 2).numpy()
fig = viz.image_grid(pieces, [tw.CATEGORY_NAMES[c] for c in clips.label[:4]],
                     ["noise I_t", "pred. (null)", "pred. (v)", f"guided, w={w:g}", "I_t' (next)"])  # fmt: skip

# %% [markdown]
# ### The paper's generator: Stable unCLIP
#
# The full profile runs the same recipe at scale. Stable unCLIP 2.1 is a *latent* diffusion model: its UNet works on
# 96 x 96 x 4 latents that a VAE (variational autoencoder) decodes into the picture, and it predicts a
# "v" (a mix of noise and picture) rather than $I_0$. The 1024-d OpenCLIP image embedding is normalised, noised
# to a chosen `noise_level` (the authors use 0: no noise), joined by an embedding of that noise level and added to
# the timestep embedding through a linear projection: the toy generator's mechanism. The unconditional branch of
# guidance is the same call with that vector set to **zeros** (there is no learned null embedding) and an empty text
# prompt, and guidance combines the two model outputs with the formula above. The authors' settings, as
# `s2v_lib.full` uses them (the repository id is a setting, `S2V_UNCLIP_REPO`, since the original was removed from
# the hub):

# %%
cfg = full.SD21_UNCLIP_CONFIGS
size = cfg["unet"]["sample_size"] * 2 ** (len(cfg["vae"]["block_out_channels"]) - 1)  # latent size x VAE upsampling
print(f"settings {full.UNCLIP_DEFAULTS}; prediction {cfg['scheduler']['prediction_type']}; pictures {size} x {size}; "
      f"default repository {full.UNCLIP_REPO}")  # fmt: skip

# %% [markdown]
# ## 3. Two generators, one interface
#
# The diffusion generator (the loop of section 2: 10 DDIM steps with guidance 2) and the GAN (a generative
# adversarial network: one forward pass from noise $z$ and the embedding) read the same 128-d embedding. Four
# pictures per sound, one held-out sound per category:

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
# ## 4. Measuring the pictures
#
# **Accuracy.** The judge (a classifier trained on the toy world's labelled frames, used only to measure) reads
# each picture. The headline is its **top-1 accuracy**: the sound's category is the judge's most probable one. The
# lenient rate only asks that the category be recognised (probability at least 0.5), whatever else the picture
# shows, so a cluttered picture can pass it.
#
# **Size and shade** of the sound's object are read only in pictures where the judge finds the category (an object
# that is not there has no size), beside the error of a constant guess (the median size and shade of training
# clips: what a picture that ignored loudness and pitch would score) and Spearman's correlation $\rho$ between the
# sound's true size and the size the judge reads.
#
# **Diversity** comes from the generator's noise $z$: the mean pairwise distance between the $n$ pictures of one
# sound. **Retrieval R@k** of a generated picture: is the true frame among the $k$ held-out frames nearest to it
# (the authors used CLIP ViT-B/32)? It is measured twice: in the toy image encoder's space, the very space the
# audio encoder was trained into (so the training objective can flatter it), and in the judge's feature space,
# which the audio encoder never saw. With $G$ held-out frames a random picture scores $k/G$. The **Frechet
# distance** compares Gaussians fitted to features of real ($r$) and generated ($g$) pictures,
#
# $$ \mathrm{FD} = \lVert \mu_r - \mu_g \rVert^2 + \mathrm{Tr}\big(\Sigma_r + \Sigma_g - 2 (\Sigma_r \Sigma_g)^{1/2}\big), $$
#
# in both spaces too (with Inception-v3 features it is the FID). The **Inception Score** asks a classifier: each
# picture clearly one class, all classes used, $\mathrm{IS} = \exp\, \mathbb{E}_x\, \mathrm{KL}\big(p(y \mid x)\,\Vert\, p(y)\big)$;
# the toy judge is the classifier here (at most 8, the number of categories).

# %%
yardsticks = ablation.Yardsticks(true_frames, build_toy_dataset(400, seed=0), anchors)  # scorers, built once
pictures = {name: g.generate(sound_embeddings, n=2, seed=1) for name, g in generators.items()}
pictures["true frame's embedding (diffusion)"] = generators["toy-diffusion"].generate(anchors, n=2, seed=1)
table = {name: {"name": name, **ablation.picture_metrics(p, clips, yardsticks)} for name, p in pictures.items()}
display(Markdown(ablation.markdown_table({"rows": table})))

# %% [markdown]
# The Inception network behind the real FID is slow on a CPU (a quarter of a second per picture), so this notebook
# uses the toy encoder's Frechet distance; `s2v ablate` computes both. Note how Frechet distances grow when the
# sample is small: compare rows of one table, never numbers across papers.

# %% [markdown]
# ## 5. The ablation: which choices matter
#
# `s2v ablate` trains one audio encoder per loss and per frame choice on the same clips, draws every held-out sound,
# and sets **reference rows** beside them, so that every number can be read against something:
#
# - `null_shuffled`: each sound replaced by *another* held-out clip's embedding. A row that does not beat it has
#   learnt nothing about the sound.
# - `null_mean`: one mean audio embedding for every sound (the generator's own variety, nothing else).
# - `prototype`: the mean image embedding of the sound's category over the training pairs, a perfect
#   *category-only* encoder (it needs the labels, so it is a reference, not a method).
# - `true_frame`: the generator fed each held-out clip's true frame's embedding. Other rows can beat it (a sound's
#   embedding can land where the generator draws more clearly than from a real frame's), so it is not a ceiling.
# - `real_frames`: real frames of other clips, no generator: the level of the distribution metrics at this size.
#
# The course ships the table of `s2v ablate --seeds 3` (three seeds: other clips and other training seeds each);
# your own `runs/ablate` replaces it. Every figure is the mean over seeds with its 95% interval ($\pm$ half-width);
# two rows differ only where their intervals do not overlap.

# %%
result = results.load("ablate")
print(results.describe(result))
display(Markdown(ablation.markdown_table(result)))

# %%
rows_table = result["rows"]
fig = viz.ablation_bars({r["name"]: r for r in rows_table.values()}, keys=("gen_top1_accuracy", "gen_r_at_5_judge"))
top1 = {rid: r["gen_top1_accuracy"] for rid, r in rows_table.items() if "gen_top1_accuracy" in r}
for other in ("null_shuffled", "prototype", "true_frame", "mse", "l1", "pairing_middle", "pairing_random",
              "gap_shift", "prior_affine", "prior_retrieval", "prior_diffusion", "generator_gan"):  # fmt: skip
    if other in top1:
        print(stats.compare(top1["sound2vision"], top1[other], names=("Sound2Vision", rows_table[other]["name"])))

# %% [markdown]
# What the shipped table says (the lines above are its verdicts; read your own run's the same way):
#
# - **The method works, and the null rows prove it.** The paper's recipe beats both nulls by far: a picture drawn
#   from another clip's sound, or from one mean embedding, rarely shows the right object.
# - **Seeds matter more than most choices.** The paper's row has the widest interval of the table: the same recipe
#   on another split and training seed draws the right object far more or far less often. At three seeds it cannot
#   be told apart from MSE, L1, cosine InfoNCE, Sound2Scene, the GAN or the true frame's embedding on top-1
#   accuracy. The perfect category-only encoder (the prototype) beats it.
# - **Frame choice shows in what the picture shares with its frame.** On top-1 accuracy SSL top-1 frames and middle
#   frames overlap at three seeds, but the pictures of the middle-frame encoder are much further from the true
#   frames in the judge's space (R@5 judge): middle frames often show a silent object instead of the one
#   heard, and the encoder learns to draw it.
# - **Size and shade barely survive.** Read the attribute columns in `ablation.csv` beside their constant guess:
#   even the true frame's embedding, drawn by the frozen generator, reads sizes no better than always guessing the
#   median, although the judge reads real frames well. Where is it lost? Next cell.
# - **A prior steadies the pictures** (section 6): its rows have a fraction of the paper's row's spread across seeds.

# %% [markdown]
# **Where size is lost.** `s2v limits --seeds 3` follows an object's size and shade from the frame to the picture,
# each stage beside the same constant guess: the judge reading the real frames (can the yardstick read it at
# all?), a linear probe of the frozen image encoder's embedding of the frame (does the embedding keep it?), and the
# judge reading the pictures the frozen generator draws from that embedding (does the generator draw it?):

# %%
lim = results.load("limits")
print(results.describe(lim))
print(limits.summary(lim))
for attr in ("size", "shade"):
    for key, what in (("judge_on_real_frames", "the judge on real frames"),
                      ("image_embedding_probe", "a linear probe of the image embedding"),
                      ("generator_from_true_frame", "pictures drawn from the true frame")):  # fmt: skip
        print(f"{attr}: " + stats.compare(lim[f"{attr}_{key}"], lim[f"{attr}_constant_guess"], higher_is_better=False,
                                          names=(what, "a constant guess")))  # fmt: skip

# %% [markdown]
# Read the stages in order: the first stage whose error is no better than the constant guess is where the attribute
# is lost. The last line of each attribute says *how* the generator draws it: a Spearman $\rho$ above 0 means bigger
# objects are still drawn bigger on average; a slope below 1 means the drawn sizes span a narrower range than the
# true ones; a mean bias away from 0 means every object is drawn too big (or too small). An error can lose to the
# constant guess although the order survives, when the drawings are shifted and squeezed. This is a limit of the
# course's small frozen generator, trained for category first; it bounds every row of the ablation that goes
# through it, so the size and shade columns of the table compare rows under that limit, not the methods' ceilings.

# %% [markdown]
# The pictures behind the table: held-out sounds drawn by each row's audio encoder (the figure `s2v ablate` writes
# next to its table).

# %%
grid_path = results.results_dir("ablate") / "ablation_grid.png"
print(f"from {grid_path.relative_to(course.REPO_ROOT)}")
display(Image(filename=str(grid_path)))

# %% [markdown]
# ## 6. Beyond the paper: a prior between the sound and the picture
#
# The paper feeds the generator the audio embedding as it is. Notebook 03 showed that the paper's loss leaves the
# audio embeddings longer than the image embeddings and off the image cloud (the modality gap), and the generator
# was trained only on the image cloud. DALL-E 2 and unCLIP met the same problem for text and solved it with a
# **prior**: a second model that maps the text embedding to an image embedding. Here are three, fitted on the
# training pairs the method already has (a clip's audio embedding, its paired frame's image embedding; no labels):
#
# - **affine**: $\hat v = W a + b$, fitted in closed form by ridge regression;
# - **retrieval**: the image embedding of one of the nearest training clips (by audio embedding);
# - **diffusion**: a small diffusion model over embedding vectors that *samples* an image embedding given $a$.
#
# The affine prior takes a second to fit. We fit it on the audio encoder's embeddings of 1,200 training clips and
# their middle frames, and draw the eight sounds of section 3 with and without it:

# %%
from s2v_lib import prior as priors  # noqa: E402
from s2v_lib.experiment import prepare_experiment  # noqa: E402

train_exp = prepare_experiment(n_train=1200, n_val=64, n_test=64, seed=0)
_, frame_embeddings = train_exp.training_pairs("middle")
train_audio = audio_encoder.embed(train_exp.train.audio.astype(np.float32))
affine = priors.fit_prior("affine", train_audio, frame_embeddings, profile="toy")
with_prior = generators["toy-diffusion"].generate(affine(sound_embeddings[rows]), n=4, seed=0)
fig = viz.gallery(specs[rows], true_frames[rows], with_prior, names, title="sound -> affine prior -> diffusion generator")

# %%
judged = {"raw audio embedding": metrics.judged_scores(judge, pictures["toy-diffusion"], clips.label),
          "affine prior": metrics.judged_scores(judge, generators["toy-diffusion"].generate(affine(sound_embeddings), n=2, seed=1),
                                                clips.label)}  # fmt: skip
for name, j in judged.items():
    print(f"{name:20s} judged top-1 accuracy {j['top1_accuracy']:.2f} on {len(clips)} held-out sounds")

# %% [markdown]
# One encoder and 160 sounds say little. The ablation has a row per prior, on three seeds, beside the raw embedding
# and the gap vector (the simplest correction: add the difference of the two clouds' means):

# %%
raw = rows_table["sound2vision"]
print("raw embedding, top-1 per seed:", [round(x, 3) for x in raw["gen_top1_accuracy"]["per_seed"]])
for rid in ("gap_shift", "prior_affine", "prior_retrieval", "prior_diffusion"):
    if rid in rows_table:
        r = rows_table[rid]
        print(f"{r['name']:28s} top-1 {stats.fmt(r['gen_top1_accuracy']):>14s}  FD judge {stats.fmt(r['frechet_judge']):>12s}  "
              f"diversity {stats.fmt(r.get('diversity')):>12s}")  # fmt: skip
        for key, low in (("gen_top1_accuracy", False), ("frechet_judge", True), ("diversity", False)):
            print(f"    {key:18s}", stats.compare(r[key], raw[key], higher_is_better=not low, names=(r["name"], "the raw embedding")))

# %% [markdown]
# A prior the course would recommend has to do better than the raw embedding on top-1 accuracy *and* on FD in the
# judge's space, beyond the intervals, without lowering diversity. Read the verdicts above against that goal. The
# raw embedding's top-1 interval is wide (its seeds, printed first, differ a lot), so a prior has to be very much
# better to clear it at three seeds. Where a prior's own interval is narrow, it lands the sound where the generator
# draws it whatever the seed. The diffusion prior also *samples*, so two pictures of one sound differ
# more than with the raw embedding.

# %% [markdown]
# ## 7. Grad-CAM: which part of the sound drew the picture?
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
# ## 8. Bad input
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
# - An unCLIP-style diffusion generator hears the image embedding through its timestep embedding; it draws by
#   repeated DDIM steps from a prediction of the clean picture, and classifier-free guidance pushes each prediction
#   away from the one made with the null embedding. Stable unCLIP does the same at 768 x 768, with zeros as the
#   unconditional embedding.
# - Any generator built for the image encoder's space draws from the aligned audio embedding unchanged; the
#   diffusion model and the GAN differ in picture quality, not in how they are driven.
# - Variety comes from the generator's noise; diversity, FID and the judge's scores measure it and its cost.
# - The true-frame rows (the generator fed the true frames' embeddings) and the real frames are references to read
#   the other rows against, not bounds: a sound's embedding can land where the generator draws more clearly than
#   from a real frame's embedding, and the table shows where that happens.
# - The ablation puts a number on each choice of the paper; read each row against the null rows, the category
#   prototype and the true frame, and call two rows different only where their intervals do not overlap.
# - Beyond the paper: a prior fitted on the training pairs (affine, retrieval, diffusion) moves the audio embedding
#   to where the generator has seen image embeddings; section 6 prints what each buys, with intervals.
# - Grad-CAM shows which time-frequency regions pushed the embedding towards the picture that was drawn.
#
# ## Exercises
#
# 1. Classifier-free guidance trades variety for fidelity. Measure diversity and judged accuracy of the diffusion
#    pictures for guidance 1, 2 and 4 (`generate(..., guidance=g)`).
# 2. Explain the GAN's pictures with Grad-CAM too. Are the maps the same as for the diffusion pictures? Why might
#    they be?
# 3. Which categories fail most often with each generator? Score each category on its own, and check one
#    generator's scores with `selfcheck.check_per_category(scores, predicted, clips.label)`, where `predicted` is
#    the category the judge finds most probable in each picture (`metrics.judged_category(judge.judge(pictures))`
#    gives it for pictures `[B, n, H, W, 3]`; use the first picture of each sound).
# 4. **The sampler, written out.** Write `sample(embeds, seed, steps=10, w=2.0)`: start from
#    `torch.randn(B, 3, 32, 32, generator=torch.Generator().manual_seed(seed))`, walk down `sched.timesteps` with
#    the guidance formula and the DDIM step of section 2, and return the last $I_t$ (the pictures, in $[-1, 1]$). Check it with
#    `selfcheck.check_ddim_sampler(sample(e, 0), e, gen, seed=0)` for a few sound embeddings `e`.

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
# Solution 3: per category, the share of pictures whose most probable category (the judge's top-1) is the sound's.
for name in ("toy-diffusion", "toy-gan"):
    predicted = metrics.judged_category(judge.judge(pictures[name][:, 0]))
    scores = [np.mean(predicted[clips.label == c] == c) for c in range(tw.N_CATEGORIES)]
    print(f"{name:14s}", " ".join(f"{n[:5]:>5s} {a:.2f}" for n, a in zip(tw.CATEGORY_NAMES, scores)))
selfcheck.check_per_category(scores, predicted, clips.label)


# %% tags=["solution"]
# Solution 4: the toy generator's sampler, step by step (section 2's step inside a loop).
def sample(embeds, seed, steps=10, w=2.0):
    sched = gen.make_scheduler("ddim")
    sched.set_timesteps(steps)
    I_t = torch.randn(len(embeds), 3, 32, 32, generator=torch.Generator().manual_seed(seed))  # pure noise
    null = gen.null_embed.expand_as(embeds)
    with torch.no_grad():
        for t in sched.timesteps:
            tt = t.expand(len(I_t))
            I0_null = gen.denoise(I_t, tt, null)
            I0 = I0_null + w * (gen.denoise(I_t, tt, embeds) - I0_null)  # guidance
            I_t = sched.step(I0.clamp(-1, 1), t, I_t).prev_sample  # the DDIM step to the next level
    return I_t


selfcheck.check_ddim_sampler(sample(sound_embeddings[:4], 0), sound_embeddings[:4], gen, seed=0)

# %% [markdown]
# ## Next
#
# A sound now gives a picture, and the pictures can be measured: the judge reads category, size and shade, and
# every choice of the method has a row in the table. If the picture follows the sound, then changing the sound
# should change the picture in the same way: a louder sound, a bigger object; two sounds mixed, two objects.
# Notebook 05 edits sounds and embeddings and measures what the pictures do.
