"""Keep every notebook's two files in step: ``notebooks/NN_name.ipynb`` <-> ``notebooks/NN_name.py`` (jupytext percent).

    python scripts/sync_notebooks.py            # after editing either file: rewrite the other one, strip the .ipynb
    python scripts/sync_notebooks.py --check    # only report pairs that are out of step or not stripped (exit 1)
    python scripts/sync_notebooks.py --from py  # take the .py files as the truth whatever their timestamps
    python scripts/sync_notebooks.py notebooks/00_overview.py   # only these notebooks (either file of a pair)

The newer file of a pair is the truth (as ``jupytext --sync`` does). The .ipynb is written stripped: no outputs,
no execution counts, only ``tags`` as cell metadata, deterministic cell ids, kernel ``python3``
(``s2v_lib.course.strip_notebook``). ``tests/test_notebooks.py`` checks the result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from s2v_lib.course import NOTEBOOKS_DIR, cell_contents, strip_notebook  # noqa: E402


def pairs(folder: Path) -> list[tuple[Path, Path]]:
    stems = sorted({p.stem for p in folder.glob("[0-9][0-9]_*") if p.suffix in (".py", ".ipynb")})
    return [(folder / f"{s}.ipynb", folder / f"{s}.py") for s in stems]


def render(nb) -> tuple[str, str]:
    """(.ipynb text, .py text) of a notebook, stripped."""
    clean = strip_notebook(nb)
    return nbformat.writes(clean) + "\n", jupytext.writes(clean, fmt="py:percent")


def sync(ipynb: Path, py: Path, prefer: str | None = None, check: bool = False) -> list[str]:
    """Bring one pair in step; returns what was (or, with ``check``, would be) rewritten."""
    if prefer is None:
        if not ipynb.exists() or not py.exists():
            prefer = "py" if py.exists() else "ipynb"
        else:
            prefer = "py" if py.stat().st_mtime >= ipynb.stat().st_mtime else "ipynb"
    source = py if prefer == "py" and py.exists() else ipynb
    nb = jupytext.read(source)
    ipynb_text, py_text = render(nb)
    changed = []
    for path, text in ((ipynb, ipynb_text), (py, py_text)):
        old = path.read_text() if path.exists() else None
        if check and old is not None and path.suffix == ".py" and ipynb.exists():
            # the .py may differ in header details; what matters is that both hold the same cells
            if cell_contents(jupytext.read(path)) == cell_contents(nbformat.read(ipynb, as_version=4)):
                continue
        if old != text:
            changed.append(str(path.relative_to(path.parent.parent)))
            if not check:
                path.write_text(text)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report, do not write; exit 1 if anything is out of step")
    ap.add_argument("--from", dest="prefer", choices=["py", "ipynb"], default=None, help="which file is the truth")
    ap.add_argument("--folder", type=Path, default=NOTEBOOKS_DIR)
    ap.add_argument("only", nargs="*", type=Path, help="notebooks to sync (default: every NN_name notebook)")
    args = ap.parse_args(argv)
    todo = pairs(args.folder)
    if args.only:
        stems = {p.stem for p in args.only}
        todo = [(ipynb, py) for ipynb, py in todo if ipynb.stem in stems]
    changed = [c for ipynb, py in todo for c in sync(ipynb, py, args.prefer, args.check)]
    verb = "out of step or not stripped" if args.check else "rewritten"
    print(f"{len(changed)} file(s) {verb}" + "".join(f"\n  {c}" for c in changed))
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
