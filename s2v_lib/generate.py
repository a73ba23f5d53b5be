"""``s2v generate``: pictures for your own recordings (paper guide step 7, inference stage), and how far to trust them.

Reads any common sound file (wav, flac, ogg, mp3) or the audio track of a video, at any sample rate and channel
count (resampled to 16 kHz mono), and only as much of it as the encoder hears (its clip length; a longer file is
cut, as the front end would cut it, so an hour-long file costs no more than a short one). A recording shorter than
``audio.MIN_SECONDS`` is refused: tiled to the clip length it would be a train of clicks. A file whose header
promises more sound than it holds (truncated) is drawn from what it holds, with a one-line warning.

Each sound is embedded by a trained audio encoder and drawn ``n`` times by the frozen generator, and its
**familiarity** is reported (``s2v_lib.familiarity``): the nearest toy category and how far the sound landed from
the training sounds. In the toy profile, speech or a chainsaw is drawn anyway (as a toy picture) but called
unfamiliar: the picture is the generator's guess, not a failure of the method.

Exit status of ``s2v generate``: 0 every sound drawn; 1 some file refused (the others are still drawn); 3 none
refused but some read with a warning (e.g. truncated). Unfamiliar sounds do not change it: they are an answer about
the sound, not a problem with the file.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EXIT_REFUSED, EXIT_FLAGGED = 1, 3


def save_png(img: np.ndarray, path: Path, scale: int = 4) -> None:
    from PIL import Image

    Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST).save(path)


@dataclass
class Drawing:
    """One sound drawn: its pictures, its familiarity (None when the encoder has no reference) and its warnings."""

    path: str
    pictures: np.ndarray  # uint8 [n, H, W, 3]
    familiarity: object | None  # familiarity.Familiarity
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0  # seconds of sound read from the file
    wave: np.ndarray | None = None  # what the encoder heard: float32 mono at its sample rate (before tiling)

    def note(self, hint: bool = True) -> str:
        if self.familiarity is None:
            return "familiarity unknown (no reference for this encoder)"
        return self.familiarity.note(hint)


def read_for(model, sound):
    """A sound file read as the encoder ``model`` needs it: its clip length at most, refused under the minimum."""
    from .audio import MIN_SECONDS, read_sound

    fe = model.front_end
    return read_sound(sound, fe.sample_rate, max_seconds=fe.clip_seconds, min_seconds=MIN_SECONDS)


def draw_sound(sound, model, generator, reference=None, n: int = 4, seed: int = 0) -> Drawing:
    """Read one sound file (or use an ``audio.Recording``), embed it, draw ``n`` pictures and say how familiar it is.
    Raises ``audio.AudioError`` (one line) for a file that cannot be used."""
    import torch

    from .audio import Recording
    from .familiarity import encoder_features

    rec = sound if isinstance(sound, Recording) else read_for(model, sound)
    emb, features = encoder_features(model, model.front_end(rec.wave[None]))
    fam = reference.assess(emb, features)[0] if reference is not None else None
    pictures = generator.generate(torch.from_numpy(emb), n=n, seed=seed)[0]
    return Drawing(rec.path, pictures, fam, list(rec.warnings), rec.seconds, rec.wave)


def load_reference(model, encoder_path=None, log=print):
    """The familiarity reference of an encoder (``familiarity.reference_for``); None where there can be none: an
    encoder outside the toy profile without a reference saved beside it."""
    from .familiarity import Reference, reference_for, reference_path

    if model.config.get("front_end") == "toy":
        return reference_for(model, encoder_path, log=log)
    beside = reference_path(encoder_path) if encoder_path is not None else None
    return Reference.load(beside) if beside is not None and beside.exists() else None


def generate_from_files(sounds: list[str], out: str | Path, encoder: str | Path = "runs/demo/audio_encoder.safetensors",
                        generator: str | None = None, n: int = 4, seed: int = 0, log=print) -> dict:  # fmt: skip
    """Pictures for each sound file, with familiarity. Returns (and writes to ``out/generated.json``)
    ``{"written": {file: [pngs]}, "failed": {file: reason}, "flagged": {file: [warnings]},
    "familiarity": {file: {...}}, "unfamiliar": [files], "reference": how familiarity was calibrated}``."""
    from .audio import AudioError
    from .audio_encoder import load_audio_encoder
    from .config import setup_torch
    from .registry import load_generator

    setup_torch()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_audio_encoder(encoder)
    reference = load_reference(model, encoder, log=log)
    gen = load_generator(generator)
    written, failed, flagged, familiarity, unfamiliar = {}, {}, {}, {}, []
    for path in sounds:
        try:
            d = draw_sound(path, model, gen, reference, n=n, seed=seed)
        except AudioError as err:
            failed[str(path)] = err.reason
            log(f"error: {err}")
            continue
        stem = Path(path).stem
        files = []
        for k, img in enumerate(d.pictures):
            files.append(out / f"{stem}_{k}.png")
            save_png(img, files[-1])
        save_png(np.concatenate(list(d.pictures), axis=1), out / f"{stem}_grid.png")
        written[str(path)] = [str(f) for f in files]
        for w in d.warnings:
            log(f"warning: {path}: {w}")
        if d.warnings:
            flagged[str(path)] = d.warnings
        if d.familiarity is not None:
            familiarity[str(path)] = d.familiarity.as_dict()
            if d.familiarity.unfamiliar:
                unfamiliar.append(str(path))
        log(f"{path}: {len(files)} pictures -> {out / f'{stem}_grid.png'}; {d.note(hint=False)}")
    if unfamiliar:
        from .familiarity import unfamiliar_hint

        log(f"note: {len(unfamiliar)} of {len(written)} sound(s) are unfamiliar. {unfamiliar_hint()}")
    res = {"written": written, "failed": failed, "flagged": flagged, "familiarity": familiarity,
           "unfamiliar": unfamiliar, "reference": reference.summary() if reference is not None else None}  # fmt: skip
    (out / "generated.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


def exit_status(res: dict) -> int:
    return EXIT_REFUSED if res["failed"] else EXIT_FLAGGED if res["flagged"] else 0


# ----------------------------------------------------------------------------------------------------------------
# your own sound in a notebook: a file path anywhere, the browser's microphone or an upload on Colab

_RECORD_JS = """
async function s2vRecord(ms) {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  recorder.ondataavailable = e => chunks.push(e.data);
  const stopped = new Promise(resolve => recorder.onstop = resolve);
  recorder.start();
  await new Promise(resolve => setTimeout(resolve, ms));
  recorder.stop();
  await stopped;
  stream.getTracks().forEach(t => t.stop());
  const blob = new Blob(chunks, {type: recorder.mimeType});
  return await new Promise(resolve => {
    const reader = new FileReader();
    reader.onloadend = () => resolve(reader.result);
    reader.readAsDataURL(blob);
  });
}
"""


def record_in_browser(path: str | Path = "my_sound.webm", seconds: float = 3.0) -> Path:
    """Colab only: record ``seconds`` from the browser's microphone (the browser asks for permission) into ``path``
    (webm/ogg, whatever the browser records; the loader reads it with FFmpeg)."""
    from google.colab import output  # noqa: PLC0415 (only on Colab)
    from IPython.display import Javascript, display

    display(Javascript(_RECORD_JS))
    print(f"recording {seconds:g} s ... make your sound now")
    data_url = output.eval_js(f"s2vRecord({int(seconds * 1000)})")
    path = Path(path)
    path.write_bytes(base64.b64decode(data_url.split(",", 1)[1]))
    print(f"recorded {path} ({path.stat().st_size} bytes)")
    return path


def upload_in_browser() -> Path:
    """Colab only: upload one sound file from your computer; returns its path."""
    from google.colab import files  # noqa: PLC0415 (only on Colab)

    name, data = next(iter(files.upload().items()))
    path = Path(name)
    path.write_bytes(data)
    return path
