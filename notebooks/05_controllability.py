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
# # 05 · Controllability: edit the sound, edit the latent, measure the picture
#
# Sound2Vision's pictures can be steered without retraining anything. The paper shows it with examples: a louder
# waveform makes the source look bigger or nearer, two mixed sounds put both sources in one picture, interpolating
# between two embeddings morphs one scene into another, and moving an *image* embedding along a direction computed
# from sounds, $\text{embed}(\text{loud}) - \text{embed}(\text{quiet})$, edits the picture. In the toy world we know
# every object's true size and category, so we can *measure* each of these claims instead of looking at a few
# hand-picked pictures.
#
# **What you will learn**
# - why a louder waveform is still *visible* to the paper's z-scored front end (its floor is absolute), and the two
#   ways to make a sound louder: the whole recording, or the source against its room;
# - the waveform operations (gain in dB, mixing at a ratio, mixing with one component's gain changed) and what they
#   do with bad input (different sample rates or lengths, clipping);
# - the latent operations (interpolation audio <-> audio and audio <-> image, editing along a sound direction);
# - how to measure each edit with a judge that knows the ground truth, and which edits work, which fail, and why.
#
# The numbers of section 7 come from `s2v control --seeds 3` (the course ships its table; your own `runs/control`
# replaces it). This notebook uses that run's encoder if you made one; without it, it trains a smaller one first
# (well under a minute). Everything else here runs on a few examples in seconds.

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
from IPython.display import display

from s2v_lib import control, course, results, stats, viz
from s2v_lib import manipulate as mp
from s2v_lib import toyworld as tw
from s2v_lib.audio import FrontEnd

info = course.setup_notebook()

# %% [markdown]
# ## 1. Louder, as the front end hears it
#
# A gain of $g$ dB multiplies the waveform by $c = 10^{g/20}$ (+6 dB doubles it). The power spectral density
# scales by $c^2$, so inside the log of the paper's front end (notebook 01)
# $$\log\big(c^2 S(t,k) + 10^{-7}\big),$$
# and the per-clip z-score, $\tilde L = (L - \mu_L) / \sigma_L$, would remove the gain only if every bin were far
# above the constant $10^{-7}$ (then the gain is the same shift $2\log c$ everywhere). But a density of an ordinary
# recording sits *near* that floor in most bins: a quieter clip puts more of its bins on the floor, a louder one
# lifts more of them off it, and the z-scored picture changes. So the paper's front end keeps part of the
# absolute loudness, with no reference inside the clip needed.
#
# A toy clip can be taken apart into its sounding source and its ambient floor (`mp.toy_stems`, the room hiss that
# every toy clip shares). Make the whole clip 12 dB quieter, or only the source:

# %%
hum = mp.toy_stems(control.CONTROL_SEED, 0, category=tw.category_index("hum"))
print(f"source {hum.loudness_db:.1f} dBFS while it sounds; room {mp.rms_db(hum.floor):.1f} dBFS")
whole = mp.apply_gain(hum.render(), -12)  # the whole recording, room included: a recorder further away
source = hum.render(gain_db=-12)  # only the source; the room stays as it was: the source further away
fe = FrontEnd.preset("toy")
for name, wave in (("whole clip -12 dB", whole), ("source -12 dB", source)):
    at_floor = float((fe.power_density(wave) < 1e-7).float().mean())
    print(f"{name:18s} mean |change| of the z-scored spectrogram: {(fe(wave) - fe(hum.render())).abs().mean():.3f}; "
          f"bins at the floor {at_floor:.1%}")
print(f"{'original':18s} bins at the floor {float((fe.power_density(hum.render()) < 1e-7).float().mean()):.1%}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(8, 2.3))
versions = {"original": hum.render(), "whole clip -12 dB": whole, "source -12 dB": source}
for ax, (name, wave) in zip(axes, versions.items()):
    viz.show_spectrogram(ax, fe(wave)[0], name)

# %% [markdown]
# The players normalise each sound to full scale: the first two sound alike to you, but not to the front end.

# %%
display(viz.audio_player(hum.render()), viz.audio_player(whole), viz.audio_player(source))

# %% [markdown]
# How much the z-scored picture changes per dB of whole-clip gain, for both presets, and for the same formula on
# raw $|X|^2$ instead of a density (far above the floor everywhere):

# %%
loud = control.frontend_loudness(n=16)
for key, value in loud.items():
    print(f"{key:32s} {value:.4f} z units per dB")

# %% [markdown]
# **Two volume edits.** `mp.apply_gain` changes a whole recording (the recorder moved); `ToyStems.render(gain_db)`
# changes the source against its unchanged room (the source moved). In the toy world a louder *source* is a nearer,
# bigger object; section 3 measures both edits on the pictures. The alternative front end,
# `FrontEnd(normalize="global")` (fixed statistics instead of a per-clip z-score), keeps the absolute level fully,
# but then the picture depends on a microphone's gain as much as on the scene.
#
# ## 2. The audio encoder
#
# `s2v control` trains the paper's audio encoder (InfoNCE-L2, SSL top-1 frames) on toy clips of which some have two
# sounding sources, so that it has heard mixtures. Before generating, it moves the audio embeddings by the **gap
# vector**: the difference between the mean image embedding and the mean audio embedding of the validation clips
# (the image side from their SSL-chosen frames, never from ground truth). Notebook 03 introduced this modality gap;
# notebook 06 measures it for every loss. The diffusion generator samples with classifier-free guidance 4 instead
# of its default 2. Both settings were chosen on a tuning seed that the reported figures never use.

# %%
encoder, gap, how = control.notebook_encoder()
cfg = control.ControlConfig()  # the settings of `s2v control`: guidance, gap closing, levels, tolerance
ctrl = control.Controller.from_config(encoder, cfg, gap)
print(f"audio encoder {how}; gap vector length {gap.norm():.2f}; guidance {ctrl.guidance}")

# %% [markdown]
# ## 3. Volume: a louder source, a bigger object?
#
# Each held-out sound (world seed 5000, never trained on) is set to five levels across the world's range, a gain of
# $g_k = L_k - L_0$ dB on the source against the unchanged floor. The judge reads the size $s_k$ of the sound's
# object in each picture; the same generator noise is used at every level, so only the embedding changes. Per sound,
# Spearman's rank correlation
# $$\rho = \operatorname{corr}\big(\operatorname{rank}(g_1, \dots, g_K),\ \operatorname{rank}(s_1, \dots, s_K)\big)$$
# is 1 when every louder version is drawn bigger; `volume_size_spearman` is its mean over sounds. The same is
# measured for the whole clip made louder or quieter, room included (`volume_size_spearman_whole_clip`).

# %%
stems = control.heldout_stems(16)
vol = control.measure_volume(ctrl, stems[:3], cfg.volume_levels_db)
print(f"source against the room: Spearman per sound, mean {vol['volume_size_spearman']:.2f}; slope "
      f"{vol['volume_size_px_per_db']:.3f} px/dB (the world's own: {vol['volume_size_px_per_db_truth']:.3f})")
print(f"whole clip:              Spearman per sound, mean {vol['volume_size_spearman_whole_clip']:.2f}; slope "
      f"{vol['volume_size_px_per_db_whole_clip']:.3f} px/dB")  # fmt: skip

# %%
sizes = [[f"{s:.1f} px" for s in row] for row in vol["_size"]]
fig = viz.manipulation_strip(vol["_images"], [f"{x:+.1f} dBFS" for x in vol["_levels"]], cell_titles=sizes,
                             title="the source louder against the fixed floor (judged size below)")  # fmt: skip

# %%
fig = viz.size_vs_level(vol["_levels"], vol["_size"])

# %% [markdown]
# The first sound at its five levels (the players normalise, so listen to the hiss: it is loud when the source is
# quiet):

# %%
display(*(viz.audio_player(w) for w in vol["_waves"][:5]))

# %% [markdown]
# ## 4. Mixing: two sounds, two objects?
#
# A mixture is made the way the world makes its two-source clips: one room, two sources,
# $$x_\text{mix} = n + s_a + 10^{g/20}\, s_b ,$$
# with $g$ the gain of the second component (0 dB: both at their own level). `mix_both_rate` is the share of
# pictures from mixtures in which the judge recognises *both* categories; `mix_both_rate_single` applies the same
# test to pictures drawn from each sound alone: how often the other category shows up anyway.

# %%
pairs = control.mixture_pairs(stems, 3)
mixd = control.measure_mixing(ctrl, stems, pairs, cfg.mix_gains_db)
print({k: v for k, v in mixd.items() if not k.startswith("_")})

# %%
names = [" + ".join(tw.CATEGORY_NAMES[c] for c in pair) for pair in mixd["_categories"]]
cols = ["first alone", "second alone"] + [f"mix, 2nd {g:+g} dB" for g in mixd["_gains"]]
both = [["both" if b else "" for b in row] for row in mixd["_both"]]
fig = viz.manipulation_strip(mixd["_images"], cols, names, both, title="two sounds mixed (both judged?)")

# %%
i, j = pairs[0]
display(viz.audio_player(stems[i].render()), viz.audio_player(stems[j].render()),
        viz.audio_player(stems[i].mixed_with(stems[j])))  # fmt: skip

# %% [markdown]
# How often *can* the generator draw two objects? Feed it the image embeddings of real frames that show two
# objects (the best an audio encoder could do is to land exactly there):

# %%
oracle = control.measure_mixing_oracle(ctrl, 6)
print({k: v for k, v in oracle.items() if not k.startswith("_")})
fig = viz.manipulation_strip(np.stack([oracle["_frames"], oracle["_images"]], 1)[:4], ["real frame", "generated"])

# %% [markdown]
# For your own recordings `mp.mix` mixes two waveforms at a ratio, $(1 - r)\,a + r\,10^{g/20} b$. It resamples
# a sound at another rate to 16 kHz, zero-pads the shorter one (`length="trim"` cuts the longer instead), and
# clips a mixture that goes past 0 dBFS with a warning:

# %%
siren_8k = stems[5].render()[::2][:8000]  # one second of a siren at 8 kHz
mixed = mp.mix(stems[2].render(), siren_8k, ratio=0.5, rate_b=8000)
only_chirp = np.allclose(mixed[16000:], 0.5 * stems[2].render()[16000:])
print(f"{len(mixed)} samples at 16 kHz; the second second holds only the chirp: {only_chirp}")
loud = mp.mix(stems[2].render(), stems[3].render(), ratio=0.5, gain_db=30)  # warns: ClippingWarning
print(f"peak after clipping: {np.abs(loud).max():.2f}")

# %% [markdown]
# ## 5. Interpolation in the latent
#
# Between two embeddings, a sound's and another sound's (audio <-> audio) or a sound's and a picture's
# (audio <-> image), the straight line
# $$z(t) = (1 - t)\, z_a + t\, z_b, \qquad t \in [0, 1] .$$
# Along it the judged probability $p_k$ of the end point's category should rise. A path counts as monotonic if no
# step falls by more than a tolerance $\tau$ and it ends higher than it starts:
# $$p_{k+1} \ge p_k - \tau \ \text{ for all } k, \qquad p_K > p_1, \qquad \tau = 0.1 .$$
# (The judge's probabilities jitter by a few hundredths between nearly identical pictures; $\tau$ forgives that, not
# a real reversal.)

# %%
interp = control.measure_interpolation(ctrl, stems, 4, cfg.interp_steps, cfg.interp_tolerance)
titles = [[f"p={x:.2f}" for x in row] for row in interp["_p"]]
labels = [f"{k} -> {tw.CATEGORY_NAMES[c]}" for k, c in zip(interp["_kinds"], interp["_targets"])]
fig = viz.manipulation_strip(interp["_images"], [f"t={w:.1f}" for w in interp["_weights"]], labels, titles)
print(f"monotonic paths: {interp['interp_monotonic_rate']:.2f}")

# %% [markdown]
# Weights outside $[0, 1]$ extrapolate; `mp.interpolate` refuses them (to move past an embedding on purpose, use
# `mp.edit_embedding`):

# %%
z_a, z_b = ctrl.embed([stems[0].render(), stems[1].render()])
try:
    mp.interpolate(z_a, z_b, 1.5)
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ## 6. Editing a picture along a sound direction
#
# Take a picture's image embedding $z_v$ and a held-out sound of the same category, played at the top and at the
# bottom of the world's loudness range. With the audio encoder $f$,
# $$z' = z_v + \alpha \,\big(f(x_\text{loud}) - f(x_\text{quiet})\big).$$
# An edit succeeds if the judged size moves the intended way relative to the unedited picture ($\alpha = 0$, same
# generator noise): bigger for $+\alpha$, smaller for $-\alpha$. The gap vector cancels in the difference.

# %%
refs = control.heldout_stems(tw.N_CATEGORIES, start=len(stems))
edit = control.measure_editing(ctrl, stems[:3], refs, cfg.edit_alpha)
images = np.concatenate([edit["_frames"][:, None], edit["_images"]], 1)
sizes = [[""] + [f"{s:.1f} px" for s in row] for row in edit["_size"]]
fig = viz.manipulation_strip(images, ["picture"] + [f"alpha={a:+g}" for a in edit["_alphas"]], cell_titles=sizes)

# %%
ref = refs[stems[0].category]
lo, hi = tw.LOUDNESS_RANGE_DB
display(viz.audio_player(ref.render(hi - ref.loudness_db)), viz.audio_player(ref.render(lo - ref.loudness_db)))

# %% [markdown]
# ## 7. Measured
#
# The full measurement of `s2v control --seeds 3` (per seed: 24 sounds x 5 levels x 2 pictures for each volume edit,
# 40 mixtures at three gains, 24 interpolation paths, 24 pictures edited both ways; other held-out sounds and another
# trained encoder for each seed), with 95% intervals:

# %%
measured = results.load("control")
print(results.describe(measured))
print(control.summary(measured))

# %% [markdown]
# Each edit against its reference, with the rule of the course: "A beats B" only where the intervals do not overlap.

# %%
c = stats.compare
print("volume:", c(measured["volume_size_spearman"], 0.0, names=("louder source -> bigger object (Spearman)", "no tie (0)")))
print("volume:", c(measured["volume_size_px_per_db_truth"], measured["volume_size_px_per_db"],
                   names=("the world's size per dB", "the pictures' size per dB")))  # fmt: skip
print("volume:", c(measured["volume_size_spearman_whole_clip"], measured["volume_size_spearman"],
                   names=("a louder whole clip", "a louder source against the floor")))  # fmt: skip
print("mixing:", c(measured["mix_both_rate"], measured["mix_both_rate_single"],
                   names=("both objects, from a mixture", "a second object, from one sound (false positives)")))  # fmt: skip
print("mixing:", c(measured["mix_both_rate_real_frames"], measured["mix_both_rate_oracle"],
                   names=("real two-object frames", "pictures drawn from their embeddings")))  # fmt: skip
print("mixing:", c(measured["mix_both_rate_oracle"], measured["mix_both_rate"],
                   names=("pictures from real two-object frames' embeddings", "pictures from mixed sounds")))  # fmt: skip
print("interpolation:", c(measured["interp_monotonic_rate_audio_audio"], measured["interp_monotonic_rate_audio_image"],
                          names=("audio <-> audio paths", "audio <-> image paths")))  # fmt: skip
print("editing:", c(measured["edit_direction_rate"], 0.5, names=("size moves the intended way", "chance (0.5)")))

# %% [markdown]
# **What works, what fails, and why.** Read each point with the verdict above it.
#
# - **Volume: the tie is there, the scale is not.** Louder sources are drawn bigger on average (Spearman above
#   0), but the pictures change size far less per dB than the world does, and a single picture often breaks the
#   order. Size is a small part of what InfoNCE asks the embedding to carry (the category comes first), and notebook
#   04 (`s2v limits`) showed that the course's frozen generator squeezes sizes even from a true frame's embedding.
#   A louder *whole clip* works about as well as a louder source: with the authors' density front end (section 1)
#   the z-score does not erase the level, so here the encoder hears a whole-clip gain too.
# - **Mixing mostly fails, and the generator is the first reason.** Pictures of mixtures show both objects more
#   often than pictures of one sound do (the false-positive reference), but mostly they show *one* of the two. The
#   judge finds both objects in nearly every real two-object frame, yet the generator fed *those frames' own
#   embeddings*, the best an audio encoder could reach, draws both far less often: the small frozen generator rarely
#   draws two objects. The audio encoder adds a second reason: many of its two-source training clips were paired
#   with a frame that shows only one source, so it learnt "one of the two". A mixture made in the *latent*,
#   $z_a + z_b - \bar z$ (printed in the summary above), shows what the generator can do when pushed.
# - **Interpolation works along most paths**, more often between two sounds than from a sound towards a picture's
#   embedding: the two ends of an audio-image path lie on different sides of the modality gap.
# - **Editing along a sound direction works more often than chance**, for both signs, with the direction of a
#   single pair of sounds.
#
# One setting for every edit (guidance, gap shift, pictures per level; chosen on the tuning seed) is the honest
# measurement; exercise 2 shows what another setting buys for volume.
#
# ## Summary
#
# - A z-scored front end removes the absolute level; loudness survives only relative to a reference in the clip. The
#   toy world keeps a fixed ambient floor, and volume edits change the source against it.
# - `s2v_lib.manipulate` holds the edits: `apply_gain`, `mix` (ratio, gain of one component; resampling, padding or
#   trimming, clipping with a warning), `ToyStems` for source-against-floor edits, `interpolate` (weights in
#   $[0, 1]$ only), `sound_direction` and `edit_embedding`.
# - Measured on ground truth, each beside its reference: louder sounds give bigger objects on average but on a
#   squeezed scale; sound-direction edits move size the intended way more often than chance; interpolation rises
#   along most paths; mixing rarely gives both objects, and the frozen generator's own limit explains most of that.
#
# ## Exercises
#
# 1. **Whole-recording gain.** Embed a held-out sound at whole-clip gains of -12, 0 and +12 dB
#    (`mp.apply_gain(..., on_clip="keep")`) and at source gains of -12, 0, +12 dB (`render(gain_db)`), and compare
#    the distances between the embeddings. What does it mean for editing your own recordings?
# 2. **What the settings buy.** Measure `volume_size_spearman` on the 3 sounds of section 3 with the generator's default guidance 2
#    and without the gap vector (`control.Controller.load(encoder)`). Compare with section 3.
# 3. **Where does the second object appear?** Sweep the second component's gain from -18 to +18 dB on the mixtures
#    (the 3 of section 4) and plot the share of pictures showing each category against the gain.

# %% tags=["solution"]
# Exercise 1
s = stems[6]
wholes = [mp.apply_gain(s.render(), g, on_clip="keep") for g in (-12, 0, 12)]
sources = [s.render(g) for g in (-12, 0, 12)]
for name, waves in (("whole clip", wholes), ("source only", sources)):
    z = encoder.embed(np.stack(waves))
    print(f"{name:11s} |z(-12) - z(0)| = {(z[0] - z[1]).norm():.3f}, |z(+12) - z(0)| = {(z[2] - z[1]).norm():.3f}")
# both edits move the embedding: the density front end keeps part of a whole-clip gain (section 1), and the encoder
# hears it; compare the two distances printed above to see which the encoder follows more

# %% tags=["solution"]
# Exercise 2
plain = control.Controller.load(encoder)  # guidance 2, gap open
m = control.measure_volume(plain, stems[:3], cfg.volume_levels_db)
for name, r in (("guidance 2, gap open", m), ("section 3 settings", vol)):
    print(f"{name:20s} Spearman {r['volume_size_spearman']:.2f}, slope {r['volume_size_px_per_db']:.3f} px/dB")

# %% tags=["solution"]
# Exercise 3
gains = (-18.0, -9.0, 0.0, 9.0, 18.0)
sweep = control.measure_mixing(ctrl, stems, pairs, gains)
ca, cb = sweep["_categories"][:, 0], sweep["_categories"][:, 1]
probs = ctrl.read(sweep["_images"][:, 2:])["probs"]  # [pairs, gains, C]
first = [(probs[np.arange(len(ca)), k, ca] >= 0.5).mean() for k in range(len(gains))]
second = [(probs[np.arange(len(cb)), k, cb] >= 0.5).mean() for k in range(len(gains))]
fig, ax = plt.subplots(figsize=(4, 2.8))
ax.plot(gains, first, "o-", label="first (fixed level)")
ax.plot(gains, second, "s-", label="second (gain changed)")
ax.set_xlabel("gain of the second component (dB)")
ax.set_ylabel("share of pictures showing it")
ax.legend(fontsize=7)
plt.show()
