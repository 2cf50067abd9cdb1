"""README's Python snippets run as written (on a short generated video where they need one)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _people_video(path: Path, frames: int = 40) -> None:
    """A few frames of the demo scene (walking figures) as people.mp4."""
    import cv2

    from deepsort_edge.cli.demo import FIGURE_SCALE, HEIGHT, PILLARS, WIDTH, build_scene
    from deepsort_edge.demo.scene import SceneRenderer, scale_boxes

    scene, _, _ = build_scene(frames, seed=1, objects=4)
    renderer = SceneRenderer(WIDTH, HEIGHT, seed=1, occluders=PILLARS)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (WIDTH, HEIGHT))
    for frame in scene:
        writer.write(renderer.render(frame.index, frame.gt_ids, scale_boxes(frame.gt_xyxy, FIGURE_SCALE)))
    writer.release()


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = SNIPPETS[index]
    if "people.mp4" in code:
        _people_video(tmp_path / "people.mp4")
    if "yolo11n.onnx" in code:  # a tiny stand-in built here: the same two boxes in every frame
        from tests.detector_models import constant_detector

        raw = np.zeros((1, 6, 84))
        raw[0, :, :2] = [[20, 44], [32, 30], [12, 10], [30, 26], [0.9, 0.8], [0.0, 0.1]]
        constant_detector(tmp_path / "yolo11n.onnx", [raw], (64, 64), {"names": "{0: 'person', 1: 'car'}"})
    exec(compile(code, f"README.md snippet {index}", "exec"), {"__name__": "__readme__", "np": np})
    if "people-tracked.mp4" in code:
        assert (tmp_path / "people-tracked.mp4").stat().st_size > 0


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 2
