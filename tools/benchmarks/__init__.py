"""The benchmark suite: one module per section, run through ``python tools/bench.py SECTION``.

Shared pieces: :mod:`.common` (the shared data folder, one-thread runs, the
machine), :mod:`.report` (markdown, targets, JSON, the generated blocks of the
docs), :mod:`.inputs` and :mod:`.timing` (tracker inputs and timing loops).
"""
