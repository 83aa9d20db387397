"""Re-run every command of the results pages that writes a committed table (or figure), and name what changed.

    python scripts/regenerate_results.py              # every table command, then the files that changed
    python scripts/regenerate_results.py --list       # the commands only, in the order they run
    python scripts/regenerate_results.py --check      # exit status 1 when a page changed: records and pages disagree
    python scripts/regenerate_results.py --figures    # the figures under results/ too (their bytes follow matplotlib)
    python scripts/regenerate_results.py --match 3m   # only the commands whose text contains "3m"

The commands are those of the ```bash blocks of README.md and results/**/*.md that run one of the table scripts
(``results_table``, ``aggregate_stats``, ``compare_methods``, ``compare_effects``, ``diagnostics_table``,
``learning_onset``, ``short_episodes``; with ``--figures`` also ``plot_curves``, ``plot_diagnostics``,
``plot_intrinsic``) and write into the repository's ``README.md`` or ``results/`` (``--out``). Training, evaluation and
archiving commands, and those writing under ``runs/``, are left out: they need the runs themselves, which the repository
does not keep. A shell assignment in a block (``VARIANTS='...'``) is kept for the block's later commands. Commands run
from the repository's root in the order the pages give them, with this Python; a failing command stops the run with its
output.

Markdown has no parser for this in the libraries the project uses, so the fences are read here: a block is the
text between a line starting with ```bash and the next ```; backslash line continuations are joined.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
TABLE_SCRIPTS = ("results_table", "aggregate_stats", "compare_methods", "compare_effects", "diagnostics_table",
                 "learning_onset", "short_episodes")
FIGURE_SCRIPTS = ("plot_curves", "plot_diagnostics", "plot_intrinsic")
_FENCE = re.compile(r"^```bash[^\n]*\n(.*?)^```", re.S | re.M)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S")


@dataclass(frozen=True)
class PageCommand:
    """One regenerating command: the page it stands on, the assignments before it in its block, its text."""

    page: Path
    assignments: tuple[str, ...]
    command: str

    @property
    def script(self) -> str:
        return Path(shlex.split(self.command)[1]).stem

    def shell(self) -> str:
        """The bash text that runs it with ``python`` as this interpreter."""
        body = f"{shlex.quote(sys.executable)} {self.command.split(None, 1)[1]}"
        return "\n".join([*self.assignments, body])


def commands_of(page: Path, text: str, figures: bool = False) -> list[PageCommand]:
    """The regenerating commands of one page's ```bash blocks (see the module docstring)."""
    scripts = TABLE_SCRIPTS + (FIGURE_SCRIPTS if figures else ())
    found = []
    for block in _FENCE.findall(text):
        assignments: list[str] = []
        for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines():
            line = line.strip()  # a trailing comment stays: bash reads it as one, quotes included
            if _ASSIGNMENT.match(line) and not line.startswith(("python ", "python3 ")):
                assignments.append(line)
                continue
            words = line.split()
            if len(words) < 2 or words[0] != "python" or Path(words[1]).stem not in scripts:
                continue
            out = re.search(r"--out\s+(\S+)", line)
            if out and (out.group(1) == "README.md" or out.group(1).startswith("results/")):
                found.append(PageCommand(page, tuple(assignments), line))
    return found


def all_commands(root: Path = ROOT, figures: bool = False) -> list[PageCommand]:
    """Every page's regenerating commands: README.md first, then results/ pages in path order."""
    pages = [root / "README.md", *sorted((root / "results").rglob("*.md"))]
    return [c for page in pages if page.exists() for c in commands_of(page.relative_to(root), page.read_text(),
                                                                       figures)]


def _digests(root: Path) -> dict[Path, str]:
    files = [root / "README.md", *(p for p in (root / "results").rglob("*") if p.is_file())]
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.exists()}


def regenerate(commands: list[PageCommand], root: Path = ROOT) -> list[Path]:
    """Runs ``commands`` from ``root``; returns the files under results/ (and README.md) whose bytes changed."""
    before = _digests(root)
    for command in tqdm(commands, desc="regenerating", unit="command"):
        done = subprocess.run(["bash", "-c", command.shell()], cwd=root, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"error: {command.page}: `{command.command}` failed (exit {done.returncode}):\n"
                             f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    after = _digests(root)
    return sorted(p for p in after.keys() | before.keys() if before.get(p) != after.get(p))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--check", action="store_true", help="exit status 1 when a file changed")
    parser.add_argument("--figures", action="store_true", help="the figure commands too")
    parser.add_argument("--match", default=None, help="only the commands containing this text")
    args = parser.parse_args(argv)
    commands = [c for c in all_commands(figures=args.figures) if args.match is None or args.match in c.command]
    if args.list:
        for command in commands:
            print(f"{command.page}: {command.command}")
        return 0
    changed = regenerate(commands)
    print(f"{len(commands)} commands; " + (f"{len(changed)} files changed:" if changed else "nothing changed"))
    for path in changed:
        print(f"  {path}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
