"""The notebooks as files: paired with their .py, in step, stripped, set up the same way, shaped like a course
chapter, and with solutions that the student copy removes. (Executing them is nbval's part of `python -m pytest`.)"""

import importlib.util
import re
import statistics

import jupytext
import nbformat
import pytest

from s2v_lib import course

NOTEBOOKS = course.notebook_files()
PY_FILES = sorted(course.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))
MAX_CELL_LINES = 15  # STYLE.md: a longer cell belongs in s2v_lib or should be split
MAX_MEDIAN_LINES = 6


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, course.REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path):
    return nbformat.read(path, as_version=4)


def _code_lines(cell) -> int:
    return len([line for line in cell.source.splitlines() if line.strip()])


def test_the_course_has_its_first_notebooks():
    names = [p.stem for p in NOTEBOOKS]
    assert names[:2] == ["00_overview", "01_audio_visual_data"], names


def test_every_notebook_has_its_py_twin_and_back():
    assert {p.stem for p in NOTEBOOKS} == {p.stem for p in PY_FILES}, (
        "every notebooks/NN_name.ipynb needs notebooks/NN_name.py and back: run `python scripts/sync_notebooks.py`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_pair_in_step(path):
    in_py = course.cell_contents(jupytext.read(path.with_suffix(".py")))
    in_ipynb = course.cell_contents(_read(path))
    assert in_py == in_ipynb, f"{path.name} and its .py differ: run `python scripts/sync_notebooks.py` after editing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_stripped(path):
    nb = _read(path)
    fix = "run `python scripts/sync_notebooks.py` (it strips outputs and metadata)"
    assert nb.metadata.kernelspec.name == "python3", fix
    assert set(nb.metadata) <= {"kernelspec", "jupytext", "language_info"}, f"{path.name}: {set(nb.metadata)}; {fix}"
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", f"{path.name} is not paired; {fix}"
    for cell in nb.cells:
        assert set(cell.metadata) <= {"tags"}, f"{path.name}: cell metadata {dict(cell.metadata)}; {fix}"
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} holds outputs; {fix}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_installs_on_colab_and_sets_up(path):
    first = next(c for c in _read(path).cells if c.cell_type == "code").source
    assert re.search(r"^\S.*setup_notebook\(\)\s*$", first, re.M), f"{path.name}: the first code cell must call setup_notebook()"
    assert '"google.colab" in sys.modules' in first and "install_course(" in first, (
        f"{path.name}: the first code cell must fetch and install the course on Colab (see s2v_lib/course.py)"
    )
    assert course.REPO_URL in first, f"{path.name}: the first cell must clone {course.REPO_URL}"
    assert first.index("install_course(") < first.index("setup_notebook()")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_reads_like_a_chapter(path):
    cells = _read(path).cells
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(f"# {path.stem[:2]} "), "title first"
    assert "What you will learn" in markdown, f"{path.name}: goals at the top ('What you will learn')"
    assert re.search(r"\$\$.+?\$\$", markdown, re.S), f"{path.name}: the stage's equations (display math)"
    assert "## Summary" in markdown and "## Exercises" in markdown, f"{path.name}: a summary and exercises"
    exercises = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Exercises" in c.source)
    solutions = [i for i, c in enumerate(cells) if course.is_solution(c)]
    assert solutions, f"{path.name}: exercise solutions in code cells tagged 'solution'"
    assert all(cells[i].cell_type == "code" for i in solutions) and min(solutions) > exercises


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_are_short(path):
    lines = [_code_lines(c) for c in _read(path).cells if c.cell_type == "code"]
    assert max(lines) <= MAX_CELL_LINES, f"{path.name}: a code cell of {max(lines)} lines (split it, or move code to s2v_lib)"
    assert statistics.median(lines) <= MAX_MEDIAN_LINES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_and_sounds(path):
    code = "\n".join(c.source for c in _read(path).cells if c.cell_type == "code")
    assert "viz." in code and "audio_player(" in code, f"{path.name}: figures (s2v_lib.viz) and audio players"


def test_student_copy_removes_solutions_and_keeps_the_rest(tmp_path):
    written = _load_script("student_copy").write_student_copies(tmp_path)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        original, student = _read(path), _read(tmp_path / path.name)
        kept = [c for c in original.cells if not course.is_solution(c)]
        assert not any(course.is_solution(c) for c in student.cells)
        assert [c.source for c in student.cells] == [c.source for c in kept]
        solutions = {c.source for c in original.cells if course.is_solution(c)}
        assert not solutions & {c.source for c in student.cells}
        assert course.cell_contents(jupytext.read(tmp_path / f"{path.stem}.py")) == course.cell_contents(student)


def test_book_copy_folds_solutions_only():
    nb = _read(NOTEBOOKS[0])
    book = course.book_copy(nb)
    for before, after in zip(nb.cells, book.cells):
        tags = after.metadata.get("tags", [])
        assert ("hide-input" in tags) == course.is_solution(before)
        assert after.source == before.source
    assert "hide-input" not in str(nb.cells[-1].metadata)  # the original is unchanged


def test_sync_script_finds_nothing_to_do():
    sync = _load_script("sync_notebooks")
    stale = [c for ipynb, py in sync.pairs(course.NOTEBOOKS_DIR) for c in sync.sync(ipynb, py, check=True)]
    assert not stale, f"out of step or not stripped: {stale}; run `python scripts/sync_notebooks.py`"


def test_sync_script_pairs_and_strips(tmp_path):
    sync = _load_script("sync_notebooks")
    (tmp_path / "07_new.py").write_text('# %% [markdown]\n# # 07 New\n\n# %%\nx = 1\n\n# %% tags=["solution"]\nx\n')
    assert sync.main(["--folder", str(tmp_path)]) == 0
    nb = _read(tmp_path / "07_new.ipynb")
    assert course.cell_contents(nb) == [("markdown", "# 07 New", ()), ("code", "x = 1", ()), ("code", "x", ("solution",))]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="noise")]
    nbformat.write(nb, tmp_path / "07_new.ipynb")
    assert sync.main(["--folder", str(tmp_path), "--check"]) == 1  # outputs are reported ...
    assert sync.main(["--folder", str(tmp_path), "--from", "ipynb"]) == 0  # ... and stripped
    assert _read(tmp_path / "07_new.ipynb").cells[1].outputs == []
    ids = [c.id for c in _read(tmp_path / "07_new.ipynb").cells]
    assert sync.main(["--folder", str(tmp_path), "--from", "py"]) == 0
    assert [c.id for c in _read(tmp_path / "07_new.ipynb").cells] == ids  # deterministic: no churn between syncs
