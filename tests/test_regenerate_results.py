"""scripts/regenerate_results.py: which commands of the results pages it runs, and that running them restores a
stale table to the committed one."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from regenerate_results import all_commands, commands_of, regenerate  # noqa: E402

PAGE = """# A page

```bash
python scripts/train.py algo=liir seed=S   # needs the runs: left out
VARIANTS='variants={a:{algo.lambda_in:0}}'
python scripts/results_table.py results/x/runs/* --title "X, 3M steps" \\
    --key x --out results/x/README.md \\
    --command "python scripts/train.py $VARIANTS  # a quoted hash"
python scripts/plot_curves.py results/x/runs/* --out results/x/curves.png
python scripts/plot_curves.py results/x/runs/* --out runs/curves.png
python scripts/compare_methods.py runs/evaluation.json --a liir --b iac --out runs/table.md
# python scripts/results_table.py results/x/runs/* --out results/x/README.md
```

Text with `python scripts/results_table.py --out results/y.md` inline, not in a block.

```bash
python scripts/aggregate_stats.py results/x/runs/* --key y --out README.md
```
"""


def test_it_keeps_the_table_commands_that_write_committed_pages_with_their_assignments():
    commands = commands_of(Path("results/x/README.md"), PAGE)
    assert [c.command for c in commands] == [
        'python scripts/results_table.py results/x/runs/* --title "X, 3M steps" --key x --out results/x/README.md '
        '--command "python scripts/train.py $VARIANTS  # a quoted hash"',
        "python scripts/aggregate_stats.py results/x/runs/* --key y --out README.md",
    ]
    assert commands[0].assignments == ("VARIANTS='variants={a:{algo.lambda_in:0}}'",)
    assert commands[1].assignments == ()
    assert commands[0].shell().splitlines()[1].startswith(f"{sys.executable} scripts/results_table.py ")
    with_figures = commands_of(Path("p.md"), PAGE, figures=True)
    assert [c.script for c in with_figures] == ["results_table", "plot_curves", "aggregate_stats"]


def test_the_repositorys_pages_have_commands_for_the_opening_matrix_and_every_map():
    pages = {str(c.page) for c in all_commands()}
    assert {"results/README.md", "results/smax_3m/README.md", "results/smax_8m/README.md",
            "results/smax_5m_vs_6m/README.md", "results/pursuit/README.md"} <= pages
    assert any("--key matrix" in c.command for c in all_commands())


def test_a_stale_table_is_rewritten_to_the_committed_one_and_named(tmp_path):
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    shutil.copytree(ROOT / "results" / "pursuit", tmp_path / "results" / "pursuit")
    (tmp_path / "README.md").write_text("# nothing to regenerate\n")
    page = tmp_path / "results" / "pursuit" / "README.md"
    committed = page.read_text()
    start = committed.index("<!-- results:pursuit -->")
    row = committed.index("| pursuit", start)
    page.write_text(committed[:row] + "| stale row |\n" + committed[row:])
    commands = all_commands(tmp_path)
    assert [c.page for c in commands] == [Path("results/pursuit/README.md")]
    assert regenerate(commands, tmp_path) == [Path("results/pursuit/README.md")]
    assert page.read_text() == committed
    assert regenerate(commands, tmp_path) == []
