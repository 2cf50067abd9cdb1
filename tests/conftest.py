"""Shared fixtures: the shared evaluation data lives outside the repo.

The suite tests whichever ``deepsort_edge`` it imports: the source tree under
``python -m pytest`` from the repo root (the current directory comes first on
``sys.path``), the installed wheel under the ``pytest`` command
(``--import-mode=importlib`` in pyproject.toml keeps pytest from putting the
repo on ``sys.path``). The header line says which; with
``DEEPSORT_EDGE_EXPECT_INSTALLED=1`` (CI) a source-tree import stops the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import deepsort_edge

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The folder holding the deepsort_edge under test: site-packages for a wheel, else the repo.
PACKAGE_PARENT = Path(deepsort_edge.__file__).resolve().parents[1]


def imported_from_source_tree() -> bool:
    """True when the package under test is this checkout's ``deepsort_edge/`` folder."""
    return PACKAGE_PARENT == REPO_ROOT


def subprocess_env(**overrides: str) -> dict[str, str]:
    """``os.environ`` for a child Python that must import the same deepsort_edge as this run."""
    return {**os.environ, "PYTHONPATH": str(PACKAGE_PARENT), **overrides}


def loopback_only_network() -> bool:
    """True inside a network namespace whose only interface is the loopback."""
    import socket

    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


def require_loopback_only_network() -> None:
    """Skip unless only the loopback exists: Ray advertises the host's routable address even when told 127.0.0.1."""
    if not loopback_only_network():
        pytest.skip(
            "Ray tests run only in a loopback-only network namespace (as root: "
            "unshare --net sh -c 'ip link set lo up && exec python -m pytest ...'; .ci/run does this)"
        )


def pytest_report_header(config: pytest.Config) -> str:
    where = "source tree" if imported_from_source_tree() else "installed"
    return f"deepsort_edge {deepsort_edge.__version__} ({where}): {PACKAGE_PARENT / 'deepsort_edge'}"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("DEEPSORT_EDGE_EXPECT_INSTALLED") == "1" and imported_from_source_tree():
        raise pytest.UsageError(
            f"DEEPSORT_EDGE_EXPECT_INSTALLED=1 but deepsort_edge was imported from the source tree "
            f"({REPO_ROOT}); run the `pytest` command (not `python -m pytest`) after `pip install .`"
        )


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
