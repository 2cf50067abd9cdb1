"""Shared fixtures: the shared evaluation data lives outside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Folder named by DEEPSORT_EDGE_DATA, default ``../shared/data`` beside the repo."""
    return Path(os.environ.get("DEEPSORT_EDGE_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to the shared MOTChallenge data; skips the test when it is absent."""
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        pytest.skip(
            f"shared data not found at {path} (set DEEPSORT_EDGE_DATA to the folder "
            "holding MOT15/, MOT17/ and models/)"
        )
    return path
