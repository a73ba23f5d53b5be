"""scripts/set_repo_url.py: one command sets the course's address in the library constant, the book's configuration
and both files of every notebook, consistently and repeatably (run here on a temporary copy, never on the repository)."""

import importlib.util
import shutil

import jupytext
import nbformat
import pytest

from s2v_lib import course


def _script(name):
    spec = importlib.util.spec_from_file_location(name, course.REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def copy(tmp_path):
    """The files the script edits, copied into a repository-shaped temporary folder."""
    for rel in ("s2v_lib/course.py", "book/_config.yml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(course.REPO_ROOT / rel, tmp_path / rel)
    (tmp_path / "notebooks").mkdir()
    for path in course.NOTEBOOKS_DIR.glob("[0-9][0-9]_*"):
        if path.suffix in (".py", ".ipynb"):
            shutil.copy2(path, tmp_path / "notebooks" / path.name)
    return tmp_path


def _first_code(path):
    nb = jupytext.read(path) if path.suffix == ".py" else nbformat.read(path, as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code")


def _in_step(root):
    """Notebooks whose two files agree and whose .ipynb is stripped (a notebook being edited may not be, yet)."""
    sync = _script("sync_notebooks")
    return {ipynb.name for ipynb, py in sync.pairs(root / "notebooks") if not sync.sync(ipynb, py, check=True)}


def _everything_says(root, url, old=None, in_step=()):
    script = _script("set_repo_url")
    assert script.current_url(root) == url
    assert script.check(root, log=lambda *_: None) == []
    assert f"url: {url}" in (root / "book" / "_config.yml").read_text()
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    for ipynb in notebooks:
        py = ipynb.with_suffix(".py")
        for path in (ipynb, py):
            first = _first_code(path)
            assert f"git clone -q --depth 1 {url} s2v-course" in first, path.name
            assert old is None or old not in first
    # a pair in step stays in step, its .ipynb stripped, as scripts/sync_notebooks.py would write it
    assert _in_step(root) >= set(in_step)


def test_sets_every_copy_and_can_run_again(copy):
    script = _script("set_repo_url")
    before, in_step = script.current_url(copy), _in_step(copy)
    assert in_step, "no notebook pair is in step to begin with"
    assert script.main(["https://github.com/course-org/sound2vision", "--root", str(copy)]) == 0
    _everything_says(copy, "https://github.com/course-org/sound2vision", old=before, in_step=in_step)
    # another address later, in the short form
    assert script.main(["someone/s2v.git", "--root", str(copy)]) == 0
    _everything_says(
        copy, "https://github.com/someone/s2v", old="https://github.com/course-org/sound2vision", in_step=in_step
    )
    # the same address again: nothing to change
    texts = {p: p.read_text() for p in script.targets(copy)}
    changed, missing = script.set_repo_url("https://github.com/someone/s2v/", copy, log=lambda *_: None)
    assert changed == [] and missing == []
    assert {p: p.read_text() for p in script.targets(copy)} == texts


def test_the_repository_agrees_with_its_constant():
    assert _script("set_repo_url").check(course.REPO_ROOT, log=lambda *_: None) == []


def test_bad_address_and_hand_edits_are_reported(copy, capsys):
    script = _script("set_repo_url")
    config = (copy / "book" / "_config.yml").read_text()
    assert script.main(["not a url", "--root", str(copy)]) == 2
    assert "not a GitHub repository address" in capsys.readouterr().err
    assert script.main(["https://gitlab.com/a/b", "--root", str(copy)]) == 2
    assert (copy / "book" / "_config.yml").read_text() == config  # nothing was touched
    # a notebook whose first cell was edited by hand: reported, the others still updated
    py = next((copy / "notebooks").glob("00_*.py"))
    py.write_text(py.read_text().replace(script.current_url(copy), "https://example.org/elsewhere"))
    assert script.main(["me/course", "--root", str(copy)]) == 1
    out = capsys.readouterr().out
    assert py.name in out and "edit it by hand" in out
    assert script.current_url(copy) == "https://github.com/me/course"
    assert script.check(copy, log=lambda *_: None) == [py]
