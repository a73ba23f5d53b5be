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
