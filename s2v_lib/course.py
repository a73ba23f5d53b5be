"""The course around the library: every notebook's set-up cell, clear messages instead of stack traces, and the
notebook files' housekeeping (student copies without solutions, the book's copies).

Every notebook starts with the same first cell::

    import sys

    if "google.colab" in sys.modules:  # on Colab: fetch the course once and install it (Colab's own torch is kept)
        import subprocess

        subprocess.run("test -d s2v-course || git clone -q --depth 1 <REPO_URL> s2v-course", shell=True, check=True)
        sys.path.insert(0, "s2v-course")
        from s2v_lib.course import install_course

        install_course("s2v-course")
    import numpy as np   # ...all of the notebook's imports, here: on Colab they need the installation above

    from s2v_lib import course, viz

    info = course.setup_notebook()

This module therefore imports only the standard library at the top: on Colab it is imported before the course's
dependencies are installed. (``tests/test_notebooks.py`` checks every notebook's first cell.) :func:`install_course` installs the package *without* touching the torch, torchvision and
torchaudio that Colab preinstalls (they are pinned to the installed versions by a constraints file).

:func:`setup_notebook` sets torch's threads (``S2V_THREADS``), prints the versions, the profile and the thread count,
and makes the errors a student can act on (a shipped model that cannot be loaded, a step not run yet, an unreadable
sound or video file) print as one clear message instead of a stack trace. :func:`require` is how a notebook says
what it needs from an earlier one.

Solutions to exercises live in code cells tagged ``solution``: :func:`student_copy` removes them, :func:`book_copy`
keeps them folded (Jupyter Book's ``hide-input`` tag: the reader clicks to reveal the solution and its output).
"""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

REPO_URL = "https://github.com/OWNER/sound2vision-course"  # placeholder: set it with scripts/set_repo_url.py URL
REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
DEMO_ENCODER = Path("runs") / "demo" / "audio_encoder.safetensors"  # what `s2v demo` writes
SOLUTION_TAG = "solution"
BOOK_SOLUTION_TAGS = ("hide-input",)  # Jupyter Book: a folded cell with a "click to show" toggle
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")

# tqdm.auto warns in kernels without ipywidgets and then draws plain text bars, which is what we want: say nothing.
warnings.filterwarnings("ignore", message="IProgress not found")


def in_colab() -> bool:
    return "google.colab" in sys.modules


# ----------------------------------------------------------------------------------------------------------------
# installing (Colab)


def _installed(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def torch_pins() -> list[str]:
    """Constraints that keep the installed torch family as it is (a missing torchaudio/torchvision is pinned to the
    release that matches the installed torch, so pip never swaps torch for another build)."""
    torch = _installed("torch")
    if torch is None:
        return []
    base = torch.split("+")[0]
    major, minor = (int(x) for x in base.split(".")[:2])
    matching = {"torchaudio": base, "torchvision": f"0.{minor + 15}.*" if major == 2 else None}
    pins = [f"torch=={torch}"]
    for dist in TORCH_FAMILY[1:]:
        version = _installed(dist)
        if version:
            pins.append(f"{dist}=={version}")
        elif matching[dist]:
            pins.append(f"{dist}=={matching[dist]}")
    return pins


def install_command(root: str | Path = REPO_ROOT, extras: tuple[str, ...] = (), constraints: str | Path | None = None) -> list[str]:
    target = f"{Path(root).resolve()}[{','.join(extras)}]" if extras else str(Path(root).resolve())
    cmd = [sys.executable, "-m", "pip", "install", "-q", "-e", target]
    return cmd + (["-c", str(constraints)] if constraints else [])


def install_course(root: str | Path = REPO_ROOT, extras: tuple[str, ...] | None = None, run=subprocess.run) -> list[str]:
    """``pip install -e root`` (plus ``[full]`` in the full profile) with the installed torch family pinned.

    Never ``--force-reinstall``: Colab's torch, torchvision and torchaudio are matched to its CUDA and stay as they are.
    Returns the command it ran.
    """
    if extras is None:
        extras = ("full",) if os.environ.get("S2V_PROFILE", "toy").strip().lower() == "full" else ()
    with tempfile.NamedTemporaryFile("w", suffix="-constraints.txt", delete=False) as f:
        f.write("\n".join(torch_pins()) + "\n")
    try:
        cmd = install_command(root, extras, f.name)
        print(f"installing the course from {Path(root).resolve()} (keeping {', '.join(torch_pins()) or 'torch as is'})")
        run(cmd, check=True)
    finally:
        os.unlink(f.name)
    if str(Path(root).resolve()) not in sys.path:
        sys.path.insert(0, str(Path(root).resolve()))
    importlib.invalidate_caches()
    return cmd


# ----------------------------------------------------------------------------------------------------------------
# the first cell


def versions() -> dict[str, str]:
    """Versions of what the course depends on most ('missing' where a package is not installed)."""
    import s2v_lib

    out = {"s2v_lib": s2v_lib.__version__, "python": sys.version.split()[0]}
    for dist in ("torch", "torchaudio", "diffusers", "numpy"):
        out[dist] = _installed(dist) or "missing"
    return out


def setup_notebook(threads: int | None = None, friendly: bool = True) -> dict:
    """The set-up every notebook runs first: (on Colab) install the course, set torch's threads, say what runs.

    Prints one line of versions and one line with the profile, the thread count and the device; returns the same as a
    dict. ``friendly`` turns the errors a student can act on into one clear message (see :func:`friendly_errors`).
    """
    if in_colab() and _installed("s2v-lib") is None:
        install_course(REPO_ROOT)
    from .config import default_device, profile, setup_torch

    info = {**versions(), "profile": profile(), "threads": setup_torch(threads), "device": default_device()}
    print(" · ".join(f"{k} {info[k]}" for k in ("s2v_lib", "torch", "torchaudio", "diffusers", "numpy", "python")))
    where = "Colab" if in_colab() else "local"
    print(f"profile {info['profile']} · {info['threads']} torch thread(s) · device {info['device']} · {where}")
    if info["profile"] == "full":
        print("full profile: the paper's models (several GB) are downloaded from the Hugging Face hub when first loaded"
              + ("" if info["device"] == "cuda" else "; there is no GPU here, so expect them to be very slow"))
    if friendly:
        friendly_errors()
    _inline_figures()
    return info


def _inline_figures() -> None:
    """In a Jupyter kernel, draw figures into the notebook even when MPLBACKEND (e.g. ``Agg`` in CI) says otherwise."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        shell.run_line_magic("matplotlib", "inline")


# ----------------------------------------------------------------------------------------------------------------
# clear messages instead of stack traces


class MissingStep(FileNotFoundError):
    """Something a notebook needs does not exist yet; the message says which step makes it."""


def resolve(path: str | Path) -> Path:
    """A path relative to the repository root (notebooks run with their own folder as working directory)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def require(what: str | Path, how: str) -> Path:
    """The path of something a notebook needs, or :class:`MissingStep` saying how to make it.

    ``how`` is what to run, e.g. ``"run notebook 03 (03_alignment_training.ipynb) first, or `s2v demo`"``.
    """
    path = resolve(what)
    if path.exists():
        return path
    raise MissingStep(f"this notebook needs {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}, "
                      f"which does not exist yet: {how}.")  # fmt: skip


def friendly_exceptions() -> tuple[type[BaseException], ...]:
    """The errors that say what to do: shown as their message, not as a stack trace."""
    from .audio import AudioError
    from .registry import ModelError
    from .video import VideoError

    return (ModelError, MissingStep, AudioError, VideoError)


def explain(err: BaseException) -> str:
    """The one message shown for a friendly error."""
    return f"{type(err).__name__}: {err}"


def _friendly_traceback(shell, etype, value, tb, tb_offset=None) -> None:
    """IPython custom exception handler: show the message as the cell's error (IPython ignores what a handler returns
    when the error comes from running a cell, so the handler displays it itself)."""
    stb = [
        f"\x1b[1;31m{explain(value)}\x1b[0m",
        "(the cell stopped here; the message above says what to run or set. S2V_TRACEBACKS=1 shows full tracebacks)",
    ]
    shell._showtraceback(etype, value, stb)


def friendly_errors(shell=None) -> bool:
    """In IPython/Jupyter, show :func:`friendly_exceptions` as one message. Returns whether it was installed.

    The cell still fails (so "Run all" stops there and notebook tests report it); only the display changes.
    Set ``S2V_TRACEBACKS=1`` to keep IPython's full tracebacks.
    """
    if os.environ.get("S2V_TRACEBACKS", "") not in ("", "0"):
        return False
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc(friendly_exceptions(), _friendly_traceback)
    # trio (imported by some HTTP stacks) would warn that it cannot install its own handler next to ours
    warnings.filterwarnings("ignore", message="IPython detected, but you already have a custom exception handler")
    return True


# ----------------------------------------------------------------------------------------------------------------
# artefacts shared between notebooks


def runs_dir(*parts: str) -> Path:
    """``runs/<parts>`` at the repository root (created), where notebooks keep what later notebooks reuse."""
    path = REPO_ROOT.joinpath("runs", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def quick_audio_encoder(n_train: int = 1200, epochs: int = 5, seed: int = 0):
    """An aligned audio encoder for a first sound-to-picture: ``s2v demo``'s (``runs/demo/audio_encoder.safetensors``)
    when it exists, else a quick one (``n_train`` clips, ``epochs`` epochs, the paper's loss, middle frames: about a
    minute on a laptop CPU), trained once and kept in ``runs/course/``. Returns ``(encoder, history or None)``."""
    from .audio_encoder import load_audio_encoder, save_audio_encoder

    for demo in (REPO_ROOT / DEMO_ENCODER, Path.cwd() / DEMO_ENCODER):
        if demo.exists():
            print(f"using the audio encoder trained by `s2v demo`: {demo}")
            return load_audio_encoder(demo), None
    quick = runs_dir("course") / f"quick-audio-encoder-n{n_train}-e{epochs}-s{seed}.safetensors"
    if quick.exists():
        print(f"using the quick audio encoder trained by an earlier run: {quick.relative_to(REPO_ROOT)}")
        return load_audio_encoder(quick), None
    import time

    from .experiment import prepare_experiment, train_variant

    t0 = time.time()
    exp = prepare_experiment(n_train=n_train, seed=seed)
    v = train_variant(exp, "infonce_l2", "middle", epochs=epochs, desc="quick audio encoder")
    save_audio_encoder(v.model, quick, {"loss": "infonce_l2", "pairing": "middle", "n_train": n_train, "epochs": epochs})
    print(f"trained a quick audio encoder on {n_train} clips for {epochs} epochs in {time.time() - t0:.0f} s "
          f"(kept in {quick.relative_to(REPO_ROOT)}; `s2v demo` trains a better one, used here once it exists)")  # fmt: skip
    return v.model, v.history


# ----------------------------------------------------------------------------------------------------------------
# notebook files: student copies, the book's copies (maintainers; needs nbformat)


def notebook_files(folder: str | Path = NOTEBOOKS_DIR) -> list[Path]:
    """The course's notebooks in order (``NN_name.ipynb``)."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def is_solution(cell) -> bool:
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def student_copy(nb):
    """The notebook without its ``solution`` cells (a new notebook; the original is unchanged)."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if not is_solution(c)]
    return out


def book_copy(nb):
    """The notebook for the book: solution cells folded behind a toggle (tag ``hide-input``)."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if is_solution(cell):
            tags = cell.metadata.setdefault("tags", [])
            tags.extend(t for t in BOOK_SOLUTION_TAGS if t not in tags)
    return out


JUPYTEXT_METADATA = {  # pairing and filters, kept in each notebook so that plain `jupytext --sync` agrees
    "cell_metadata_filter": "tags,-all",
    "formats": "ipynb,py:percent",
    "notebook_metadata_filter": "kernelspec,jupytext,-jupytext.text_representation",
}
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def strip_notebook(nb):
    """What is committed: no outputs, no execution counts, no cell metadata but tags, deterministic cell ids, and
    notebook metadata reduced to the kernel (``python3``) and the jupytext pairing."""
    import hashlib

    out = copy.deepcopy(nb)
    out.metadata = {"jupytext": dict(JUPYTEXT_METADATA), "kernelspec": dict(KERNELSPEC)}
    seen: dict[str, int] = {}
    for cell in out.cells:
        tags = cell.get("metadata", {}).get("tags")
        cell.metadata = {"tags": list(tags)} if tags else {}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.pop("attachments", None)
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        cell["id"] = digest if seen[digest] == 1 else f"{digest}-{seen[digest] - 1}"
    out.nbformat, out.nbformat_minor = 4, 5
    return out


def cell_contents(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    """(type, source, tags) of every cell: what a notebook and its paired .py must agree on."""
    return [(c.cell_type, c.source.strip("\n"), tuple(c.get("metadata", {}).get("tags", ()))) for c in nb.cells]


# ----------------------------------------------------------------------------------------------------------------
# executed notebooks (the book reuses those that the notebook tests executed)

EXECUTED_DIR = REPO_ROOT / "book" / "_build" / "executed"


def execution_key(nb) -> str:
    """What an executed notebook's outputs depend on: its cells, the library's code and the shipped models' manifest.
    An executed copy whose key differs is stale."""
    import hashlib
    import json

    h = hashlib.sha256(json.dumps(cell_contents(nb)).encode())
    for path in sorted((REPO_ROOT / "s2v_lib").glob("*.py")) + [REPO_ROOT / "data" / "models" / "manifest.json"]:
        if path.exists():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def executed_copy(path: str | Path, folder: str | Path = EXECUTED_DIR, stale_ok: bool = False):
    """The executed copy of a notebook kept in ``folder`` if it is up to date (same :func:`execution_key`), else None.
    ``stale_ok`` accepts an out-of-date copy whose cells still match the notebook's (only the library changed)."""
    import nbformat

    path = Path(path)
    kept = Path(folder) / path.name
    if not kept.exists():
        return None
    executed = nbformat.read(kept, as_version=4)
    source = nbformat.read(path, as_version=4)
    if executed.metadata.get("s2v", {}).get("key") == execution_key(source):
        return executed
    return executed if stale_ok and cell_contents(executed) == cell_contents(source) else None


def keep_executed(nb, source: str | Path, seconds: float, by: str, folder: str | Path = EXECUTED_DIR) -> Path:
    """Store an executed notebook (outputs included) for the book, stamped with its key and how long it took."""
    import nbformat

    source = Path(source)
    out = copy.deepcopy(nb)
    out.metadata["s2v"] = {"key": execution_key(nbformat.read(source, as_version=4)), "seconds": round(seconds, 1),
                           "executed_by": by}  # fmt: skip
    nbformat.validate(out)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{source.name}.tmp"
    nbformat.write(out, tmp)
    os.replace(tmp, folder / source.name)
    return folder / source.name
