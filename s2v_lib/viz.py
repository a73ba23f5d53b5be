"""Figures and audio players shared by the commands and the notebooks (one function per kind of picture)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .toyworld import CATEGORY_NAMES, SAMPLE_RATE


def audio_player(wave: np.ndarray, sample_rate: int = SAMPLE_RATE):
    """An audio widget for a notebook (IPython.display.Audio), normalised so quiet sounds stay audible."""
    from IPython.display import Audio

    return Audio(np.asarray(wave, dtype=np.float32), rate=sample_rate, normalize=True)


def show_spectrogram(ax, spec, title: str | None = None) -> None:
    """One [1, F, T] or [F, T] spectrogram image, low frequencies at the bottom."""
    s = np.asarray(spec, dtype=np.float32).squeeze()
    ax.imshow(s, origin="lower", aspect="auto", cmap="magma")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def show_image(ax, img, title: str | None = None) -> None:
    ax.imshow(np.asarray(img), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def gallery(specs, true_frames, generated, labels=None, path: str | Path | None = None, title: str | None = None):
    """Rows: spectrogram | true frame | generated images (the paper's Figure 4 layout)."""
    generated = np.asarray(generated)
    rows, n = len(true_frames), generated.shape[1]
    fig, axes = plt.subplots(rows, n + 2, figsize=(1.3 * (n + 2) + 0.6, 1.3 * rows + 0.4), squeeze=False)
    for r in range(rows):
        label = labels[r] if labels is not None else ""
        show_spectrogram(axes[r, 0], specs[r], "sound" if r == 0 else None)
        axes[r, 0].set_ylabel(label, fontsize=8)
        show_image(axes[r, 1], true_frames[r], "true frame" if r == 0 else None)
        for k in range(n):
            show_image(axes[r, 2 + k], generated[r, k], f"generated {k + 1}" if r == 0 else None)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)


def frame_strip(frames, marks=None, path: str | Path | None = None, title: str | None = None):
    """The frames of one clip side by side; ``marks`` (bools) outline frames in green (True) or red (False)."""
    frames = np.asarray(frames)
    fig, axes = plt.subplots(1, len(frames), figsize=(1.2 * len(frames), 1.5), squeeze=False)
    for i, f in enumerate(frames):
        ax = axes[0, i]
        show_image(ax, f, f"t={i}")
        if marks is not None:
            for s in ax.spines.values():
                s.set_edgecolor("tab:green" if marks[i] else "tab:red")
                s.set_linewidth(3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)


def training_curve(history, path: str | Path | None = None):
    """Train / held-out loss per epoch, and held-out R@1."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    ep = np.arange(1, len(history.train_loss) + 1)
    a.plot(ep, history.train_loss, "o-", label="train")
    a.plot(ep, history.val_loss, "o-", label="held-out")
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    a.legend()
    b.plot(ep, history.val_r_at_1, "o-", color="tab:green")
    b.set_xlabel("epoch")
    b.set_ylabel("held-out R@1")
    fig.tight_layout()
    return _finish(fig, path)


def category_label(c: int) -> str:
    return CATEGORY_NAMES[int(c)]


def _finish(fig, path):
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return Path(path)
    return fig


# --- geometry (notebook 06, `s2v geometry`): embeddings of both modalities in one picture -----------------------------

MODALITY_MARKERS = {"audio": "o", "image": "X"}


def _category_names(labels, category_names=None) -> list[str]:
    names = list(category_names) if category_names is not None else list(CATEGORY_NAMES)
    return [names[int(c)] if 0 <= int(c) < len(names) else str(int(c)) for c in np.asarray(labels)]


def embedding_map(ax, audio_xy, image_xy, labels, title: str | None = None, category_names=None, legend: bool = False):
    """Audio (circles) and image (crosses) embeddings in 2-D (e.g. UMAP), coloured by category."""
    import seaborn as sns

    names = _category_names(labels, category_names)
    order = list(dict.fromkeys(sorted(set(names), key=lambda n: (n not in CATEGORY_NAMES, CATEGORY_NAMES.index(n)
                                                                  if n in CATEGORY_NAMES else 0, n))))  # fmt: skip
    palette = dict(zip(order, sns.color_palette("tab10" if len(order) <= 10 else "husl", len(order))))
    xy = np.concatenate([np.asarray(audio_xy), np.asarray(image_xy)])
    modality = ["audio"] * len(audio_xy) + ["image"] * len(image_xy)
    sns.scatterplot(x=xy[:, 0], y=xy[:, 1], hue=names + names, style=modality, hue_order=order, palette=palette,
                    markers=MODALITY_MARKERS, style_order=["audio", "image"], s=18, alpha=0.75, linewidth=0, ax=ax,
                    legend=legend)  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def embedding_maps(maps: dict, path: str | Path | None = None, titles: dict | None = None, category_names=None,
                   ncols: int = 3):  # fmt: skip
    """One :func:`embedding_map` per entry of ``maps`` ({name: (audio_xy, image_xy, labels)}), legend at the right."""
    n = len(maps)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    width = 3.4 * ncols + 1.3
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 3.2 * nrows), squeeze=False)
    for i, (name, (a, v, lab)) in enumerate(maps.items()):
        embedding_map(axes.flat[i], a, v, lab, (titles or {}).get(name, name), category_names, legend=(i == 0))
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if axes.flat[0].get_legend() is not None:
        axes.flat[0].get_legend().remove()
    fig.legend(handles, labels, loc="center right", fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 1 - 1.3 / width, 1))
    return _finish(fig, path)


def gap_vs_accuracy(variants: dict, path: str | Path | None = None):
    """Centroid gap (raw, and L2-normalised) against the judged top-1 accuracy of the pictures, one marker per variant."""
    names = [k for k, r in variants.items() if "gen_top1_accuracy" in r]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    markers = "osD^vP*X"
    for ax, key, label in ((axes[0], "gap_centroid", "centroid gap (raw embeddings, what the generator sees)"),
                           (axes[1], "gap_centroid_normalized", "centroid gap (L2-normalised, Liang et al.)")):  # fmt: skip
        for i, k in enumerate(names):
            ax.scatter(variants[k][key], variants[k]["gen_top1_accuracy"], marker=markers[i % len(markers)], s=45,
                       color=plt.cm.tab10(i % 10), label=k)  # fmt: skip
        ax.set_xlabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("judged top-1 accuracy of the pictures")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.tight_layout()
    return _finish(fig, path)


# ----------------------------------------------------------------------------------------------------------------
# sound-source localisation (notebook 02, `s2v ssl`): heatmaps over frames and per-frame score bars


def show_heatmap(ax, frame, heat, mask=None, title: str | None = None, alpha: float = 0.45,
                 vmin: float | None = 0.0, vmax: float | None = 1.0) -> None:  # fmt: skip
    """A frame with its localisation map on top (stretched to the frame; jet colours on a fixed ``vmin..vmax`` scale,
    cosine 0..1 by default, so a frame where nothing answers the sound stays blue) and, if given, the ground-truth
    object mask outlined in white."""
    frame = np.asarray(frame)
    h, w = frame.shape[:2]
    ax.imshow(frame, interpolation="nearest", extent=(0, w, h, 0))
    ax.imshow(np.asarray(heat, dtype=np.float32), cmap="jet", alpha=alpha, interpolation="bilinear",
              extent=(0, w, h, 0), vmin=vmin, vmax=vmax)  # fmt: skip
    if mask is not None and np.asarray(mask).any():
        m = np.asarray(mask, dtype=float)
        ys, xs = ((np.arange(n) + 0.5) * (size / n) for n, size in zip(m.shape, (h, w)))  # pixel centres
        ax.contour(xs, ys, m, levels=[0.5], colors="white", linewidths=0.8)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def score_bars(ax, scores, visible=None, selected: int | None = None, threshold: float | None = None,
               title: str | None = None) -> None:  # fmt: skip
    """Per-frame SSL scores as bars: green where the source is in view (if ``visible`` is known), grey otherwise;
    ``*`` marks the selected (top-1) frame, ``m`` the middle frame; a dashed line the no-source threshold."""
    s = np.asarray(scores, dtype=float)
    t = np.arange(len(s))
    colours = ["tab:green" if v else "tab:gray" for v in visible] if visible is not None else ["tab:blue"] * len(s)
    ax.bar(t, s, color=colours)
    top = int(np.argmax(s)) if selected is None else int(selected)
    lo = min(0.0, float(s.min()))
    ax.set_ylim(lo, max(1.0, float(s.max())) * 1.15)
    ax.text(top, s[top], "*", ha="center", va="bottom", fontsize=12)
    ax.text(len(s) // 2, lo, "m", ha="center", va="bottom", fontsize=8, color="white" if s[len(s) // 2] > 0.1 else "k")
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=0.8)
    ax.set_xticks(t)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=8)


def localisation_grid(frames, maps, masks=None, visible=None, path: str | Path | None = None,
                      title: str | None = None, scores=None):  # fmt: skip
    """Clips in rows, frames in columns: each frame with its localisation map (``maps`` [n, T, h, w]) and the
    sounding object's mask; frames that show the source are framed in green, the others in red. With ``scores``
    [n, T] each frame is titled with its score and the top-1 frame is starred."""
    frames, maps = np.asarray(frames), np.asarray(maps)
    n, t = frames.shape[:2]
    fig, axes = plt.subplots(n, t, figsize=(1.2 * t, 1.3 * n + 0.4), squeeze=False)
    for i in range(n):
        top = int(np.argmax(scores[i])) if scores is not None else -1
        for f in range(t):
            ax = axes[i, f]
            label = None
            if scores is not None:
                label = f"{'* ' if f == top else ''}{scores[i][f]:.2f}"
            elif i == 0:
                label = f"t={f}"
            show_heatmap(ax, frames[i, f], maps[i, f], None if masks is None else masks[i][f], label)
            if visible is not None:
                for s in ax.spines.values():
                    s.set_edgecolor("tab:green" if visible[i][f] else "tab:red")
                    s.set_linewidth(2.5)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)


def score_bars_grid(scores, visible=None, path: str | Path | None = None, title: str | None = None,
                    threshold: float | None = None, labels=None):  # fmt: skip
    """One :func:`score_bars` panel per clip, side by side."""
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    n = len(scores)
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.0), squeeze=False)
    for i in range(n):
        score_bars(axes[0, i], scores[i], None if visible is None else visible[i], threshold=threshold,
                   title=labels[i] if labels is not None else f"clip {i}")  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)


# ----------------------------------------------------------------------------------------------------------------
# the course's overview figures (notebooks 00 and 01)


def pipeline_figure(wave, spec, frame, picture, path: str | Path | None = None, sample_rate: int = SAMPLE_RATE):
    """The method in one picture, drawn from real data: sound -> spectrogram -> audio encoder (trained) -> shared
    embedding space <- image encoder (frozen) <- frame; embedding -> generator (frozen) -> picture."""
    fig, ax = plt.subplots(figsize=(10, 3.8))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4)
    ax.set_axis_off()
    w = np.asarray(wave, dtype=np.float32)
    wax = ax.inset_axes([0.1, 2.6, 1.6, 1.0], transform=ax.transData)
    wax.plot(np.arange(len(w)) / sample_rate, w, lw=0.3, color="tab:blue")
    wax.set_axis_off()
    ax.imshow(np.asarray(spec, dtype=np.float32).squeeze(), origin="lower", aspect="auto", cmap="magma",
              extent=(2.1, 3.3, 2.6, 3.6))  # fmt: skip
    ax.imshow(np.asarray(frame), extent=(0.5, 1.5, 0.3, 1.3), interpolation="nearest")
    ax.imshow(np.asarray(picture), extent=(8.85, 9.85, 1.5, 2.5), interpolation="nearest")
    boxes = {"audio encoder\n(trained)": (4.35, 3.1, "#fde2c8"), "image encoder\n(frozen)": (4.35, 0.8, "#d8e6f3"),
             "generator\n(frozen)": (7.55, 2.0, "#d8e6f3")}  # fmt: skip
    for text, (x, y, colour) in boxes.items():
        ax.text(x, y, text, ha="center", va="center", fontsize=9, bbox=dict(boxstyle="round,pad=0.5", fc=colour, ec="0.3"))
    ax.add_patch(plt.Circle((6.0, 2.0), 0.55, fc="#eeeeee", ec="0.3"))
    ax.plot([5.85], [2.15], "o", color="tab:orange", ms=7)
    ax.plot([6.12], [1.88], "X", color="tab:blue", ms=8)
    ax.text(6.0, 1.2, "shared embedding\nspace", ha="center", va="top", fontsize=8)
    arrows = [((1.75, 3.1), (2.05, 3.1)), ((3.35, 3.1), (3.6, 3.1)), ((5.1, 3.0), (5.6, 2.35)),
              ((1.55, 0.8), (3.6, 0.8)), ((5.1, 0.9), (5.6, 1.65)), ((6.6, 2.0), (6.95, 2.0)), ((8.15, 2.0), (8.8, 2.0))]  # fmt: skip
    for start, end in arrows:
        ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", lw=1.2, color="0.25"))
    labels = [(0.9, 3.72, "sound (16 kHz)"), (2.7, 3.72, "log |STFT|$^2$"), (1.0, 1.42, "video frame"),
              (9.35, 2.62, "picture"), (6.0, 2.75, "loss pulls audio (o)\nonto image (x)")]  # fmt: skip
    for x, y, text in labels:
        ax.text(x, y, text, ha="center", va="bottom", fontsize=8)
    ax.text(2.6, 0.1, "training: pairs (sound, frame) from the same video; only the audio encoder learns",
            fontsize=8, color="0.35", ha="left")  # fmt: skip
    fig.tight_layout()
    return _finish(fig, path)


def draw_boxes(ax, boxes, colour: str = "white", lw: float = 1.2) -> None:
    """Outline ground-truth boxes ``(x0, y0, x1, y1)`` in pixels on an image axis."""
    from matplotlib.patches import Rectangle

    for x0, y0, x1, y1 in boxes:
        if np.all(np.isfinite([x0, y0, x1, y1])):
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=colour, lw=lw))


def image_grid(images, row_labels=None, col_titles=None, path: str | Path | None = None, title: str | None = None,
               cell_titles=None):  # fmt: skip
    """Pictures [R, C, H, W, 3] in a grid, a label per row and a title per column; ``cell_titles[r][c]`` (e.g. the
    judged size) under each picture, where given."""
    images = np.asarray(images)
    rows, cols = images.shape[:2]
    extra = 0.2 if cell_titles is not None else 0.0  # room for the text under each picture
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols + 0.6, (1.3 + extra) * rows + 0.4), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            show_image(axes[r, c], images[r, c], col_titles[c] if col_titles is not None and r == 0 else None)
            if cell_titles is not None and cell_titles[r][c]:
                axes[r, c].set_xlabel(cell_titles[r][c], fontsize=7, labelpad=2)
        if row_labels is not None:
            axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)


# ----------------------------------------------------------------------------------------------------------------
# controllability (notebook 05, `s2v control`): pictures along an edit, and size against level


def manipulation_strip(images, col_titles, row_labels=None, cell_titles=None, path: str | Path | None = None,
                       title: str | None = None):  # fmt: skip
    """Pictures [rows, cols, H, W, 3] along an edit: one row per example, one column per step of the edit
    (gain, mixing, interpolation weight, alpha); :func:`image_grid` with the steps as columns."""
    return image_grid(images, row_labels, col_titles, path, title, cell_titles=cell_titles)


def size_vs_level(levels_db, sizes, path: str | Path | None = None):
    """Judged size of the generated object against the source's level (one thin line per sound, the mean in
    black), with the toy world's true loudness -> size map dashed."""
    from .toyworld import loudness_to_size

    levels, sizes = np.asarray(levels_db, dtype=float), np.asarray(sizes, dtype=float)
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    for row in sizes:
        ax.plot(levels, row, color="tab:blue", alpha=0.25, lw=0.8)
    ax.plot(levels, sizes.mean(0), "o-", color="k", label="mean over sounds")
    fine = np.linspace(levels.min(), levels.max(), 50)
    ax.plot(fine, loudness_to_size(fine), "--", color="tab:red", label="the world's truth")
    ax.set_xlabel("source level (dBFS, floor at -42)")
    ax.set_ylabel("judged object size (px)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


# ----------------------------------------------------------------------------------------------------------------
# generation and evaluation (notebook 04, `s2v ablate`): the ablation's bars, Grad-CAM over spectrograms


def ablation_bars(results: dict, path: str | Path | None = None, keys=("gen_top1_accuracy", "gen_r_at_5_judge")):
    """One horizontal bar per ablation row for each of ``keys`` (metrics.json names), with the 95% interval as an
    error bar when the figures have one (``s2v_lib.stats``)."""
    from . import stats

    names = list(results)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys) + 2.2, 0.32 * len(names) + 1.0), sharey=True,
                             squeeze=False)  # fmt: skip
    for ax, key in zip(axes[0], keys, strict=True):
        vals = [results[n].get(key) for n in names]
        means = [stats.mean_of(v) if v is not None else np.nan for v in vals]
        err = np.array([[m - stats.bounds(v)[0], stats.bounds(v)[1] - m] if v is not None else [0, 0]
                        for v, m in zip(vals, means)]).T  # fmt: skip
        ax.barh(range(len(names)), means, xerr=err, capsize=2,
                color=["tab:red" if i == 0 else "tab:blue" for i in range(len(names))])  # fmt: skip
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(key)
        ax.set_xlim(0, 1)
    fig.tight_layout()
    return _finish(fig, path)


def gradcam_figure(specs, maps, pictures, labels=None, path: str | Path | None = None, title: str | None = None):
    """Per sound: its spectrogram, the Grad-CAM map over it, and the picture drawn from it (the paper's Figure 5)."""
    n = len(maps)
    fig, axes = plt.subplots(3, n, figsize=(1.5 * n + 0.4, 4.4), squeeze=False)
    for i in range(n):
        show_spectrogram(axes[0, i], specs[i], labels[i] if labels is not None else None)
        show_spectrogram(axes[1, i], specs[i])
        axes[1, i].imshow(np.asarray(maps[i]), origin="lower", aspect="auto", cmap="jet", alpha=0.5, vmin=0, vmax=1)
        show_image(axes[2, i], pictures[i])
    for r, name in enumerate(("spectrogram", "Grad-CAM", "generated")):
        axes[r, 0].set_ylabel(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)
