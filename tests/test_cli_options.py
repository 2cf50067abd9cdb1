"""``deepsort-edge track``'s options as a reader meets them, and where results go by default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deepsort_edge.cli.__main__ import build_parser, main
from deepsort_edge.io.mot import read_mot
from tests.common import reference_tracking, scene_detections

GROUPS = ["input", "output", "tracker", "detection scores", "appearance", "association", "motion model",
          "detector (frames in, no det.txt needed)", "many inputs", "speed"]


def _help(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["track", "--help"]) == 0
    return capsys.readouterr().out


def _sections(text: str) -> dict[str, list[str]]:
    """``{group title: [long option names]}`` from argparse's help text."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = sections.setdefault(line[:-1], [])
        elif current is not None and line.startswith("  ") and not line.startswith("   "):
            head = re.split(r"\s{2,}", line.strip())[0]  # "-d DET.txt, --detections DET.txt"
            longs = re.findall(r"--[a-z0-9-]+", head)
            current.append(longs[0] if longs else head.split()[0])
    return sections


def test_help_groups_come_in_reading_order_with_the_common_options_first(capsys) -> None:
    text = _help(capsys)
    sections = _sections(text)
    assert [t for t in sections if t not in ("options", "usage")] == GROUPS
    assert sections["input"][:2] == ["SOURCE", "--detections"]
    assert sections["output"][0] == "--output"
    assert sections["tracker"][0] == "--preset"
    assert sections["appearance"][:2] == ["--no-appearance", "--model"]
    # The usage line is one line that shows the few options most runs need, not all 48.
    usage = text.split("\n\n")[0]
    assert usage.count("\n") == 0 and "SOURCE" in usage and "--preset" in usage


def test_every_option_is_shown_once_and_every_setting_in_a_named_group(capsys) -> None:
    from deepsort_edge.tracking import settings
    from deepsort_edge.cli.track_options import NOT_OPTIONS, SETTING_GROUPS

    sections = _sections(_help(capsys))
    shown = [option for options in sections.values() for option in options]
    assert len(shown) == len(set(shown)), sorted(o for o in shown if shown.count(o) > 1)
    grouped = [name for names in SETTING_GROUPS.values() for name in names]
    ungrouped = sorted(set(settings.names()) - set(grouped) - set(NOT_OPTIONS))
    assert not ungrouped, f"{ungrouped}: name the --help group in SETTING_GROUPS (deepsort_edge/cli/track_options.py)"
    assert sorted(grouped) == sorted(n for n in settings.names() if n not in NOT_OPTIONS)
    for title, names in SETTING_GROUPS.items():
        assert [o for o in sections[title] if o[2:].replace("-", "_") in names] == \
            ["--" + n.replace("_", "-") for n in names]
    assert "other tracker settings" not in sections


def test_min_score_is_a_hidden_alias_of_minimum_score(capsys, tmp_path: Path) -> None:
    text = _help(capsys)
    assert "--minimum-score" in text and "--min-score" not in text
    parser, _ = build_parser(["track"])
    old = parser.parse_args(["track", "det.txt", "--min-score", "0.6"])
    new = parser.parse_args(["track", "det.txt", "--minimum-score", "0.6"])
    assert vars(old) == vars(new) and new.minimum_score == 0.6
    # Both reach the tracker as minimum_score and give the same results file.
    _, det = scene_detections(seed=4)
    from deepsort_edge.io.mot import write_mot

    write_mot(tmp_path / "det.txt", det)
    for flag in ("--min-score", "--minimum-score"):
        assert main(["track", str(tmp_path / "det.txt"), "-o", str(tmp_path / f"{flag}.txt"), "-q",
                     "--no-progress", flag, "0.6"]) == 0
    old_rows, new_rows = read_mot(tmp_path / "--min-score.txt"), read_mot(tmp_path / "--minimum-score.txt")
    assert old_rows.table.tolist() == new_rows.table.tolist()
    reference = reference_tracking(det, det.last_frame, minimum_score=0.6)
    assert new_rows.table[:, :2].tolist() == reference.table[:, :2].tolist()
    assert len(reference) < len(reference_tracking(det, det.last_frame))


@pytest.mark.parametrize(
    ("layout", "run_in", "argument", "expected"),
    [
        ("SEQ/det.txt", "SEQ", "det.txt", "SEQ"),  # a det.txt in the folder you stand in
        ("SEQ/det/det.txt", "SEQ/det", "det.txt", "SEQ"),
        ("SEQ/det/det.txt", "SEQ/det", "./det.txt", "SEQ"),
        ("SEQ/det/det.txt", "SEQ/det/sub", "../det.txt", "SEQ"),
        ("SEQ/det/det.txt", ".", "SEQ/det/det.txt", "SEQ"),
        ("clip_det.txt", ".", "clip_det.txt", "clip_det"),
        (".hidden.txt", ".", ".hidden.txt", "hidden"),
    ],
)
def test_default_results_file_is_named_after_the_sequence_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str, run_in: str, argument: str, expected: str
) -> None:
    from deepsort_edge.io.mot import write_mot

    _, det = scene_detections(frames=12)
    write_mot(tmp_path / layout, det)
    (tmp_path / run_in).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path / run_in)
    assert main(["track", argument, "-q", "--no-progress"]) == 0
    written = sorted(p.name for p in Path("runs/track").iterdir())
    assert written == [f"{expected}.txt"]
    assert len(read_mot(Path("runs/track") / written[0])) > 0


# --------------------------------------------------------------------------- docs match the parsers
DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
README = Path(__file__).resolve().parents[1] / "README.md"
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _subcommand_actions() -> dict[str, list]:
    import argparse

    from deepsort_edge.cli.__main__ import SUBCOMMANDS

    actions = {}
    for command in SUBCOMMANDS:
        parser, _ = build_parser([command])
        chooser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        actions[command] = [a for a in chooser.choices[command]._actions if a.option_strings]
    return actions


def _documented(text: str) -> set[str]:
    """Options named in prose and in ``deepsort-edge`` command lines (not in pip or docker lines)."""
    found: set[str] = set()
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code and not line.lstrip().startswith(("deepsort-edge", "[")):
            continue
        found.update(OPTION.findall(line))
    return found


def test_every_option_named_in_the_docs_exists_and_every_option_is_documented() -> None:
    import argparse

    from deepsort_edge.tracking import settings

    actions = _subcommand_actions()
    known = {s for group in actions.values() for a in group for s in a.option_strings} | {"--version"}
    docs = DOCS.read_text()
    assert sorted(_documented(docs) - known) == []
    readme = README.read_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
    assert sorted(_documented(readme) - known) == []
    # Every option but the tracker settings (README's generated table lists those) is in docs/cli.md,
    # and an option hidden from --help is there as what it is.
    setting_flags = {f"--{p}{n.replace('_', '-')}" for n in settings.names() for p in ("", "no-")}
    words = set(re.findall(r"(?<![\w-])-{1,2}[a-z][a-z0-9-]*", docs))
    for command, group in actions.items():
        for action in group:
            if set(action.option_strings) & (setting_flags | {"-h", "--help"}):
                continue
            assert words & set(action.option_strings), f"{command} {action.option_strings} not in docs/cli.md"
            if action.help == argparse.SUPPRESS:
                assert re.search(rf"`{action.option_strings[0]}`[^.]*not\s+listed\s+in\s+`--help`", docs)


def test_a_det_txt_run_inside_its_det_folder_finds_the_sequences_seqinfo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from deepsort_edge.io.mot import write_mot

    _, det = scene_detections(frames=12)
    write_mot(tmp_path / "SEQ" / "det" / "det.txt", det)
    (tmp_path / "SEQ" / "seqinfo.ini").write_text(
        "[Sequence]\nname=PETS\nframeRate=7\nseqLength=12\nimWidth=320\nimHeight=240\n")
    monkeypatch.chdir(tmp_path / "SEQ" / "det")
    assert main(["track", "det.txt", "-q", "--no-progress", "--summary", "s.json"]) == 0
    assert [p.name for p in Path("runs/track").iterdir()] == ["PETS.txt"]
    assert json.loads(Path("s.json").read_text())["frame_rate"] == 7.0
