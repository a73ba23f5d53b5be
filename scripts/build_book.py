"""Build the course's book (Jupyter Book 1.x, offline) from the notebooks, with their executed outputs.

    python scripts/build_book.py                 # -> book/_build/html/index.html
    python scripts/build_book.py --no-execute    # fail instead of executing notebooks with no up-to-date executed copy
    python scripts/build_book.py --force-execute # execute every notebook again
    python scripts/build_book.py --only 00 01 --reuse-stale   # quick look while writing: some chapters, old outputs

1. **Executed notebooks.** ``python -m pytest`` executes every notebook (nbval) and keeps the executed copies in
   ``book/_build/executed/``, stamped with ``s2v_lib.course.execution_key`` (the notebook's cells, the library's code,
   the shipped models' manifest). A copy whose key matches is reused; any other notebook is executed here (nbclient,
   toy profile, the same kernel) and kept for the next build.
2. **Staging** in ``book/_build/src/``: ``book/*.md`` and ``book/_config.yml``, a table of contents listing every
   ``notebooks/NN_name.ipynb`` in order and then the reference pages (paper guide, notation, glossary), the
   executed notebooks at ``notebooks/NN_name.ipynb`` (the repository's own
   layout, so each page's Colab button opens the right notebook) with their ``solution`` cells folded behind a
   "show" toggle (``s2v_lib.course.book_copy``), and MathJax 3 under ``vendor/mathjax`` (formulas render offline).
3. **Jupyter Book** builds the staged folder into ``book/_build/html``.

MathJax comes from the npm package ``mathjax@3`` (``npm pack``, cached in ``data/cache``; npm's own cache makes
later fetches work offline). To build on a machine without npm or registry access, put the package tarball at the
path in ``S2V_MATHJAX_TGZ``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from s2v_lib import course  # noqa: E402

BOOK = REPO / "book"
BUILD = BOOK / "_build"
STAGE = BUILD / "src"
HTML = BUILD / "html"
MATHJAX = "mathjax@3"
MATHJAX_PARTS = ("es5/tex-mml-chtml.js", "es5/input/", "es5/output/chtml/", "es5/ui/", "es5/a11y/", "es5/adaptors/")
CELL_TIMEOUT_S = 600


class BookError(RuntimeError):
    """The book cannot be built; the message says why and what to do."""


# ----------------------------------------------------------------------------------------------------------------
# 1. executed notebooks


def execute_notebook(path: Path) -> tuple[object, float]:
    """Run a notebook top to bottom in a fresh kernel (toy profile, working directory = its folder)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_before = dict(os.environ)
    os.environ.setdefault("S2V_QUIET", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("S2V_PROFILE", "toy")
    os.environ["S2V_THREADS"] = os.environ.get("S2V_NOTEBOOK_THREADS", str(min(os.cpu_count() or 1, 8)))
    t0 = time.time()
    try:
        NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    except Exception as err:
        raise BookError(f"{path.name} failed while executing for the book: {str(err).splitlines()[0] if str(err) else err!r}. "
                        f"Run `python -m pytest {path.relative_to(REPO)}` to see the failing cell.") from None  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    return nb, time.time() - t0


def executed_notebooks(execute: bool = True, force: bool = False, log=print, only: list[str] | None = None,
                       stale_ok: bool = False) -> dict[Path, object]:  # fmt: skip
    """{notebook: executed notebook} for every course notebook (or those whose number is in ``only``), reusing
    up-to-date executed copies (``stale_ok``: also copies made with an older library, if the cells are the same)."""
    notebooks = [p for p in course.notebook_files() if not only or p.name[:2] in only]
    if not notebooks:
        raise BookError(f"no notebooks found in {course.NOTEBOOKS_DIR}" + (f" numbered {', '.join(only)}" if only else ""))
    out = {}
    for path in notebooks:
        nb = None if force else course.executed_copy(path, stale_ok=stale_ok)
        if nb is not None:
            log(f"  {path.name}: reusing the executed copy ({nb.metadata['s2v'].get('seconds', '?')} s, "
                f"by {nb.metadata['s2v'].get('executed_by', '?')})")  # fmt: skip
        elif not execute:
            raise BookError(f"{path.name} has no up-to-date executed copy in {course.EXECUTED_DIR.relative_to(REPO)}; "
                            "run `python -m pytest notebooks` first, or build without --no-execute")  # fmt: skip
        else:
            log(f"  {path.name}: executing ...")
            nb, seconds = execute_notebook(path)
            course.keep_executed(nb, path, seconds, by="build_book")
            nb = course.executed_copy(path)
            log(f"  {path.name}: executed in {seconds:.0f} s")
        out[path] = nb
    return out


# ----------------------------------------------------------------------------------------------------------------
# 2. staging


def mathjax_tarball() -> Path:
    """The npm package mathjax@3 as a tarball: S2V_MATHJAX_TGZ, the cached one, or fetched with `npm pack`."""
    given = os.environ.get("S2V_MATHJAX_TGZ")
    if given:
        if not Path(given).exists():
            raise BookError(f"S2V_MATHJAX_TGZ={given}: no such file")
        return Path(given)
    cache = course.resolve("data/cache") if not os.environ.get("S2V_DATA") else Path(os.environ["S2V_DATA"]) / "cache"
    found = sorted(cache.glob("mathjax-3.*.tgz"))
    if found:
        return found[-1]
    npm = shutil.which("npm")
    if npm is None:
        raise BookError("MathJax is vendored from the npm package mathjax@3, and `npm` is not installed: install Node.js "
                        "(e.g. `apt-get install -y npm`) or download the package tarball and set S2V_MATHJAX_TGZ")  # fmt: skip
    cache.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([npm, "pack", MATHJAX, "--prefer-offline", "--silent", "--pack-destination", str(cache)],
                         capture_output=True, text=True)  # fmt: skip
    found = sorted(cache.glob("mathjax-3.*.tgz"))
    if res.returncode != 0 or not found:
        raise BookError(f"`npm pack {MATHJAX}` failed ({(res.stderr or res.stdout).strip()[:300]}); without network "
                        "access download the tarball elsewhere and set S2V_MATHJAX_TGZ")  # fmt: skip
    return found[-1]


def vendor_mathjax(dest: Path) -> Path:
    """Unpack the parts of MathJax the pages use into ``dest/mathjax/es5``; returns the main script's path."""
    with tarfile.open(mathjax_tarball()) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith("package/")
                   and any(m.name[len("package/"):].startswith(p) for p in MATHJAX_PARTS)]  # fmt: skip
        for m in members:
            m.name = m.name[len("package/"):]
        try:
            tar.extractall(dest / "mathjax", members=members, filter="data")
        except TypeError:  # Python without tarfile extraction filters (< 3.10.12 / 3.11.4): the members are plain files
            tar.extractall(dest / "mathjax", members=members)
    main = dest / "mathjax" / MATHJAX_PARTS[0]
    if not main.exists():
        raise BookError(f"the MathJax tarball has no {MATHJAX_PARTS[0]}")
    return main


REFERENCE_PAGES = ("paper_guide", "notation", "glossary")  # book/<name>.md, listed after the chapters


def toc(notebooks: list[Path], reference: tuple[str, ...] = REFERENCE_PAGES) -> str:
    chapters = "".join(f"      - file: notebooks/{p.stem}\n" for p in notebooks)
    pages = "".join(f"      - file: {name}\n" for name in reference if (BOOK / f"{name}.md").exists())
    parts = f"  - caption: Chapters\n    chapters:\n{chapters}" + (f"  - caption: Reference\n    chapters:\n{pages}" if pages else "")
    return ("# Written by scripts/build_book.py: every notebooks/NN_name.ipynb in order, then the reference pages.\n"
            f"format: jb-book\nroot: intro\nparts:\n{parts}")  # fmt: skip


def stage(executed: dict[Path, object], dest: Path = STAGE) -> Path:
    import nbformat

    if dest.exists():
        shutil.rmtree(dest)
    (dest / "notebooks").mkdir(parents=True)
    for src in list(BOOK.glob("*.md")) + [BOOK / "_config.yml"]:
        shutil.copy2(src, dest / src.name)
    (dest / "_toc.yml").write_text(toc(list(executed)))
    for path, nb in executed.items():
        page = course.book_copy(nb)
        page.metadata.pop("s2v", None)
        nbformat.write(page, dest / "notebooks" / path.name)
    vendor_mathjax(dest / "vendor")
    return dest


# ----------------------------------------------------------------------------------------------------------------
# 3. Jupyter Book


def jupyter_book(src: Path = STAGE, quiet: bool = True) -> Path:
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(src),
           "--path-output", str(BOOK), "--all"]  # fmt: skip
    res = subprocess.run(cmd + (["-q"] if quiet else []), capture_output=quiet, text=True)
    index = HTML / "index.html"
    if res.returncode != 0 or not index.exists():
        detail = ((res.stderr or "") + (res.stdout or "")).strip()[-2000:] if quiet else ""
        raise BookError(f"jupyter-book failed (exit {res.returncode}):\n{detail}")
    return index


def build(execute: bool = True, force: bool = False, quiet: bool = True, log=print, only: list[str] | None = None,
          stale_ok: bool = False) -> Path:  # fmt: skip
    """Executed notebooks -> staged book -> HTML; returns book/_build/html/index.html."""
    t0 = time.time()
    log("executed notebooks:")
    executed = executed_notebooks(execute, force, log, only, stale_ok)
    log("staging the book in " + str(STAGE.relative_to(REPO)))
    stage(executed)
    log("building the HTML with Jupyter Book ...")
    index = jupyter_book(quiet=quiet)
    log(f"book built in {time.time() - t0:.0f} s: {index.relative_to(REPO)}")
    return index


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-execute", action="store_true", help="never execute notebooks: fail if one has no executed copy")
    ap.add_argument("--force-execute", action="store_true", help="execute every notebook again")
    ap.add_argument("--verbose", action="store_true", help="show Jupyter Book's own output")
    ap.add_argument("--only", nargs="+", metavar="NN", help="only these chapters (notebook numbers, e.g. 00 01)")
    ap.add_argument("--reuse-stale", action="store_true",
                    help="reuse executed copies made with an older library if the notebook's cells are unchanged")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        build(execute=not args.no_execute, force=args.force_execute, quiet=not args.verbose, only=args.only,
              stale_ok=args.reuse_stale)  # fmt: skip
    except BookError as err:
        print(f"build_book: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
