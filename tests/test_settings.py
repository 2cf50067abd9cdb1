"""The settings schema: validation, presets, and the docs and CLI generated from it."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from deepsort_edge import DeepSORTTracker
from deepsort_edge.tracking import settings
from deepsort_edge.tracking.settings import PRESETS, TrackerSettings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_validate_and_every_field_is_documented():
    s = TrackerSettings()
    for f in settings.fields():
        assert f.metadata["help"], f.name
        assert f.metadata["kind"] in ("int", "float", "choice", "bool"), f.name
    assert s.max_age_frames == int(s.frame_rate / 30 * s.lost_track_buffer)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"appearance_threshold": 3.0}, r"appearance_threshold must be in \[0.0, 2.0\]"),
        ({"frame_rate": 0}, r"frame_rate must be in \(0.0"),
        ({"nn_budget": 0}, "nn_budget must be >= 1"),
        ({"matching": "greedy"}, "matching must be one of"),
        ({"class_aware": 1}, "class_aware must be True or False"),
        ({"track_activation_threshold": math.nan}, "must be a finite number"),
        ({"max_age": -1}, "max_age must be >= 0"),
        ({"bogus": 1}, r"unknown tracker settings \['bogus'\]"),
    ],
)
def test_bad_values_are_rejected_naming_the_setting(change, message):
    with pytest.raises((ValueError, TypeError), match=message):
        TrackerSettings.from_dict(change)
    with pytest.raises((ValueError, TypeError), match=message):
        DeepSORTTracker(**change)


def test_paper_preset_is_nwojke_deep_sort_at_any_frame_rate():
    for rate in (7.0, 25.0, 30.0):
        s = TrackerSettings.from_preset("paper", frame_rate=rate)
        assert s.max_age_frames == 30  # max_age=30 frames, not seconds
    s = TrackerSettings.from_preset("paper")
    assert (s.appearance_threshold, s.appearance_weight, s.nn_budget) == (0.2, 1.0, 100)
    assert (s.appearance_mode, s.motion_cost, s.matching, s.gating) == ("gallery", "mahalanobis", "cascade", "full")
    assert (s.minimum_consecutive_frames, s.minimum_iou_threshold) == (3, 0.3)  # n_init 3, max_iou_distance 0.7
    assert s.minimum_score is None and s.track_activation_threshold == 0.0  # every detection may start a track
    assert not (s.low_score_matching or s.confidence_noise or s.confidence_embedding or s.class_aware)
    assert (s.lost_track_rule, s.output_box, s.camera_motion, s.coast_damping) == ("none", "detection", "none", 1.0)
    assert s.recent_track_rule == "none"
    assert (s.aspect_noise, s.aspect_velocity_noise) == (0.01, 1e-5)  # nwojke's std_aspect noise
    assert TrackerSettings.from_preset("roboflow-2.0.1").aspect_noise == 0.01


def test_overlap_rules_map_to_the_gate_distance_they_hold_beyond():
    from deepsort_edge.tracking.configuration import overlap_rule_beyond

    assert [overlap_rule_beyond(r, 9.5) for r in ("none", "overlap", "far")] == [math.inf, -1.0, 9.5]
    with pytest.raises(ValueError, match=r"rule must be one of \['far', 'none', 'overlap'\], got 'near'"):
        overlap_rule_beyond("near", 9.5)


def test_roboflow_preset_is_that_release_exactly():
    s = TrackerSettings.from_preset("roboflow-2.0.1")
    assert (s.lost_track_buffer, s.frame_rate, s.track_activation_threshold) == (30, 30.0, 0.25)
    assert (s.minimum_consecutive_frames, s.minimum_iou_threshold) == (3, 0.3)
    assert (s.appearance_threshold, s.appearance_weight, s.distance_metric) == (0.7, 0.5, "cosine")
    assert s.minimum_score is None and s.appearance_mode == "gallery" and s.output_box == "detection"


def test_preset_then_explicit_arguments_override_it():
    tracker = DeepSORTTracker(preset="paper", frame_rate=7, appearance_threshold=0.3)
    assert tracker.appearance_threshold == 0.3 and tracker.maximum_frames_without_update == 30
    assert tracker.appearance_mode == "gallery"
    assert "preset='paper'" in repr(tracker)
    with pytest.raises(ValueError, match="preset must be one of"):
        DeepSORTTracker(preset="fast")
    assert DeepSORTTracker(preset="default").settings == DeepSORTTracker().settings


def test_signature_leaves_roboflows_eight_unset_so_a_preset_can_fill_them():
    import inspect

    params = inspect.signature(DeepSORTTracker).parameters
    defaults = TrackerSettings().to_dict()
    positional = [p for p in params if p not in ("self", "feature_extractor", "device", "preset", "settings")]
    assert positional == list(defaults)[:8]  # roboflow's eight, in its order
    assert all(params[name].default is None for name in positional)  # None: not given
    assert DeepSORTTracker().settings == TrackerSettings()  # ... which is the schema's default


@pytest.mark.parametrize("preset", ["paper", "roboflow-2.0.1"])
def test_every_argument_given_wins_over_the_preset_even_at_the_schema_default(preset):
    defaults = TrackerSettings()
    preset_only = TrackerSettings.from_preset(preset)
    for name in settings.names():
        value = getattr(defaults, name)
        if getattr(preset_only, name) == value:
            continue  # the preset keeps the default: nothing to tell apart
        if value is None and name == "minimum_iou_threshold":
            continue  # one of roboflow's eight arguments, where None means "not given" (see below)
        tracker = DeepSORTTracker(preset=preset, **{name: value})
        assert getattr(tracker.settings, name) == value, name
        assert tracker.state_dict()["settings"][name] == value, name
    # The review's case: paper runs gallery mode unless ema is asked for, also positionally.
    assert DeepSORTTracker(preset="paper", appearance_mode="ema").settings.appearance_mode == "ema"
    positional = DeepSORTTracker(None, None, defaults.lost_track_buffer, preset=preset)
    assert positional.settings.lost_track_buffer == defaults.lost_track_buffer


def test_readme_settings_table_is_the_generated_one():
    """Both directions at once: the README block equals the table the schema generates."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- settings-table:start -->\n(.*?)\n<!-- settings-table:end -->", text, re.S)
    assert block, "README lacks the settings-table markers"
    assert block.group(1).strip() == settings.markdown_table().strip(), (
        "README's settings table is stale: paste `python -m deepsort_edge.tracking.settings`"
    )
    documented = set(re.findall(r"^\| `(\w+)` \|", block.group(1), re.M))
    assert documented == set(settings.names())


def test_every_preset_is_valid_and_round_trips_through_a_state():
    for name in PRESETS:
        tracker = DeepSORTTracker(preset=name)
        clone = DeepSORTTracker()
        clone.load_state_dict(tracker.state_dict())
        assert clone.settings == tracker.settings
