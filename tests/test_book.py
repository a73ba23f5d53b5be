"""The book: built offline with one command from the executed notebooks, then opened in headless Chromium.

Each chapter page must show its title, at least one figure, typeset math (MathJax's output elements in the DOM),
its audio players, a Colab button for its notebook and folded solutions; no page may refer to a local file that is
not there, or load anything from the internet. ``python -m pytest`` runs this after the notebooks, whose executed
copies the build reuses (notebooks/conftest.py); run alone, it executes the notebooks first (minutes).
"""

import importlib.util
import re
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest

from s2v_lib import course

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REFERENCE_PAGES = ("paper_guide", "notation", "glossary")  # book/<name>.md, after the chapters (scripts/build_book.py)
BUILD_BUDGET_S = 300
RESOURCE_ATTRS = {("script", "src"), ("img", "src"), ("source", "src"), ("audio", "src"), ("link", "href"),
                  ("iframe", "src"), ("video", "src")}  # fmt: skip


def _load_build_script():
    spec = importlib.util.spec_from_file_location("build_book", course.REPO_ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def book():
    t0 = time.time()
    index = _load_build_script().build(log=print)
    return {"html": index.parent, "seconds": time.time() - t0}


class _Refs(HTMLParser):
    """Every (tag, attribute, value) that points somewhere, url(...) in styles, and the h1 texts."""

    def __init__(self):
        super().__init__()
        self.refs, self.h1, self._in_h1, self._in_style = [], [], False, False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append((tag, name, value))
        self._in_h1 = tag == "h1" or self._in_h1
        self._in_style = tag == "style"
        if tag == "h1":
            self.h1.append("")

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False
        self._in_style = False if tag == "style" else self._in_style

    def handle_data(self, data):
        if self._in_h1:
            self.h1[-1] += data
        if self._in_style:
            self.refs += [("style", "url", u.strip("'\"")) for u in re.findall(r"url\(([^)]+)\)", data)]


def _refs(html: str) -> _Refs:
    parser = _Refs()
    parser.feed(html)
    return parser


def _problems(page: Path, html: str) -> list[str]:
    """Local references that do not exist, and resources loaded from the internet."""
    out = []
    for tag, attr, value in _refs(html).refs:
        url = urlparse(value)
        if url.scheme in ("http", "https") or value.startswith("//"):
            if (tag, attr) in RESOURCE_ATTRS and not (tag == "link" and "canonical" in value) or tag == "style":
                out.append(f"{page.name}: <{tag} {attr}> loads {value} from the internet")
            continue
        if url.scheme in ("data", "mailto", "javascript") or value.startswith("#") or not url.path:
            continue
        target = Path(unquote(url.path)) if url.scheme == "file" else (page.parent / unquote(url.path))
        if not target.exists():
            out.append(f"{page.name}: <{tag} {attr}={value}> -> {target} does not exist")
    return out


def _dom(page: Path) -> str:
    """The page's DOM after its scripts ran (MathJax typesets within the virtual time budget)."""
    with tempfile.TemporaryDirectory() as profile:
        res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom",
                              page.as_uri()], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0 and "<html" in res.stdout, res.stderr[-2000:]
    return res.stdout


def _chapters():
    return course.notebook_files()


def test_book_builds_offline_in_budget(book):
    print(f"book built in {book['seconds']:.0f} s")
    assert (book["html"] / "index.html").exists()
    executed_all = all(course.executed_copy(p) is not None for p in _chapters())
    if executed_all:  # the build reused executed notebooks (otherwise its time is mostly their execution)
        assert book["seconds"] < BUILD_BUDGET_S


def test_every_page_refers_only_to_files_that_exist(book):
    pages = sorted(p for p in book["html"].rglob("*.html") if not {"_static", "_sources"} & set(p.parts))
    assert len(pages) >= len(_chapters()) + 1
    problems = [p for page in pages for p in _problems(page, page.read_text(errors="replace"))]
    assert not problems, "\n".join(problems[:20])


def test_mathjax_is_vendored(book):
    static = book["html"] / "_static" / "mathjax" / "es5"
    assert (static / "tex-mml-chtml.js").exists()
    assert len(list((static / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))) > 10
    page = (book["html"] / "notebooks" / f"{_chapters()[0].stem}.html").read_text()
    assert "mathjax/es5/tex-mml-chtml.js" in page and "cdn.jsdelivr" not in page


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium), so the "
                    "pages cannot be opened in a headless browser")  # fmt: skip
@pytest.mark.parametrize("notebook", _chapters(), ids=lambda p: p.stem)
def test_chapter_renders_in_chromium(book, notebook):
    page = book["html"] / "notebooks" / f"{notebook.stem}.html"
    assert page.exists(), f"no page for {notebook.name}"
    dom = _dom(page)
    refs = _refs(dom)
    title = nbformat.read(notebook, as_version=4).cells[0].source.splitlines()[0].lstrip("# ").strip()
    assert any(title in h.replace("\n", " ").replace("#", "").strip() for h in refs.h1), (title, refs.h1)
    figures = [v for tag, _, v in refs.refs if tag == "img" and "_images/" in v]
    assert figures, f"{page.name}: no figure"
    assert dom.count("<mjx-container") >= 3, f"{page.name}: formulas were not typeset by MathJax"
    assert "<mjx-merror" not in dom, f"{page.name}: MathJax could not parse a formula"
    assert "<audio" in dom, f"{page.name}: no audio player"
    colab = f"colab.research.google.com/github/{'/'.join(course.REPO_URL.split('/')[-2:])}/blob/main/notebooks/"
    assert colab + notebook.name in dom, f"{page.name}: no Colab button for {notebook.name}"
    assert "tag_hide-input" in dom, f"{page.name}: solutions should be folded (tag hide-input)"
    problems = _problems(page, dom)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_preface_renders_in_chromium(book):
    dom = _dom(book["html"] / "intro.html")
    assert any("Sound2Vision" in h for h in _refs(dom).h1)
    assert "How long each notebook takes" in dom and "Building this book" in dom
    for notebook in _chapters():  # the table of contents lists every chapter
        assert f"notebooks/{notebook.stem}.html" in dom
    for name in REFERENCE_PAGES:  # ... and the reference pages
        assert f"{name}.html" in dom, f"the table of contents does not list {name}"


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("name", REFERENCE_PAGES)
def test_reference_page_renders_in_chromium(book, name):
    page = book["html"] / f"{name}.html"
    assert page.exists(), f"no page for book/{name}.md"
    dom = _dom(page)
    title = (course.REPO_ROOT / "book" / f"{name}.md").read_text().splitlines()[0].lstrip("# ").strip()
    assert any(title in h for h in _refs(dom).h1), (title, _refs(dom).h1)
    assert "<mjx-merror" not in dom, f"{page.name}: MathJax could not parse a formula"
    if name == "notation":
        assert dom.count("<mjx-container") >= 10, "the notation page's symbols were not typeset"
    problems = _problems(page, dom)
    assert not problems, "\n".join(problems[:20])
