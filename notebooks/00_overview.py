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
# # 00 · Sound in, picture out: the course in one notebook
#
# Hear a siren and you picture an ambulance. **Sound2Vision** teaches a computer the same trick without any labels
# or text: it learns an *audio encoder* whose output lands in the embedding space of a *frozen* image encoder, so
# that a *frozen* image generator, built to draw pictures from that space, draws a picture from a sound.
# This course builds the method stage by stage and really runs it, on a small synthetic audio-visual world that
# trains in minutes on a laptop (the *toy* profile) and on the paper's own models on a GPU (the *full* profile).
#
# **What you will learn here**
# - the whole pipeline in one picture, and which parts are trained and which stay frozen;
# - how to listen to and look at the course's data;
# - how a frozen generator draws from an image embedding (the *true-frame* path);
# - your first sound-to-picture: a sound's embedding fed to the same generator;
# - your own recording drawn, with how far to trust its picture (its familiarity);
# - how the rest of the course (notebooks 01-06) takes the pipeline apart.
#
# The first cell below sets everything up. On Google Colab it fetches and installs the course (keeping Colab's own
# PyTorch); everywhere it prints the versions, the profile and how many CPU threads torch may use.

# %%
import sys

if "google.colab" in sys.modules:  # on Colab: fetch the course once and install it (Colab's own torch is kept)
    import subprocess

    subprocess.run("test -d s2v-course || git clone -q --depth 1 https://github.com/OWNER/sound2vision-course s2v-course", shell=True, check=True)  # fmt: skip
    sys.path.insert(0, "s2v-course")
    from s2v_lib.course import install_course

    install_course("s2v-course")
import numpy as np
from IPython.display import display

from s2v_lib import config, course, generate, metrics, registry, results, stats, viz
from s2v_lib import toyworld as tw
from s2v_lib.audio import FrontEnd, save_wav

info = course.setup_notebook()

# %% [markdown]
# ## 1. The idea in two equations
#
# Three networks take part (the course's notation is on the book's notation page). A frozen **image encoder** $g$
# maps a picture $I$ to an embedding $v = g(I)$. A frozen **generator** $G$ was trained (by someone else, long ago) to
# draw a picture from such an embedding and some noise $z$: $\hat I = G(v, z)$. The only network we train is the
# **audio encoder** $f_\theta$, which maps a sound $x$, as a spectrogram $S$, to $a = f_\theta(S)$. The hope of the
# method is
#
# $$ f_\theta(S) \text{ lands among the image embeddings of what the sound shows} \quad\Longrightarrow\quad
#    \hat I = G\big(f_\theta(S),\, z\big) \text{ shows it too.} $$
#
# Training uses pairs $(x_i, I_i)$ of a sound and a frame of the same video, and the paper's loss: InfoNCE over a
# batch of $B$ pairs, with the negative Euclidean distance as the logit,
#
# $$ D_{ij} = \lVert a_i - v_j \rVert_2, \qquad
#    \mathcal{L} = \tfrac{1}{2}\Big[\mathrm{CE}\big(-D,\, \mathbb{1}\big) + \mathrm{CE}\big(-D^{\top},\, \mathbb{1}\big)\Big], $$
#
# where $\mathrm{CE}(\cdot, \mathbb{1})$ is the cross-entropy of each row against its own index: sound $i$ must be
# nearer to its own frame $v_i$ than to every other frame of the batch, and frame $i$ nearer to its own sound. Note
# what the loss does *not* ask: that $a_i$ equal $v_i$. It only orders distances, and the course measures where the
# audio embeddings end up (notebooks 03 and 06) and what the generator makes of them (notebook 04).
# No labels, no text: the video itself says which sound goes with which picture.

# %% [markdown]
# ## 2. The frozen models
#
# The toy profile ships its frozen models in `data/models` (trained once by the project; see the manifest there).
# One line loads each; in the full profile the same calls with no name load OpenCLIP ViT-H/14 and Stable unCLIP.

# %%
image_encoder = registry.load_image_encoder("toy")
generator = registry.load_generator("toy-diffusion")
for name in ("toy-image-encoder", "toy-diffusion"):
    info = registry.model_info(name)
    print(f"{name:18s} {info['params'] / 1e6:.1f} M parameters, trained for {info['seconds']:.0f} s on {info['device']}")

# %% [markdown]
# ## 3. The whole pipeline in one picture
#
# One clip of the toy world: a sound and a few video frames. The picture on the right is drawn by the frozen
# generator from the embedding of the frame on the left. The audio path (top) is what the course trains.

# %%
clip = tw.make_clip(seed=7, index=3)
frame = clip.frames[clip.visible.argmax()]  # the first frame that shows the sounding object
spectrogram = FrontEnd.preset("toy")(clip.audio)[0]
picture = generator.generate(image_encoder.encode(frame[None]), n=1, seed=0)[0, 0]
fig = viz.pipeline_figure(clip.audio, spectrogram, frame, picture)

# %% [markdown]
# ## 4. Listen and look
#
# The sound of that clip, and its eight frames. Frames framed in green show the sounding object; in the red ones it
# has left the view or hides behind a wall, and silent objects of other kinds may wander in. Notebook 01 is about
# this world; notebook 02 about choosing the right frame.

# %%
print(f"the sounding object: a {tw.CATEGORIES[clip.category].sound} ({tw.CATEGORIES[clip.category].shape})")
fig = viz.frame_strip(clip.frames, marks=clip.visible)
viz.audio_player(clip.audio)

# %% [markdown]
# ## 5. A picture from a picture: the true-frame path
#
# Before any sound: one fresh clip per category (seed 7 was never used for training anything), the frame that shows
# the object, its embedding $v = g(I)$, and four pictures $G(v, z)$ with different noise $z$. This is what the
# generator makes of a real frame's embedding: a reference for the sound path, not a limit (a sound's embedding can
# land where the generator draws even more clearly).

# %%
clips = [tw.make_clip(seed=7, index=100 + c, category=c) for c in range(tw.N_CATEGORIES)]
frames = np.stack([c.frames[c.visible.argmax()] for c in clips])
labels = np.array([c.category for c in clips])
from_frame = generator.generate(image_encoder.encode(frames), n=4, seed=1)
print(f"pictures: {from_frame.shape} (sounds, pictures per sound, height, width, RGB)")

# %%
grid = np.concatenate([frames[:, None], from_frame], axis=1)  # each row: the frame, then its four pictures
fig = viz.image_grid(grid, tw.CATEGORY_NAMES, ["frame"] + [f"drawn {k}" for k in range(1, 5)],
                     title="frame -> image embedding -> generator")

# %% [markdown]
# ## 6. A picture from a sound
#
# Now the real thing. The audio encoder is the one `s2v demo` trained, if you ran it; otherwise a quick one is
# trained here, in about a minute, on 1,200 toy clips (notebook 03 explains the training and does it properly).

# %%
audio_encoder, history = course.quick_audio_encoder()
if history is not None:
    fig = viz.training_curve(history)

# %% [markdown]
# The sounds of the same eight clips go through the front end and the audio encoder, and their embeddings
# $a = f_\theta(S)$ go to the *same* generator, exactly where the image embeddings went before.

# %%
waves = np.stack([c.audio for c in clips])
sound_embeddings = audio_encoder.embed(waves)
from_sound = generator.generate(sound_embeddings, n=4, seed=1)
specs = FrontEnd.preset("toy")(waves)
fig = viz.gallery(specs, frames, from_sound, tw.CATEGORY_NAMES, title="sound -> audio embedding -> generator")

# %% [markdown]
# Listen to them: which pictures match what you hear?

# %%
for name, wave in zip(tw.CATEGORY_NAMES, waves):
    print(name)
    display(viz.audio_player(wave))

# %% [markdown]
# A picture is only as good as what it shows, so the toy world comes with a **judge**: a classifier trained on the
# world's labelled frames (only to measure, never to train the method) that says which kinds of object a picture
# shows. Its *top-1* reading is the category it finds most probable; the *lenient* one only asks whether the
# sound's category is there at all. It scores both paths:

# %%
judge = registry.load_judge()
for path_name, pictures in (("true frame", from_frame), ("sound", from_sound)):
    scores = metrics.judged_scores(judge, pictures, labels)
    print(f"from the {path_name:11s}: the judge's top choice is the right object in {scores['top1_accuracy']:.0%} of "
          f"the pictures (it sees it at all in {scores['accuracy']:.0%})")

# %% [markdown]
# Eight sounds are too few to rank anything: `s2v demo --seeds 3` measures the same on 240 held-out sounds per seed,
# three seeds, with 95% intervals (the course ships its table):

# %%
demo = results.load("demo")
print(results.describe(demo))
print(f"sound: top-1 {stats.fmt(demo['gen_top1_accuracy'])}; true frame: top-1 {stats.fmt(demo['oracle_top1_accuracy'])}; "
      + stats.compare(demo["gen_top1_accuracy"], demo["oracle_top1_accuracy"], names=("the sound path", "the true-frame path")))

# %% [markdown]
# ## 7. The same code in the full profile
#
# With `S2V_PROFILE=full` (on a GPU, e.g. Colab) the same calls load the paper's models: OpenCLIP ViT-H/14 as the
# image encoder and Stable unCLIP 2.1 as the generator, a few GB downloaded from the Hugging Face hub. Without
# internet they stop with a message saying what to download or set, not with a stack trace.

# %%
if config.profile() == "full":
    image_encoder_full, generator_full = registry.load_image_encoder(), registry.load_generator()
    print(type(image_encoder_full).__name__, type(generator_full).__name__)
else:
    print("toy profile: set S2V_PROFILE=full (and use a GPU) to load the paper's models with the same two calls")

# %% [markdown]
# ## 8. Try your own sound
#
# Any recording works: a file on your computer, or on Colab the browser's microphone or an upload. The toy world
# knows only eight sounds, so each picture comes with its **familiarity**: the toy sound it is nearest to, and how
# far from every training sound the encoder put it, in units of a typical unseen toy clip. An *unfamiliar* sound is
# still drawn, but its picture is the generator's guess among toy pictures, not a failure of the method
# (`s2v familiarity` measures how well this tells toy clips from real recordings; `s2v generate` does the same for
# files). A recording shorter than half a second is refused: tiled to fill a clip it would be a train of clicks.
#
# The reference is what the measure compares with: the training sounds as the encoder sees them, calibrated on unseen
# toy clips.

# %%
reference = generate.load_reference(audio_encoder)
print(reference.summary())

# %% [markdown]
# Your sound: on Colab the cell records three seconds from your microphone (the browser asks first; use
# `generate.upload_in_browser()` to upload a file instead); elsewhere put a file's path in `your_sound`. Left empty,
# two sounds made here stand in: a toy siren the encoder has never heard, and a telephone ring.

# %%
your_sound = None  # e.g. "~/Music/dog_bark.wav"
if course.in_colab():
    your_sound = generate.record_in_browser("my_sound.webm", seconds=3)
if your_sound:
    sounds = [your_sound]
else:
    siren = tw.make_clip(seed=7, index=200, category=tw.category_index("siren")).audio
    t = np.arange(3 * 16000) / 16000
    ring = 0.3 * (np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 480 * t)) * ((t % 0.6) < 0.4)  # two tones, on/off
    sounds = [save_wav(course.runs_dir("course") / "toy_siren.wav", siren),
              save_wav(course.runs_dir("course") / "telephone_ring.wav", ring)]  # fmt: skip

# %%
for sound in sounds:
    drawing = generate.draw_sound(sound, audio_encoder, generator, reference, n=4, seed=0)
    print(f"{sound}: {drawing.note()}")
    display(viz.audio_player(drawing.wave))
    fig = viz.image_grid(drawing.pictures[None], [str(sound).rsplit("/", 1)[-1]], title="your sound -> pictures")

# %% [markdown]
# ## 9. The course
#
# | notebook | stage | what you measure |
# |---|---|---|
# | 01 audio-visual data | the toy world, the authors' spectrogram, real VGGSound/VEGAS folders | the ties loudness-size, pitch-shade, events-count; what the front end keeps |
# | 02 sound-source localisation | choosing each clip's training frame | how often the chosen frame shows the source |
# | 03 alignment training | the audio encoder and the InfoNCE-L2 loss, written out | retrieval R@k, embedding lengths, the modality gap |
# | 04 generation and evaluation | how the generators draw; the paper's ablations | judged accuracy, attributes, Frechet distances, against reference rows |
# | 05 controllability | louder, mixed and interpolated sounds | object size and count in the pictures |
# | 06 geometry | the modality gap, UMAP | the gap per loss, and what closing it does |
# | 07 the real thing | the paper's models on real clips (GPU) | the same figures on real data |
#
# Each notebook runs on its own: it loads what the course ships, or recomputes what it needs in a minute or two.

# %% [markdown]
# ## Summary
#
# - Sound2Vision trains **one** network, the audio encoder; the image encoder and the generator stay frozen.
# - The paper's loss asks each sound to be nearer its own frame than the other frames of a batch, with no labels;
#   it does not ask the sound's embedding to *be* the frame's (notebooks 03 and 06 measure where it lands).
# - The generator cannot tell where an embedding came from: fed a sound's embedding, it draws a picture, and the
#   judge measures how often that picture shows what the sound is.
# - The true-frame path is a reference to read the sound path against, not a bound.
# - A sound unlike the training sounds is still drawn; its familiarity says that the picture is only a guess.
#
# **Next.** Everything rests on the data: a sound and the frames it came with. Notebook 01 opens the toy world,
# shows what the paper's front end makes of a sound (and what it keeps of its loudness), and loads real video
# folders with the same code.
#
# ## Exercises
#
# 1. The method does not depend on the generator. Draw the eight sounds with the toy **GAN**
#    (`registry.load_generator("toy-gan")`) and compare the judge's score with the diffusion generator's.
# 2. The diffusion generator mixes a conditional and an unconditional prediction with a *guidance* weight
#    (default 2). Draw four pictures of one sound with `guidance` 1, 2 and 5: what happens to the variety?
# 3. Which categories does the sound path get right most often? Score each category on its own.

# %% tags=["solution"]
# Solution 1: the GAN draws from the same embeddings (no sampling steps: one forward pass per picture).
gan = registry.load_generator("toy-gan")
from_sound_gan = gan.generate(sound_embeddings, n=4, seed=1)
print(f"GAN: the judge's top choice is right in {metrics.judged_scores(judge, from_sound_gan, labels)['top1_accuracy']:.0%}")
fig = viz.gallery(specs, frames, from_sound_gan, tw.CATEGORY_NAMES, title="sound -> GAN")

# %% tags=["solution"]
# Solution 2: low guidance gives varied but vaguer pictures; high guidance sharper and more alike.
one = sound_embeddings[:1]
rows = np.concatenate([generator.generate(one, n=4, seed=2, guidance=g) for g in (1.0, 2.0, 5.0)])
fig = viz.image_grid(rows, ["guidance 1", "guidance 2", "guidance 5"], title=f"the sound of a {tw.CATEGORY_NAMES[0]}")

# %% tags=["solution"]
# Solution 3: one score per category (4 pictures each).
for c, name in enumerate(tw.CATEGORY_NAMES):
    acc = metrics.judged_scores(judge, from_sound[c : c + 1], labels[c : c + 1])["top1_accuracy"]
    print(f"{name:8s} {acc:.0%}")
