"""``s2v generate``: pictures for your own recordings (paper guide step 7, inference stage).

Reads any common sound file (wav, flac, ogg, mp3) or the audio track of a video, at any sample rate and channel
count (resampled to 16 kHz mono), any length (tiled or cut to the clip length), embeds it with a trained audio
encoder and lets the frozen generator draw ``n`` pictures. In-the-wild sounds are outside the toy world, so in the
toy profile the pictures are toy pictures. A file that cannot be used is reported in one line and skipped; the
others are still processed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .audio import AudioError, load_audio
from .audio_encoder import load_audio_encoder
from .config import setup_torch
from .registry import load_generator


def save_png(img: np.ndarray, path: Path, scale: int = 4) -> None:
    from PIL import Image

    Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST).save(path)


def generate_from_files(sounds: list[str], out: str | Path, encoder: str | Path = "runs/demo/audio_encoder.safetensors",
                        generator: str | None = None, n: int = 4, seed: int = 0, log=print) -> dict:  # fmt: skip
    """Pictures for each sound file; returns {"written": {file: [pngs]}, "failed": {file: reason}}."""
    setup_torch()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_audio_encoder(encoder)
    gen = load_generator(generator)
    written, failed = {}, {}
    for path in sounds:
        try:
            wave = load_audio(path)
        except AudioError as err:
            failed[str(path)] = err.reason
            log(f"error: {err}")
            continue
        emb = model.embed(wave[None])
        images = gen.generate(emb, n=n, seed=seed)[0]
        stem = Path(path).stem
        files = []
        for k, img in enumerate(images):
            files.append(out / f"{stem}_{k}.png")
            save_png(img, files[-1])
        save_png(np.concatenate(list(images), axis=1), out / f"{stem}_grid.png")
        written[str(path)] = [str(f) for f in files]
        log(f"{path}: {len(files)} pictures -> {out / f'{stem}_grid.png'}")
    (out / "generated.json").write_text(json.dumps({"written": written, "failed": failed}, indent=2) + "\n")
    return {"written": written, "failed": failed}
