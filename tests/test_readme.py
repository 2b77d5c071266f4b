"""Every ``console`` example of README.md, run and compared with what kcheck really prints.

A block is a shell session: ``$ command`` lines, each followed by its output
(stdout and stderr, as a terminal shows them). The commands of one block run
in one bash, in order (so ``echo $?`` works), in a scratch directory that
holds ``fixtures/``; ``/usr/src/linux`` stands for Debian's 6.1 tree and
``/tmp/`` for the scratch directory, both ways. An HTML comment right above a
block may say::

    <!-- readme-test: setup: COMMAND -->   run first, output not shown
    <!-- readme-test: skip: REASON -->     not run (the output is this machine's own)

Debian updates its 6.1 tree with each bookworm point release, so the tree a
machine downloads is not always the one the examples were written on. Two
things in the output follow that tree and nothing else, and are compared
modulo it: the tree's own version ("kernel 6.1.N (from Makefile)", "(Linux
6.1.N, ARCH=...)") and how many values the tree's conf changes whatever the
plan ("make olddefconfig changes N values ... (toolchain drift)"). Every other
line, the plan and the verdict included, is compared as it is.

When kcheck's output changes on purpose, rewrite the examples from the
program with ``KCHECK_README_UPDATE=1 python -m pytest tests/test_readme.py``
and review the diff.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TREE_PLACEHOLDER = "/usr/src/linux"
MARK = "@@kcheck-readme-{}@@"


@dataclass
class Block:
    """One console block: where it is, its commands with their shown output, and its directives."""

    index: int
    line: int
    commands: list[str]
    outputs: list[list[str]]
    setup: list[str]
    skip: str | None


def parse(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        setup, skip = [], None
        j = i - 1
        while j >= 0 and lines[j].startswith("<!-- readme-test:"):
            directive = lines[j].removeprefix("<!-- readme-test:").removesuffix("-->").strip()
            if directive.startswith("setup:"):
                setup.insert(0, directive.removeprefix("setup:").strip())
            elif directive.startswith("skip:"):
                skip = directive.removeprefix("skip:").strip()
            j -= 1
        commands: list[str] = []
        outputs: list[list[str]] = []
        k = i + 1
        while lines[k].strip() != "```":
            if lines[k].startswith("$ "):
                commands.append(lines[k][2:])
                outputs.append([])
            else:
                assert commands, f"README.md:{k + 1}: output before any '$ ' command"
                outputs[-1].append(lines[k])
            k += 1
        blocks.append(Block(len(blocks), i + 1, commands, outputs, setup, skip))
        i = k + 1
    return blocks


BLOCKS = parse(README.read_text())


def run_block(block: Block, tree: Path, scratch: Path) -> list[list[str]]:
    """Run the block's commands in one bash; return each command's output lines, placeholders restored."""
    def to_real(command: str) -> str:
        return command.replace(TREE_PLACEHOLDER, str(tree)).replace("/tmp/", f"{scratch}/")

    script = ["cd " + str(scratch)]
    script += [f"{{ {to_real(cmd)} ; }} >/dev/null 2>&1" for cmd in block.setup]
    for n, command in enumerate(block.commands):
        # Keep the previous command's status across the marker, for `echo $?`.
        script.append(f"__status=$?; echo '{MARK.format(n)}'; (exit $__status); {{ {to_real(command)} ; }} 2>&1")
    env = {k: v for k, v in os.environ.items() if k not in ("KERNEL_DIR", "KBUILD_OUTPUT", "CI")}
    env |= {"NO_COLOR": "1", "COLUMNS": "100", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, env=env, timeout=300)
    text = proc.stdout.replace(str(tree), TREE_PLACEHOLDER).replace(f"{scratch}/", "/tmp/")
    pieces = re.split("|".join(re.escape(MARK.format(n)) + r"\n" for n in range(len(block.commands))), text)
    assert len(pieces) == len(block.commands) + 1, proc.stdout + proc.stderr
    return [[line.rstrip() for line in piece.splitlines()] for piece in pieces[1:]]


TREE_DEPENDENT = [
    (re.compile(r"^kernel \d+\.\d+\.\d+ \(from Makefile\)"), "kernel <tree> (from Makefile)"),
    (re.compile(r"\(Linux \d+\.\d+\.\d+, ARCH="), "(Linux <tree>, ARCH="),
    (re.compile(r"make olddefconfig changes \d+ values?( here)? with or without the plan"),
     r"make olddefconfig changes <n> values\1 with or without the plan"),
]


def tree_neutral(outputs: list[list[str]]) -> list[list[str]]:
    """The outputs with what depends on the downloaded tree's point release alone put in neutral form."""
    def neutral(line: str) -> str:
        line = line.rstrip()
        for pattern, replacement in TREE_DEPENDENT:
            line = pattern.sub(replacement, line)
        return line
    return [[neutral(line) for line in lines] for lines in outputs]


def render(block: Block, outputs: list[list[str]]) -> list[str]:
    out = []
    for command, lines in zip(block.commands, outputs):
        out.append(f"$ {command}")
        out.extend(lines)
    return out


def rewrite(block: Block, outputs: list[list[str]]) -> None:
    """Replace the block's body in README.md with the real session (the update mode)."""
    lines = README.read_text().splitlines()
    current = parse("\n".join(lines))[block.index]
    start = current.line  # the line after ```console, 0-based
    end = start + len(render(current, current.outputs))
    lines[start:end] = render(block, outputs)
    README.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("readme")
    (path / "fixtures").symlink_to(REPO / "fixtures")
    return path


@pytest.mark.realtree
@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.skip], ids=lambda b: f"README.md:{b.line}")
def test_readme_example_is_what_kcheck_prints(block, linux_6_1, scratch):
    actual = run_block(block, linux_6_1, scratch)
    if actual == [[line.rstrip() for line in lines] for lines in block.outputs]:
        return
    if tree_neutral(actual) == tree_neutral(block.outputs) and not os.environ.get("KCHECK_README_UPDATE"):
        return
    if os.environ.get("KCHECK_README_UPDATE"):
        rewrite(block, actual)
        return
    diff = "\n".join(difflib.unified_diff(render(block, block.outputs), render(block, actual), "README.md", "kcheck", lineterm=""))
    pytest.fail(f"README.md:{block.line}: the example is not what kcheck prints (rewrite with "
                f"KCHECK_README_UPDATE=1 python -m pytest tests/test_readme.py):\n{diff}")


def test_every_console_block_is_run_or_says_why_not():
    assert BLOCKS, "README.md has console examples"
    assert BLOCKS[0].line < 40, "the first screen shows an example"
    for block in BLOCKS:
        assert block.commands, f"README.md:{block.line}: a console block without a '$ ' command"
        assert block.skip is None or len(block.skip) > 10, f"README.md:{block.line}: say why it is not run"


def test_tree_neutral_forgives_the_point_release_and_nothing_else():
    written = [["kernel 6.1.176 (from Makefile)", "  tree:          /usr/src/linux (Linux 6.1.176, ARCH=x86)",
                "make olddefconfig changes 7 values with or without the plan (toolchain drift)",
                "kernel 6.1.192 (from config header)", "  OVERLAY_FS  n -> m  fs/overlayfs/Kconfig:2"]]
    other_tree = [["kernel 6.1.192 (from Makefile)", "  tree:          /usr/src/linux (Linux 6.1.192, ARCH=x86)",
                   "make olddefconfig changes 5 values with or without the plan (toolchain drift)",
                   "kernel 6.1.192 (from config header)", "  OVERLAY_FS  n -> m  fs/overlayfs/Kconfig:2"]]
    assert tree_neutral(written) == tree_neutral(other_tree)
    for index, changed in [(3, "kernel 6.1.176 (from config header)"), (4, "  OVERLAY_FS  n -> y  fs/overlayfs/Kconfig:2")]:
        wrong = [list(other_tree[0])]
        wrong[0][index] = changed
        assert tree_neutral(written) != tree_neutral(wrong)
