"""Write the students' copies of the notebooks: the same notebooks without the cells tagged ``solution``.

    python scripts/student_copy.py                       # -> runs/student/NN_name.ipynb (+ the paired .py)
    python scripts/student_copy.py --out handout/ notebooks/03_alignment_training.ipynb

Solutions are code cells tagged ``solution`` (``# %% tags=["solution"]`` in the .py file), placed after a notebook's
"Exercises". The copies keep everything else, stripped of outputs; in the book the solutions stay, folded
(``s2v_lib.course.book_copy``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from s2v_lib.course import REPO_ROOT, is_solution, notebook_files, strip_notebook, student_copy  # noqa: E402


def write_student_copies(out: Path, notebooks: list[Path] | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks or notebook_files():
        nb = nbformat.read(path, as_version=4)
        copy = strip_notebook(student_copy(nb))
        nbformat.write(copy, out / path.name)
        (out / path.with_suffix(".py").name).write_text(jupytext.writes(copy, fmt="py:percent"))
        removed = sum(is_solution(c) for c in nb.cells)
        print(f"{path.name}: {len(copy.cells)} cells, {removed} solution cell(s) removed")
        written.append(out / path.name)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "student", help="folder (default runs/student)")
    ap.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: all of notebooks/NN_*.ipynb)")
    args = ap.parse_args(argv)
    missing = [p for p in args.notebooks if not p.exists()]
    if missing:
        print(f"student_copy: error: no such notebook: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    write_student_copies(args.out, [p.with_suffix(".ipynb") for p in args.notebooks] or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
