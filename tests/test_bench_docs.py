"""Every generated block of README.md and docs/ equals its rendering of the committed JSON.

The numbers in those blocks come from a benchmark run (``python tools/bench.py
SECTION --json ... --docs``); this keeps a hand edit, or a renderer change
without ``python tools/bench.py docs``, from letting them drift.
"""

from __future__ import annotations

import pytest

from .common import TOOLS, tool_module

REPO = TOOLS.parent
BLOCKS = tool_module("benchmarks.docs").blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.file}:{b.marker}" for b in BLOCKS])
def test_block_equals_its_rendering(block):
    found = tool_module("benchmarks.report").read_block(REPO / block.file, block.marker)
    assert found is not None, f"{block.file} has no {block.marker} block"
    assert found == block.text(REPO), f"run `python tools/bench.py docs` to re-render {block.file}:{block.marker}"


def test_every_marked_block_in_the_docs_is_known():
    """A block with start/end markers is either generated here or by a named script (settings, quality, ...)."""
    import re

    known = {(b.file, b.marker) for b in BLOCKS}
    elsewhere = {"settings-table", "quality-table", "quality-full", "quality-selection", "pipeline-bench",
                 "arm64-table"}
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for marker in re.findall(r"<!-- ([\w-]+):start", path.read_text(encoding="utf-8")):
            rel = str(path.relative_to(REPO))
            assert (rel, marker) in known or marker in elsewhere, f"{rel}: unknown generated block {marker}"
