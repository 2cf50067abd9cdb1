"""MOTChallenge file I/O: round trips, parsing faults, seqinfo, score normalisation."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from deepsort_edge.tracking.boxes import tlwh_to_xyxy
from deepsort_edge.io.mot import (
    MOTData,
    MOTFormatError,
    MOTResultWriter,
    MOTSequence,
    find_sequences,
    normalise_scores,
    read_mot,
    read_seqinfo,
    write_mot,
)


def _reference_rows(path: Path) -> list[list[float]]:
    """Plain csv-module reading, as an independent parser."""
    with path.open() as fh:
        return [[float(v) for v in row] for row in csv.reader(fh) if row]


def test_write_read_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 200
    frames = rng.integers(1, 50, n)
    xyxy = np.sort(rng.uniform(0, 1000, (n, 2, 2)), axis=1).reshape(n, 4)[:, [0, 2, 1, 3]]
    data = MOTData.from_arrays(frames, rng.integers(1, 20, n), xyxy,
                               scores=rng.uniform(0, 1, n), classes=rng.integers(1, 13, n),
                               visibility=rng.uniform(0, 1, n))
    write_mot(tmp_path / "a.txt", data)
    back = read_mot(tmp_path / "a.txt")
    assert back.num_columns == 10 and len(back) == n
    np.testing.assert_array_equal(back.frames, data.frames)
    np.testing.assert_array_equal(back.ids, data.ids)
    np.testing.assert_array_equal(back.classes, data.classes)
    np.testing.assert_allclose(back.xyxy, data.xyxy, atol=0.011)  # 2 decimals, twice rounded
    np.testing.assert_allclose(back.scores, data.scores, rtol=1e-3)
    ref = _reference_rows(tmp_path / "a.txt")
    np.testing.assert_allclose(back.table, np.asarray(ref))


def test_sorted_by_frame_stably_and_short_files_padded(tmp_path: Path) -> None:
    # MOT17 det.txt files are not sorted by frame; 7-column files are common.
    (tmp_path / "d.txt").write_text(
        "3,-1,10,20,30,40,0.9\n1,-1,1,2,3,4,0.5\n3,-1,5,6,7,8,0.1\n\n# comment\n1,-1,9,9,9,9,1\n"
    )
    d = read_mot(tmp_path / "d.txt")
    assert d.num_columns == 7
    assert d.frames.tolist() == [1, 1, 3, 3]
    assert d.scores.tolist() == [0.5, 1.0, 0.9, 0.1]  # file order kept within a frame
    assert (d.table[:, 7:] == -1).all()
    np.testing.assert_array_equal(d.xyxy[2], tlwh_to_xyxy(np.array([[10, 20, 30, 40]]))[0])
    assert d.frame_index() == {1: slice(0, 2), 3: slice(2, 4)}
    frames = list(d.iter_frames())
    assert [f for f, _ in frames] == [1, 2, 3] and [len(r) for _, r in frames] == [2, 0, 2]
    assert [f for f, _ in d.iter_frames(5)] == [1, 2, 3, 4, 5]


def test_whitespace_separated_and_empty(tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_text("1 2 3 4 5 6 1 -1 -1 -1\n")
    assert read_mot(tmp_path / "w.txt").ids.tolist() == [2]
    (tmp_path / "e.txt").write_text("")
    empty = read_mot(tmp_path / "e.txt")
    assert len(empty) == 0 and empty.last_frame == 0 and list(empty.iter_frames()) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,-1,1,2,3\n", "line 1: expected at least 6"),
        ("1,-1,1,2,3,4,0.5\n2,-1,a,2,3,4,0.5\n", "line 2: non-numeric"),
        ("0,-1,1,2,3,4,0.5\n", "frame must be an integer >= 1"),
        ("1.5,-1,1,2,3,4,0.5\n", "frame must be an integer >= 1"),
        ("1,-1,1,2,3,4,nan\n", "NaN or infinite"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(MOTFormatError, match=message) as info:
        read_mot(path)
    assert "bad.txt" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_mot(tmp_path / "nope.txt")


def test_result_writer_skips_unconfirmed(tmp_path: Path) -> None:
    path = tmp_path / "r" / "res.txt"
    with MOTResultWriter(path) as writer:
        writer.write(1, np.array([1, -1, 2]), np.array([[0, 0, 10, 20], [1, 1, 2, 2], [5, 5, 9, 9.5]]),
                     np.array([0.9, 0.1, 0.5]))
        writer.write(2, np.array([-1]), np.array([[0, 0, 1, 1]]))
        writer.write(3, np.array([1]), np.array([[1, 2, 11, 22]]))
    assert writer.rows_written == 3
    rows = _reference_rows(path)
    assert [r[:2] for r in rows] == [[1, 1], [1, 2], [3, 1]]
    assert rows[1][2:7] == [5, 5, 4, 4.5, 0.5] and rows[2][6] == 1.0
    with pytest.raises(ValueError, match="closed"):
        writer.write(4, np.array([1]), np.array([[0, 0, 1, 1]]))


def test_from_arrays_validates_lengths() -> None:
    with pytest.raises(ValueError, match="same length"):
        MOTData.from_arrays([1, 2], [1], np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"shape \(N, 10\)"):
        MOTData(np.zeros((3, 7)))


def test_seqinfo_and_sequence_folder(tmp_path: Path) -> None:
    seq = tmp_path / "SEQ-01"
    (seq / "img1").mkdir(parents=True)
    (seq / "det").mkdir()
    (seq / "det" / "det.txt").write_text("1,-1,1,2,3,4,0.5\n")
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=SEQ-01\nimDir=img1\nframeRate=7\nseqLength=12\nimWidth=64\n"
        "imHeight=48\nimExt=.png\n"
    )
    info = read_seqinfo(seq / "seqinfo.ini")
    assert (info.frame_rate, info.length, info.width, info.height, info.im_ext) == (7.0, 12, 64, 48, ".png")
    s = MOTSequence.from_folder(seq)
    assert s.name == "SEQ-01" and s.gt_path is None and s.det_path == seq / "det" / "det.txt"
    assert s.image_path(3) == seq / "img1" / "000003.png" and s.num_frames == 12
    assert find_sequences(tmp_path, require="det") == [s]
    assert find_sequences(seq, require="det") == [s]
    assert find_sequences(tmp_path, require="gt") == []
    (tmp_path / "broken.ini").write_text("[Sequence]\nname=x\n")
    with pytest.raises(ValueError, match="missing key 'frameRate'"):
        read_seqinfo(tmp_path / "broken.ini")
    with pytest.raises(FileNotFoundError):
        MOTSequence.from_folder(tmp_path / "absent")


def test_rank_scores_are_the_empirical_cdf_and_ignore_the_scale() -> None:
    from scipy.stats import rankdata

    raw = np.random.default_rng(2).normal(size=300)
    raw[::7] = raw[0]  # ties
    ranked, _ = normalise_scores(raw, mode="rank")
    np.testing.assert_allclose(ranked, rankdata(raw, method="max") / raw.size, rtol=1e-6)
    # Any increasing map of the scores (a detector's scale or spread) gives the same calibration.
    np.testing.assert_array_equal(normalise_scores(100 * raw + 7, mode="rank")[0], ranked)
    np.testing.assert_array_equal(normalise_scores(np.exp(raw), mode="rank")[0], ranked)


def test_normalise_scores() -> None:
    s, note = normalise_scores(np.array([0.2, 0.9]))
    assert s.dtype == np.float32 and s.tolist() == pytest.approx([0.2, 0.9]) and "as given" in note
    acf = np.array([-0.47763, 16.186, 67.001, 138.92])  # MOT15 ACF-like range
    s, note = normalise_scores(acf)
    np.testing.assert_allclose(s, (acf - acf.min()) / (acf.max() - acf.min()), rtol=1e-6)
    assert "min-max" in note
    s, _ = normalise_scores(acf, scale=100.0)
    np.testing.assert_allclose(s, [0.0, 0.16186, 0.67001, 1.0], rtol=1e-5)
    s, note = normalise_scores(acf, mode="none")  # as given: the tracker's score_calibration reads them
    np.testing.assert_allclose(s, acf, rtol=1e-6)
    assert "as given" in note
    with pytest.raises(ValueError, match="score mode"):
        normalise_scores(acf, mode="sigmoid")
    with pytest.raises(ValueError, match="positive"):
        normalise_scores(acf, scale=0.0)
    assert normalise_scores(np.array([5.0, 5.0]))[0].tolist() == [1.0, 1.0]


def test_reads_real_mot_files(shared_data: Path) -> None:
    det = read_mot(shared_data / "MOT17" / "train" / "MOT17-04-FRCNN" / "det" / "det.txt")
    assert det.num_columns == 7 and np.all(np.diff(det.frames) >= 0)
    assert det.frames[0] == 1 and det.last_frame == 1050
    acf = read_mot(shared_data / "MOT15" / "train" / "PETS09-S2L1" / "det" / "det.txt")
    assert len(acf) == 5578 and acf.scores.max() > 100  # unnormalised ACF scores
    gt = read_mot(shared_data / "MOT15" / "train" / "PETS09-S2L1" / "gt" / "gt.txt")
    assert len(gt) == 4650 and np.unique(gt.ids).size == 19


def test_binary_files_are_named_and_utf8_text_is_read(tmp_path: Path) -> None:
    from deepsort_edge.io.mot import MOTFormatError

    row = "1,-1,10,10,20,40,0.9\n"
    # A comment in UTF-8 whose two-byte character straddles the 4096 bytes the check reads.
    text = tmp_path / "det.txt"
    text.write_text("#" + "x" * 4094 + "é\n" + row, encoding="utf-8")
    assert text.read_bytes()[4095:4097] == "é".encode()
    assert len(read_mot(text)) == 1
    png = tmp_path / "det.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(MOTFormatError, match=r"det\.png is a PNG image, not text; expected a MOT text file"):
        read_mot(png)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x07\x12\x07pytorch" + row.encode())  # no NUL, but protobuf control bytes
    with pytest.raises(MOTFormatError, match=r"m\.onnx is an ONNX model, not text"):
        read_mot(model)
