"""The documentation site: it builds with no warning, its tutorials run, its docstring examples pass as doctests,
it loads nothing from the network, and its API reference names every public name. README.md stays a front door."""
from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED_PACKAGES = ("objectives", "modules", "transforms", "collectors", "envs", "trainers", "algorithms", "tasks",
                       "studies", "config_checks")
TUTORIALS = sorted(p.stem for p in (ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))


def sphinx(builder: str, out: Path, doctrees: Path) -> subprocess.CompletedProcess:
    """``sphinx-build`` as the README's docs command runs it: warnings are errors."""
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-c", str(ROOT / "docs"), "-b", builder,
         "-d", str(doctrees), str(ROOT), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=1500,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"},
    )


@pytest.mark.slow
def test_the_site_builds_without_a_warning_runs_its_tutorials_and_passes_its_doctests(tmp_path):
    shutil.rmtree(ROOT / "docs" / "generated", ignore_errors=True)  # pages of removed names would stay behind
    html = sphinx("html", tmp_path / "html", tmp_path / "doctrees")
    assert html.returncode == 0, html.stderr[-6000:]
    pages = ["index.html", "docs/index.html", "docs/api.html", "results/README.html", "BENCHMARKS.html",
             "docs/generated/api/torchrl_liir.objectives.LIIRLoss.html",
             *(f"docs/generated/tutorials/{name}.html" for name in TUTORIALS)]
    for page in pages:
        assert (tmp_path / "html" / page).is_file(), page
    assert len(TUTORIALS) >= 6
    loaded = [match for page in (tmp_path / "html").rglob("*.html")
              for match in re.findall(r'<(?:script|img)[^>]*src="(https?:[^"]*)"|<link[^>]*href="(https?:[^"]*)"',
                                      page.read_text())]
    assert loaded == [], f"pages load from the network: {sorted(set(loaded))[:5]}"

    doctest = sphinx("doctest", tmp_path / "doctest", tmp_path / "doctrees")
    report = (tmp_path / "doctest" / "output.txt").read_text() if (tmp_path / "doctest").exists() else ""
    assert doctest.returncode == 0, (doctest.stderr + report)[-6000:]
    tests = int(re.search(r"^\s*(\d+) tests?$", report, re.M).group(1))
    assert tests >= 200, report[-2000:]  # every Examples: line counts
    assert re.search(r"^\s*0 failures in tests$", report, re.M), report[-2000:]


def documented_names() -> set[tuple[str, str]]:
    """``(module, name)`` of every entry of docs/api.rst's autosummary tables."""
    names, module = set(), None
    for line in (ROOT / "docs" / "api.rst").read_text().splitlines():
        current = re.match(r"^\.\. currentmodule:: (\S+)$", line)
        if current:
            module = current.group(1)
        elif re.match(r"^   [A-Za-z_]\w*$", line):
            names.add((module, line.strip()))
        elif line.startswith(".. py:data:: "):
            names.add((module, line.split()[-1]))
    return names


def test_the_api_reference_names_every_public_name():
    documented = documented_names()
    for package in DOCUMENTED_PACKAGES:
        module = f"torchrl_liir.{package}"
        missing = set(importlib.import_module(module).__all__) - {name for m, name in documented if m == module}
        assert not missing, f"{module}: {sorted(missing)} not in docs/api.rst"
    top_level = importlib.import_module("torchrl_liir").__all__
    assert set(top_level) <= {name for _, name in documented}


def test_the_registries_documented_by_hand_list_every_entry():
    from torchrl_liir.algorithms import ALGORITHMS
    from torchrl_liir.studies import STUDIES
    from torchrl_liir.tasks import TASKS

    api = (ROOT / "docs" / "api.rst").read_text()
    for constant, registry in (("TASKS", TASKS), ("ALGORITHMS", ALGORITHMS), ("STUDIES", STUDIES)):
        paragraph = api.split(f".. py:data:: {constant}\n", 1)[1].split("\n\n", 2)[1]
        assert set(re.findall(r"``(\w+)``", paragraph)) == set(registry), constant


def test_readme_is_a_front_door_of_at_most_12_kb():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 12 * 1024
    for link in re.findall(r"\]\(((?!https?:)[^)#]+)", readme):  # every link into the repository leads somewhere
        assert (ROOT / link).exists(), link


def test_readme_compose_example_trains():
    code = re.search(r"## Compose LIIR in your own TorchRL loop.*?```python\n(.*?)```",
                     (ROOT / "README.md").read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["update"] == 19
    assert all(bool(value.isfinite()) for key, value in namespace["terms"].items() if key.startswith("loss_"))
