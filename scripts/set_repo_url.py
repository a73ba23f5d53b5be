"""Set the course's public address everywhere it appears, with one command.

    python scripts/set_repo_url.py https://github.com/me/sound2vision-course
    python scripts/set_repo_url.py me/sound2vision-course          # the same (GitHub is assumed)
    python scripts/set_repo_url.py --check                         # only report files that disagree (exit 1)

The address is stored in one place, ``REPO_URL`` in ``s2v_lib/course.py``; this script reads the current value there
and replaces it, as a whole URL, in

* ``s2v_lib/course.py`` (the constant itself: the notebook tests and the book's tests read it),
* the first code cell of every notebook, both files of each pair (``notebooks/NN_name.ipynb`` and ``.py``): the
  Colab set-up clones the course from there,
* ``book/_config.yml`` (``repository: url``: the book's Colab and repository buttons).

Running it again with another address works the same way (it starts from whatever ``REPO_URL`` holds), and running
it twice with the same address changes nothing. A file that does not hold the current address is reported (it was
edited by hand) and the script exits with status 1 after updating the others. The address must be a GitHub
repository (``https://github.com/OWNER/NAME``): Colab opens notebooks from GitHub.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CONSTANT = re.compile(r'^(REPO_URL = ")([^"]+)(")', re.M)
GITHUB = re.compile(r"^(?:https?://)?(?:www\.)?(?:github\.com/)?([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?$")


class UrlError(ValueError):
    """An address that is not a GitHub repository, or a repository whose constant cannot be read."""


def normalise(url: str) -> str:
    """``https://github.com/OWNER/NAME`` from any of the usual spellings (``OWNER/NAME``, ``.git``, a trailing /)."""
    m = GITHUB.match(url.strip())
    if not m or m.group(1).lower() == "github.com":
        raise UrlError(f"{url!r} is not a GitHub repository address: give https://github.com/OWNER/NAME or OWNER/NAME")
    return f"https://github.com/{m.group(1)}/{m.group(2)}"


def current_url(root: Path) -> str:
    path = root / "s2v_lib" / "course.py"
    m = CONSTANT.search(path.read_text()) if path.exists() else None
    if not m:
        raise UrlError(f'{path}: no line `REPO_URL = "..."` to read the current address from')
    return m.group(2)


def notebook_pairs(root: Path) -> list[tuple[Path, Path]]:
    folder = root / "notebooks"
    stems = sorted({p.stem for p in folder.glob("[0-9][0-9]_*") if p.suffix in (".py", ".ipynb")})
    return [(folder / f"{s}.ipynb", folder / f"{s}.py") for s in stems]


def _first_code_cell_span(py_text: str) -> tuple[int, int] | None:
    """(start, end) character span of the first code cell of a jupytext percent file."""
    markers = [m for m in re.finditer(r"^# %%.*$", py_text, re.M)]
    for k, m in enumerate(markers):
        if "[markdown]" not in m.group(0) and "[md]" not in m.group(0):
            end = markers[k + 1].start() if k + 1 < len(markers) else len(py_text)
            return m.start(), end
    return None


def _first_cell_text(path: Path, text: str) -> str:
    """The part of a file that must hold the address: a notebook's first code cell, or the whole file."""
    if path.suffix == ".ipynb":
        import nbformat

        nb = nbformat.reads(text, as_version=4)
        return next((c.source for c in nb.cells if c.cell_type == "code"), "")
    if path.parent.name == "notebooks" and path.suffix == ".py":
        span = _first_code_cell_span(text)
        return text[span[0] : span[1]] if span else ""
    return text


def _rewrite(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in the part of ``path`` that holds the address (see :func:`_first_cell_text`)."""
    text = path.read_text()
    if path.suffix == ".ipynb":
        import nbformat

        from s2v_lib.course import strip_notebook

        nb = nbformat.reads(text, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        first.source = first.source.replace(old, new)
        path.write_text(nbformat.writes(strip_notebook(nb)) + "\n")  # as scripts/sync_notebooks.py writes it
    elif path.parent.name == "notebooks" and path.suffix == ".py":
        a, b = _first_code_cell_span(text)
        path.write_text(text[:a] + text[a:b].replace(old, new) + text[b:])
    else:
        path.write_text(text.replace(old, new))


def targets(root: Path) -> list[Path]:
    """Every file that holds the address: the constant, the book's configuration, both files of every notebook."""
    out = [root / "s2v_lib" / "course.py", root / "book" / "_config.yml"]
    for ipynb, py in notebook_pairs(root):
        out += [p for p in (ipynb, py) if p.exists()]
    return out


def set_repo_url(url: str, root: str | Path = REPO, log=print) -> tuple[list[Path], list[Path]]:
    """Replace the current address by ``url`` everywhere; returns (files changed, files that lacked the address)."""
    root = Path(root)
    new, old = normalise(url), current_url(root)
    files = targets(root)
    missing = [p for p in files if old not in _first_cell_text(p, p.read_text())]
    changed = [p for p in files if p not in missing] if old != new else []
    for path in changed:  # the constant last: if anything fails before, the next run starts from the same address
        if path.name != "course.py":
            _rewrite(path, old, new)
    for path in changed:
        if path.name == "course.py":
            _rewrite(path, old, new)
    for path in changed:
        log(f"  {path.relative_to(root)}")
    log(f"{len(changed)} file(s) now point to {new}" + (f" (was {old})" if old != new else " (already)"))
    for path in missing:
        log(f"warning: {path.relative_to(root)} does not hold {old} where expected; edit it by hand")
    return changed, missing


def check(root: str | Path = REPO, log=print) -> list[Path]:
    """Files that do not hold the address ``REPO_URL`` holds (empty: they all agree)."""
    root = Path(root)
    url = current_url(root)
    bad = [p for p in targets(root) if url not in _first_cell_text(p, p.read_text())]
    for path in bad:
        log(f"{path.relative_to(root)} does not hold {url}")
    if not bad:
        log(f"all {len(targets(root))} files hold {url}")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", nargs="?", help="https://github.com/OWNER/NAME (or OWNER/NAME)")
    ap.add_argument("--check", action="store_true", help="only report files that disagree with REPO_URL")
    ap.add_argument("--root", default=str(REPO), help="the repository to edit (default: this one)")
    args = ap.parse_args(argv)
    try:
        if args.check or args.url is None:
            if args.url is None and not args.check:
                ap.error("give the new address (or --check)")
            return 1 if check(args.root) else 0
        _, missing = set_repo_url(args.url, args.root)
    except (UrlError, OSError) as err:
        print(f"set_repo_url: error: {err}", file=sys.stderr)
        return 2
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
