"""Every generated block of README.md and docs/: where it is, which JSON it renders, and how.

``python tools/bench.py docs`` re-renders them all from the committed JSON
files (after a section rewrote one, or a renderer changed);
``tests/test_bench_docs.py`` checks that each block equals its rendering.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .common import REPO
from .report import replace_block


@dataclass(frozen=True)
class Block:
    """A block ``<!-- marker:start -->`` ... ``<!-- marker:end -->`` of ``file``, rendered from ``source``."""

    file: str
    marker: str
    source: str  # the JSON, relative to the repository
    render: Callable[[dict], str]

    def text(self, root: Path = REPO) -> str:
        """The block's text as rendered from its JSON (ending in a newline)."""
        text = self.render(json.loads((root / self.source).read_text(encoding="utf-8")))
        return text if text.endswith("\n") else text + "\n"


def blocks() -> list[Block]:
    """Every generated block (renderers import lazily: some sections need optional packages)."""
    from . import (compile_time, embedder, gpu, identities, install, peers, pipeline, soak, speed_docs, startup, streams,
                   threads)

    out = [Block(file, marker, "docs/bench/speed.json", render)
           for (file, marker), (_, render) in speed_docs.BLOCKS.items()]
    out.append(Block("docs/benchmarks.md", startup.DOCS_BLOCK, "docs/bench/startup.json", startup.render))
    out.append(Block("docs/benchmarks.md", compile_time.DOCS_BLOCK, "docs/bench/compile.json", compile_time.render))
    out.append(Block("docs/benchmarks.md", soak.DOCS_BLOCK, "docs/bench/soak.json", soak.render))
    out.append(Block("docs/benchmarks.md", embedder.DOCS_BLOCK, "docs/bench/embedder.json", embedder.render))
    out.append(Block("docs/benchmarks.md", pipeline.DOCS_BLOCK, "docs/bench/pipeline.json", pipeline.render))
    out.append(Block("docs/benchmarks.md", streams.DOCS_BLOCK, "docs/bench/streams.json", streams.render))
    out.append(Block("docs/benchmarks.md", threads.DOCS_BLOCK, "docs/bench/threads.json", threads.render))
    out.append(Block("docs/benchmarks.md", gpu.DOCS_BLOCK, "docs/bench/gpu.json", gpu.render))
    out.append(Block("docs/benchmarks.md", peers.DOCS_BLOCK, "docs/bench/peers.json", peers.render))
    out.append(Block("docs/benchmarks.md", identities.DOCS_BLOCK, "docs/bench/identities.json", identities.render))
    out.append(Block(install.DOCS_FILE, install.DOCS_BLOCK, "docs/bench/install.json", install.render))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py docs", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    missing = 0
    for block in blocks():
        if not (REPO / block.source).is_file():
            print(f"bench.py docs: {block.source} not found: {block.file}:{block.marker} left as it is",
                  file=sys.stderr)
            missing += 1
        elif replace_block(REPO / block.file, block.marker, block.text()):
            print(f"rendered {block.file}:{block.marker} from {block.source}")
    return 1 if missing else 0
