"""Sphinx configuration of the gradflow documentation (build: ``make docs``; quick CI build: ``make docs-quick``).

The API pages are generated here, at build time, from each package's ``__all__`` (see
``_write_api_pages``), so a public name cannot be missing from the reference. The gallery
(``examples/``) is executed by sphinx-gallery; ``GRADFLOW_DOCS_QUICK=1`` executes only the examples
listed in ``QUICK_EXAMPLES`` and renders the others without running them. The benchmark pages
(``docs/benchmarks/``) are generated from ``benchmarks/results/*.md``, which they include verbatim.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import gradflow  # noqa: E402

project = "gradflow"
author = "the gradflow developers"
copyright = "2026, the gradflow developers"
release = version = getattr(gradflow, "__version__", "0.1.0")

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinxcontrib.bibtex",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "benchmarks/_index_table.md", "**.ipynb_checkpoints", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]

# -- HTML ----------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"gradflow {release}"
html_static_path: list[str] = []
html_show_sourcelink = False

# -- autodoc / autosummary / napoleon -----------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autoclass_content = "both"  # class docstring + __init__ docstring (arguments are documented on either)
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# -- references ---------------------------------------------------------------------------------------------
bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

# -- MyST (the benchmark results are included as the Markdown files the scripts write) ------------------------
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = [
    # benchmarks/results/*.md are written by the benchmark scripts and not edited for the docs: their
    # headings sometimes jump a level (### under #), which MyST reports; the page renders correctly.
    "myst.header",
]

# -- sphinx-gallery -----------------------------------------------------------------------------------------
#: examples executed by the quick (CI) build; the others are rendered without outputs there.
QUICK_EXAMPLES = ["plot_gradient_field_2d.py", "plot_gradnet_module.py"]
QUICK = os.environ.get("GRADFLOW_DOCS_QUICK", "") not in ("", "0")
if QUICK:
    _pattern = "/(" + "|".join(name.replace(".", r"\.") for name in QUICK_EXAMPLES) + ")$"
else:
    _pattern = r"/plot_.*\.py$"


sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": _pattern,
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib",),  # each example sets torch.set_num_threads(1) and its seeds itself
    "show_memory": False,
    "min_reported_time": 1,
    "matplotlib_animations": False,
}

# -- API pages from __all__ -------------------------------------------------------------------------------------
API_PACKAGES = {
    "gradflow.potentials": "Gradient networks, baselines and the Potential contract (stable).",
    "gradflow.train": "The training loop (stable).",
    "gradflow.dynamics": "Hamiltonian systems, models and integrators (stable).",
    "gradflow.transport": "Optimal transport maps (API being revised; this page follows the code).",
    "gradflow.inverse": "Inverse problems with convex priors (API being revised; this page follows the code).",
    "gradflow.vision": "Gradient residual connections and backbones (API being revised; this page follows the code).",
    "gradflow.testing": "Public invariant checks (stable).",
}

#: public submodules that are not in their package's ``__all__`` but that the guides and examples use
API_EXTRA_MODULES = {"gradflow.potentials": ["targets", "fitting"]}

#: names left out of the API pages for now, with the reason (see the docs report); empty when none.
API_EXCLUDE: dict[str, str] = {}


def _kind(obj) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "data"


def _write_api_pages() -> None:
    """docs/gen_modules/api/<package>.rst: one autosummary table per kind of object in ``__all__``."""
    out = DOCS / "gen_modules" / "api"
    out.mkdir(parents=True, exist_ok=True)
    titles = {"class": "Classes", "function": "Functions", "data": "Constants", "module": "Submodules"}
    for package, blurb in API_PACKAGES.items():
        module = importlib.import_module(package)
        groups: dict[str, list[str]] = {k: [] for k in titles}
        for name in module.__all__:
            if f"{package}.{name}" in API_EXCLUDE:
                continue
            groups[_kind(getattr(module, name))].append(name)
        for name in API_EXTRA_MODULES.get(package, []):
            importlib.import_module(f"{package}.{name}")
            groups["module"].append(name)
        lines = [f"``{package}``", "=" * (len(package) + 4), "", f".. automodule:: {package}",
                 "   :no-members:", "", blurb, ""]
        for kind, title in titles.items():
            if not groups[kind]:
                continue
            # submodules are named from the parent package (autosummary cannot import them relative to
            # the package they belong to)
            parent, _, short = package.rpartition(".")
            current = parent if kind == "module" else package
            names = [f"{short}.{n}" for n in groups[kind]] if kind == "module" else groups[kind]
            lines += [title, "-" * len(title), "", f".. currentmodule:: {current}", "", ".. autosummary::",
                      "   :toctree: ../generated", "   :nosignatures:"]
            lines += [""] + [f"   {name}" for name in names] + [""]
        text = "\n".join(lines)
        path = out / f"{package}.rst"
        if not path.exists() or path.read_text() != text:  # unchanged files keep Sphinx's cache valid
            path.write_text(text)


_write_api_pages()


# -- benchmark pages: one per benchmarks/results/*.md, included verbatim ----------------------------------------
def _first(pattern: str, text: str) -> str:
    import re

    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1).strip() if match else "(not stated in the file)"


def _write_benchmark_pages() -> None:
    """docs/benchmarks/<name>.md including ../../benchmarks/results/<name>.md, and an index table
    (docs/benchmarks/_index_table.md) of every file's title, first command and first date as the file
    states them. Everything in docs/benchmarks/ is generated (git-ignored)."""
    out = DOCS / "benchmarks"
    out.mkdir(exist_ok=True)
    rows = ["| results file | what | first command in the file | date (UTC) |", "|---|---|---|---|"]
    names = []
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.md")):
        text = path.read_text()
        title = _first(r"^# (.+)$", text)
        command = _first(r"^Command: `([^`]+)`", text)
        date = _first(r"^\| date \(UTC\) \| ([^|]+) \|", text)
        names.append(path.stem)
        rows.append(f"| [{path.name}](benchmarks/{path.stem}.md) | {title} | `{command}` | {date} |")
        page = (f"```{{include}} ../../benchmarks/results/{path.name}\n```\n\n"
                f"---\n\n*This page is `benchmarks/results/{path.name}` as the benchmark script and its "
                "authors wrote it (included verbatim when the documentation is built).*\n")
        target = out / f"{path.stem}.md"
        if not target.exists() or target.read_text() != page:
            target.write_text(page)
    for stale in out.glob("*.md"):
        if stale.stem not in names and not stale.name.startswith("_"):
            stale.unlink()
    table = "\n".join(rows) + "\n"
    target = out / "_index_table.md"
    if not target.exists() or target.read_text() != table:
        target.write_text(table)


_write_benchmark_pages()



# -- docstring processing ----------------------------------------------------------------------------------------
def _attribute_comment(name: str, obj) -> list[str] | None:
    """The ``#:`` comment of a re-exported constant, read from the private module that defines it."""
    from sphinx.pycode import ModuleAnalyzer

    for modname, module in sorted(sys.modules.items()):
        if not modname.startswith("gradflow.") or getattr(module, name, _MISSING) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:  # a module without source (e.g. built-in): no comment there
            continue
        if ("", name) in docs:
            return list(docs[("", name)])
    return None


_MISSING = object()


def _process_docstring(app, what, name, obj, options, lines):
    """A re-exported constant documented by its ``#:`` comment instead of its type's docstring."""
    if what in ("data", "attribute") and not inspect.isclass(obj) and not inspect.ismodule(obj) \
            and not callable(obj):
        type_doc = inspect.getdoc(type(obj)) or ""
        if "\n".join(lines).strip() == type_doc.strip() or not "".join(lines).strip():
            comment = _attribute_comment(name.rsplit(".", 1)[-1], obj)
            lines[:] = comment if comment is not None else []


def setup(app):
    # priority < 500: runs before napoleon turns Google sections into reST
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)
