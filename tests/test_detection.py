"""deepsort_edge.detection against independent references.

Each layout: a tiny ONNX graph built here emits a known raw output, and the
detector's boxes are checked against a plain per-row decoding written below
(to 1e-4 px, mapped back to the frame). NMS is checked against
``cv2.dnn.NMSBoxes`` / ``NMSBoxesBatched``; the letterbox against the pixels
it produces.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.detector_models import constant_detector, yolov8_raw

pytest.importorskip("onnx")

FRAME = (48, 80)  # (height, width) of the test frames: wider than the square input
INPUT = (64, 64)


# --------------------------------------------------------------------------- references
def ref_letterbox_params(frame, size, corner=False):
    """(scale_x, scale_y, pad_x, pad_y) of a letterbox, from the resized image's integer size."""
    (fh, fw), (ih, iw) = frame, size
    ratio = min(ih / fh, iw / fw)
    new_w, new_h = int(round(fw * ratio)), int(round(fh * ratio))
    pad_x = 0 if corner else (iw - new_w) // 2
    pad_y = 0 if corner else (ih - new_h) // 2
    return new_w / fw, new_h / fh, pad_x, pad_y


def ref_to_frame(box, params, frame):
    sx, sy, px, py = params
    fh, fw = frame
    x1, y1, x2, y2 = box
    out = [(x1 - px) / sx, (y1 - py) / sy, (x2 - px) / sx, (y2 - py) / sy]
    return [min(max(out[0], 0), fw), min(max(out[1], 0), fh), min(max(out[2], 0), fw), min(max(out[3], 0), fh)]


def ref_rows_yolov5(raw):
    rows = []
    for cx, cy, w, h, obj, *cls in raw[0].tolist():
        best = max(range(len(cls)), key=lambda c: cls[c])
        rows.append(([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], obj * cls[best], best))
    return rows


def ref_rows_yolov8(raw):
    columns = raw[0].T.tolist()
    rows = []
    for cx, cy, w, h, *cls in columns:
        best = max(range(len(cls)), key=lambda c: cls[c])
        rows.append(([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], cls[best], best))
    return rows


def ref_rows_end2end(raw):
    return [([x1, y1, x2, y2], s, int(round(c))) for x1, y1, x2, y2, s, c in raw[0].tolist()]


def ref_rows_yolox(raw, size, strides=(8, 16, 32)):
    decoded = []
    index = 0
    for stride in strides:
        for gy in range(size[0] // stride):
            for gx in range(size[1] // stride):
                tx, ty, tw, th, *rest = raw[0][index].tolist()
                decoded.append([(tx + gx) * stride, (ty + gy) * stride, math.exp(tw) * stride,
                                math.exp(th) * stride, *rest])
                index += 1
    assert index == raw.shape[1]
    return ref_rows_yolov5(np.array([decoded]))


def ref_rows_detr(boxes, logits, size, softmax=False):
    rows = []
    for (cx, cy, w, h), row in zip(boxes[0].tolist(), logits[0].tolist()):
        if softmax:
            total = sum(math.exp(v) for v in row)
            probs = [math.exp(v) / total for v in row][:-1]
        else:
            probs = [1 / (1 + math.exp(-v)) for v in row]
        best = max(range(len(probs)), key=lambda c: probs[c])
        ih, iw = size
        rows.append(([(cx - w / 2) * iw, (cy - h / 2) * ih, (cx + w / 2) * iw, (cy + h / 2) * ih], probs[best], best))
    return rows


def check(detector, rows, params, threshold=0.0):
    """The detector's output on a blank frame equals the reference rows above the threshold."""
    frame = np.zeros((*FRAME, 3), np.uint8)
    xyxy, scores, class_ids = detector.detect_arrays(frame)
    expected = [(ref_to_frame(b, params, FRAME), s, c) for b, s, c in rows if s >= threshold]
    expected = [e for e in expected if e[0][2] > e[0][0] and e[0][3] > e[0][1]]
    expected.sort(key=lambda e: -e[1])
    assert len(xyxy) == len(expected)
    np.testing.assert_allclose(xyxy, np.array([e[0] for e in expected]).reshape(-1, 4), atol=1e-4, rtol=0)
    np.testing.assert_allclose(scores, [e[1] for e in expected], atol=1e-6)
    assert class_ids.tolist() == [e[2] for e in expected]


def make(tmp_path, outputs, **kwargs):
    from deepsort_edge.detection import ONNXDetector

    metadata = kwargs.pop("metadata", None)
    names = kwargs.pop("output_names", None)
    dynamic = kwargs.pop("dynamic", False)
    path = constant_detector(tmp_path / "det.onnx", outputs, INPUT, metadata, names, dynamic)
    kwargs.setdefault("providers", "cpu")
    kwargs.setdefault("nms", False)
    kwargs.setdefault("score_threshold", 0.0)
    kwargs.setdefault("max_detections", 10_000)
    return ONNXDetector(path, **kwargs)


# --------------------------------------------------------------------------- layouts
@pytest.mark.parametrize("dynamic", [False, True])
def test_yolov8_layout(tmp_path, dynamic):
    raw = yolov8_raw(np.random.default_rng(0), 50, 3, INPUT)
    det = make(tmp_path, [raw], score_threshold=0.3, dynamic=dynamic)
    assert det.layout == "yolov8"
    check(det, ref_rows_yolov8(raw), ref_letterbox_params(FRAME, INPUT), 0.3)


def test_yolov5_layout(tmp_path):
    rng = np.random.default_rng(1)
    raw = yolov8_raw(rng, 3 * 84, 2, INPUT)[0].T  # (N, 4 + C) ...
    raw = np.concatenate([raw[:, :4], rng.uniform(0, 1, (raw.shape[0], 1)), raw[:, 4:]], axis=1)[None]
    det = make(tmp_path, [raw], score_threshold=0.2)
    assert det.layout == "yolov5"  # three anchors per cell of strides 8, 16, 32 on 64 x 64
    check(det, ref_rows_yolov5(raw), ref_letterbox_params(FRAME, INPUT), 0.2)


def test_end2end_layout(tmp_path):
    rng = np.random.default_rng(2)
    corners = np.sort(rng.uniform(-5, 70, (30, 2, 2)), axis=1).reshape(30, 4)  # x1 <= x2, y1 <= y2
    raw = np.concatenate([corners, rng.uniform(0, 1, (30, 1)), rng.integers(0, 5, (30, 1))], axis=1)[None]
    det = make(tmp_path, [raw], nms=None)
    assert det.layout == "end2end" and det.nms is False
    check(det, ref_rows_end2end(raw), ref_letterbox_params(FRAME, INPUT))


def test_yolox_layout_decodes_the_grid(tmp_path):
    rng = np.random.default_rng(3)
    cells = (64 // 8) ** 2 + (64 // 16) ** 2 + (64 // 32) ** 2
    raw = np.concatenate([rng.uniform(0, 1, (cells, 2)), rng.uniform(-1, 1.5, (cells, 2)),
                          rng.uniform(0, 1, (cells, 4))], axis=1)[None]
    det = make(tmp_path, [raw], score_threshold=0.1)
    assert det.layout == "yolox"  # one row per cell
    assert det.preprocessing.color_order == "BGR" and det.preprocessing.scale == 1.0
    check(det, ref_rows_yolox(raw, INPUT), ref_letterbox_params(FRAME, INPUT, corner=True), 0.1)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_detr_layout(tmp_path, activation):
    rng = np.random.default_rng(4)
    boxes = np.concatenate([rng.uniform(0.1, 0.9, (20, 2)), rng.uniform(0.05, 0.5, (20, 2))], axis=1)[None]
    logits = rng.normal(0, 2, (1, 20, 4))
    det = make(tmp_path, [logits, boxes], output_names=["pred_logits", "pred_boxes"], activation=activation)
    assert det.layout == "detr" and det.preprocessing.resize == "resize"
    fh, fw = FRAME
    params = (INPUT[1] / fw, INPUT[0] / fh, 0, 0)  # plain resize
    check(det, ref_rows_detr(boxes, logits, INPUT, activation == "softmax"), params)


def test_layout_named_explicitly_and_unknown_shapes(tmp_path):
    from deepsort_edge.detection import ONNXDetector

    raw = np.zeros((1, 7, 6))  # 7 rows of 6: not one or three per cell: end2end by shape ...
    assert make(tmp_path, [raw]).layout == "end2end"
    assert make(tmp_path, [raw], layout="yolov5").layout == "yolov5"  # ... unless named
    path = constant_detector(tmp_path / "odd.onnx", [np.zeros((1, 10))], INPUT)
    with pytest.raises(ValueError, match="layout="):
        ONNXDetector(path, providers="cpu")
    with pytest.raises(ValueError, match="layout must be one of"):
        ONNXDetector(path, providers="cpu", layout="yolo")


def test_ultralytics_metadata_names_and_class_filter(tmp_path):
    raw = yolov8_raw(np.random.default_rng(5), 40, 3, INPUT)
    meta = {"names": "{0: 'person', 1: 'bicycle', 2: 'car'}", "imgsz": "[64, 64]", "stride": "32"}
    det = make(tmp_path, [raw], metadata=meta, classes=["person", "car"], score_threshold=0.25)
    rows = [r for r in ref_rows_yolov8(raw) if r[2] in (0, 2)]
    check(det, rows, ref_letterbox_params(FRAME, INPUT), 0.25)
    found = det(np.zeros((*FRAME, 3), np.uint8))
    assert set(found.data["class_name"]) <= {"person", "car"} and len(found) > 0
    assert [det.class_names[c] for c in found.class_id] == list(found.data["class_name"])
    with pytest.raises(ValueError, match="unknown class name 'dog'"):
        make(tmp_path, [raw], metadata=meta, classes=["dog"])


def test_nms_is_class_aware_in_the_detector(tmp_path):
    # Two near-identical boxes of class 0 and one of class 1 on top of them.
    raw = np.array([[[10, 10, 40, 40, 0.9, 0], [11, 10, 41, 40, 0.8, 0], [10, 10, 40, 40, 0.7, 1]]], float)
    det = make(tmp_path, [raw], layout="end2end", nms=True)
    _, scores, class_ids = det.detect_arrays(np.zeros((*FRAME, 3), np.uint8))
    np.testing.assert_allclose(scores, [0.9, 0.7], atol=1e-6)
    assert class_ids.tolist() == [0, 1]


def test_preprocessing_matches_a_plain_letterbox(tmp_path):
    import cv2

    det = make(tmp_path, [np.zeros((1, 6, 300))])
    frame = np.random.default_rng(6).integers(0, 256, (*FRAME, 3), dtype=np.uint8)
    blob, transform = det.preprocess(frame)
    sx, sy, px, py = ref_letterbox_params(FRAME, INPUT)
    new_w, new_h = round(FRAME[1] * sx), round(FRAME[0] * sy)
    expected = np.full((*INPUT, 3), 114, np.uint8)
    expected[py : py + new_h, px : px + new_w] = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    expected = expected[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255
    assert blob.shape == (1, 3, *INPUT) and blob.dtype == np.float32
    np.testing.assert_allclose(blob, expected, atol=1e-6)
    assert transform.pad == (px, py)


def test_bad_inputs(tmp_path):
    from deepsort_edge.detection import ONNXDetector

    with pytest.raises(FileNotFoundError, match="model_path"):
        ONNXDetector(tmp_path / "missing.onnx")
    det = make(tmp_path, [np.zeros((1, 6, 300))])
    with pytest.raises(ValueError, match="frame must be"):
        det.detect_arrays(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="score_threshold"):
        make(tmp_path, [np.zeros((1, 6, 300))], score_threshold=2)


# --------------------------------------------------------------------------- letterbox
@pytest.mark.parametrize("mode", ["letterbox", "letterbox-corner", "resize"])
def test_letterbox_round_trip(mode):
    from deepsort_edge.detection.letterbox import plan_transform

    rng = np.random.default_rng(7)
    for _ in range(50):
        frame = (int(rng.integers(20, 2000)), int(rng.integers(20, 2000)))
        size = (int(rng.integers(32, 1300)), int(rng.integers(32, 1300)))
        t = plan_transform(frame, size, mode)
        xy = rng.uniform(0, 1, (20, 2, 2)) * np.array([frame[1], frame[0]])
        boxes = np.sort(xy, axis=1).reshape(20, 4)  # x1 <= x2, y1 <= y2
        np.testing.assert_allclose(t.to_frame(t.to_input(boxes)), boxes, atol=1e-4, rtol=0)


def test_letterbox_geometry_matches_the_pixels():
    """A white rectangle in the frame lands where the transform says (within the resize blur)."""
    from deepsort_edge.detection.letterbox import fit_to_input

    frame = np.zeros((360, 480, 3), np.uint8)
    frame[100:200, 150:300] = 255  # box (150, 100, 300, 200)
    image, t = fit_to_input(frame, (320, 320))
    ys, xs = np.nonzero(image[:, :, 0] > 127)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], float)
    np.testing.assert_allclose(t.to_input(np.array([[150, 100, 300, 200]])), found, atol=1.0)
    assert (image[: int(t.pad[1])] == 114).all()  # the border


# --------------------------------------------------------------------------- NMS
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_matches_opencv(seed, threshold):
    import cv2

    from deepsort_edge.detection.nms import nms

    rng = np.random.default_rng(seed)
    n = 200
    xy = rng.uniform(0, 300, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    scores = rng.permutation(n) / n + 0.001  # distinct: tie order is not part of the contract
    tlwh = np.concatenate([xy, wh], axis=1)
    xyxy = np.concatenate([xy, xy + wh], axis=1)
    expected = cv2.dnn.NMSBoxes(tlwh.tolist(), scores.tolist(), 0.0, threshold)
    assert nms(xyxy, scores, threshold).tolist() == np.asarray(expected).reshape(-1).tolist()
    classes = rng.integers(0, 4, n)
    batched = cv2.dnn.NMSBoxesBatched(tlwh.tolist(), scores.tolist(), classes.tolist(), 0.0, threshold)
    assert nms(xyxy, scores, threshold, classes).tolist() == np.asarray(batched).reshape(-1).tolist()


def test_nms_edge_cases():
    from deepsort_edge.detection.nms import nms

    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    boxes = np.array([[0, 0, 10, 10]] * 3, float)
    assert nms(boxes, np.array([0.1, 0.3, 0.2]), 0.5).tolist() == [1]
    assert nms(boxes, np.array([0.1, 0.3, 0.2]), 1.0, max_detections=2).tolist() == [1, 2]
    with pytest.raises(ValueError, match="xyxy"):
        nms(np.zeros((2, 3)), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(boxes, np.zeros(3), 1.5)


# --------------------------------------------------------------------------- HOG
def test_hog_people_detector(shared_data):
    import cv2

    from deepsort_edge.detection import HOGPeopleDetector
    from deepsort_edge.detection.hog import HOG_UNAVAILABLE

    if not hasattr(cv2, "HOGDescriptor"):
        with pytest.raises(ImportError, match="opencv-python-headless<5"):
            HOGPeopleDetector()
        assert "\n" not in HOG_UNAVAILABLE
        pytest.skip(f"OpenCV {cv2.__version__} has no HOGDescriptor (the error is checked above); "
                    "run this test with opencv-python-headless<5 for the detector itself")
    frame = cv2.imread(str(shared_data / "MOT15" / "train" / "PETS09-S2L1" / "img1" / "000001.jpg"))
    detector = HOGPeopleDetector(upscale=1.5)
    xyxy, scores, class_ids = detector.detect_arrays(frame)
    assert len(xyxy) >= 1 and (class_ids == 0).all()
    assert ((scores >= 0.5) & (scores < 1)).all() and (np.diff(scores) <= 0).all()
    h, w = frame.shape[:2]
    assert (xyxy[:, 0] >= 0).all() and (xyxy[:, 2] <= w).all() and (xyxy[:, 3] <= h).all()
    # At least one detection overlaps a ground-truth person (IoU > 0.3): it finds people.
    gt = np.loadtxt(shared_data / "MOT15" / "train" / "PETS09-S2L1" / "gt" / "gt.txt", delimiter=",")
    gt = gt[gt[:, 0] == 1][:, 2:6]
    gt_xyxy = np.concatenate([gt[:, :2], gt[:, :2] + gt[:, 2:]], axis=1)
    inter_w = np.clip(np.minimum(xyxy[:, None, 2], gt_xyxy[None, :, 2]) - np.maximum(xyxy[:, None, 0], gt_xyxy[None, :, 0]), 0, None)
    inter_h = np.clip(np.minimum(xyxy[:, None, 3], gt_xyxy[None, :, 3]) - np.maximum(xyxy[:, None, 1], gt_xyxy[None, :, 1]), 0, None)
    inter = inter_w * inter_h
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    iou = inter / (area(xyxy)[:, None] + area(gt_xyxy)[None, :] - inter)
    assert iou.max() > 0.3
    assert len(detector(frame)) == len(xyxy)


# --------------------------------------------------------------------------- quantize
def test_quantize_a_detector_on_frames(tmp_path, capsys):
    import cv2
    import onnx
    import onnxruntime as ort

    from deepsort_edge.cli.__main__ import main
    from deepsort_edge.detection import ONNXDetector
    from tests.detector_models import conv_detector

    model = conv_detector(tmp_path / "det.onnx", metadata={"names": "{0: 'person', 1: 'car'}"})
    rng = np.random.default_rng(8)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (FRAME[1], FRAME[0]))
    for _ in range(20):
        writer.write(cv2.GaussianBlur(rng.integers(0, 256, (*FRAME, 3), dtype=np.uint8), (5, 5), 0))
    writer.release()
    out = tmp_path / "det-int8.onnx"
    rc = main(["quantize", str(model), "-o", str(out), "--detector", "--calibration-data", str(video),
               "--calibration-count", "8", "--verify-count", "4"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "float32 detections" in captured.out and "calibrated on 8 frames" in captured.out
    proto = onnx.load(str(out))
    assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["names"] == "{0: 'person', 1: 'car'}" and meta["precision"] == "int8"
    # The int8 graph computes what the float32 one does, to int8 precision (raw outputs, ONNX Runtime direct).
    blob = ONNXDetector(model, providers="cpu").preprocess(cv2.VideoCapture(str(video)).read()[1])[0]
    raw = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"images": blob})[0]
           for p in (model, out)]
    np.testing.assert_allclose(raw[1], raw[0], atol=0.03 * 64)
    assert ONNXDetector(out, providers="cpu").class_names == {0: "person", 1: "car"}
