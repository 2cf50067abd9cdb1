#!/usr/bin/env python
"""Export a timm backbone to an ONNX appearance model (same as ``deepsort-edge export``).

Usage:
    python tools/export_model.py MODEL -o out.onnx [--checkpoint PATH] [--input-size H W]
        [--opset N] [--fp16 | --int8 --calibration-data SEQ_DIR] [--report report.json]

See ``python tools/export_model.py --help`` and models/PROVENANCE.md for the
command that built the shipped model.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from deepsort_edge.cli.export import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
