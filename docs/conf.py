"""Sphinx configuration of the torchrl_liir documentation (built by ``tests/test_docs.py`` with warnings as errors).

The source directory is the repository's root, so that BENCHMARKS.md and the results pages under
results/ are pages of the site with their links intact; this file is the configuration (``-c docs``). Build it by
hand with ``python -m sphinx -W -c docs -b html . docs/_build/html`` and read it offline with
``python -m http.server -d docs/_build/html``.
"""
from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path

from sphinx.ext import autosummary

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))  # the config reference is generated from the checks (config_reference.py)
os.environ.setdefault("OMP_NUM_THREADS", "1")

project = "torchrl_liir"
author = "the torchrl_liir developers"
copyright = "2026, the torchrl_liir developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "docs/index"
include_patterns = ["docs/**", "results/**", "BENCHMARKS.md"]
exclude_patterns = ["docs/_build", "docs/_templates", "docs/_extra", "docs/_static", "docs/tutorials/README.rst",
                    "docs/generated/tutorials/*.ipynb", "docs/generated/tutorials/*.py"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

templates_path = [str(ROOT / "docs" / "_templates")]  # API pages titled LIIRLoss, not the dotted path (absolute:
# autosummary reads it from the source directory, the html builder from this one)
autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# No network when building or reading: cross-references to other projects are plain text.
intersphinx_mapping: dict = {}

doctest_global_setup = "import torch\ntorch.manual_seed(0)\ntorch.set_num_threads(1)"

sphinx_gallery_conf = {
    "examples_dirs": "docs/tutorials",
    "gallery_dirs": "docs/generated/tutorials",
    "filename_pattern": r"/\d\d_",  # every tutorial runs at each build
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "write_computation_times": False,  # its page loads scripts from the network; the site is read offline
}

html_theme = "furo"
html_title = "torchrl_liir"
html_static_path = ["_static"]
html_extra_path = ["_extra"]  # index.html at the build's root: a redirect to docs/index.html


# autosummary's one-line summaries end at the first ". " that is not a known abbreviation; the docstrings cite the
# paper's equations as "eq. 2", which would cut "(eq. 2)" to "(eq.".
autosummary.WELL_KNOWN_ABBREVIATIONS = (*autosummary.WELL_KNOWN_ABBREVIATIONS, "eq.", "Fig.")


def _constructor_signature(app, what, name, obj, options, signature, return_annotation):
    """The constructor's parameters for classes whose metaclass defines ``__call__(*args, **kwargs)`` (TorchRL's
    ``LossModule``), where autodoc would show that instead."""
    if what != "class" or signature != "(*args, **kwargs)":
        return None
    parameters = list(inspect.signature(obj.__init__).parameters.values())[1:]
    bare = inspect.Signature([p.replace(annotation=inspect.Parameter.empty) for p in parameters])
    return str(bare), None


def setup(app):
    app.connect("autodoc-process-signature", _constructor_signature)
