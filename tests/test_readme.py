"""Every ```python block of README.md and docs/*.md runs as written.

Each block runs in a fresh namespace, in this process, with its line numbers kept, so a
failing block's traceback points into the Markdown file. A block must be self-contained,
offline and quick, and must shut down every pool it starts: a thread it leaves behind fails
its test. Excerpts that cannot run use another fence language (```text, ```bash).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from tests._support import wait_until
from tests.integration._require import library

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\s`]*)")


class Block:
    """A fenced ```python block: where it is and what it says."""

    def __init__(self, page: Path, index: int, line: int, source: str) -> None:
        self.page = page
        self.index = index
        self.line = line  # of the block's first code line in the page, 1-based
        self.source = source

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}#{self.index}:L{self.line}"


def python_blocks(page: Path) -> list[Block]:
    """The ```python blocks of a Markdown page, in order."""
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        opening = _FENCE.match(lines[number])
        number += 1
        if opening is None:
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        start = number
        while number < len(lines) and not _closes(lines[number], fence):
            number += 1
        if opening["info"].lower() in ("python", "py", "python3"):
            body = [
                line[indent:] if line[:indent].isspace() else line for line in lines[start:number]
            ]
            blocks.append(Block(page, len(blocks), start + 1, "\n".join(body) + "\n"))
        number += 1  # past the closing fence
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and not stripped.strip(fence[0])


def run_block(block: Block) -> None:
    """Runs one block in a fresh namespace; raises whatever the block raises."""
    # Pad with blank lines so the traceback's line numbers are the page's.
    source = "\n" * (block.line - 1) + block.source
    code = compile(source, str(block.page), "exec", dont_inherit=True)
    exec(code, {"__name__": "__main__", "__builtins__": __builtins__})


BLOCKS = [block for page in PAGES for block in python_blocks(page)]
_NEEDS_DASK = re.compile(r"^\s*(from|import) distributed\b", re.MULTILINE)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_block_runs_as_written(block: Block) -> None:
    if _NEEDS_DASK.search(block.source):  # docs/dask.md: the dask extra
        library("distributed")  # skips without it, unless the run requires it
    before = set(threading.enumerate())
    run_block(block)
    # A block shuts down what it starts (a `with` block joins a pool's threads; a metrics
    # server's request threads may take a moment to finish after their response).
    wait_until(lambda: not {t for t in threading.enumerate() if not _lives_on(t)} - before)


def _lives_on(thread: threading.Thread) -> bool:
    """A thread of a library's process-wide executor, which lives as long as the process
    whoever starts it: distributed's ``Dask-Offload`` (docs/dask.md starts a cluster)."""
    return thread.name.startswith("Dask-Offload")


def test_readme_has_runnable_blocks() -> None:
    readme = python_blocks(ROOT / "README.md")
    assert readme, "README.md has no ```python block"
    assert "from threadpool_plus import" in readme[0].source


def test_a_failing_block_fails(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n```text\nnot python\n```\n\n"
        "  ```python\n  x = 1\n  raise ValueError(x)\n  ```\n",
        encoding="utf-8",
    )
    [block] = python_blocks(page)
    assert block.line == 8
    with pytest.raises(ValueError, match="1") as caught:
        run_block(block)
    assert caught.traceback[-1].lineno + 1 == 9  # pytest counts lines from 0
