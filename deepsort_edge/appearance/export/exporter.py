"""Export timm backbones and OSNet checkpoints to self-describing ONNX appearance models.

:func:`export_timm` builds a timm model without its classifier (pooled
features), optionally loads a local checkpoint
(:mod:`deepsort_edge.appearance.export.checkpoints`), exports it to ONNX with a dynamic
batch axis, checks it with ``onnx.checker``, writes the preprocessing
parameters into the file's metadata (:mod:`deepsort_edge.appearance.model_metadata`,
read back by :class:`~deepsort_edge.appearance.embedder.DeepSORTFeatureExtractor`),
optionally converts it to float16 or to static int8
(:mod:`deepsort_edge.appearance.export.quantize`), and verifies ONNX Runtime's output
against torch on the same crops. :func:`export_osnet` does the same for
torchreid / boxmot OSNet checkpoints (:mod:`deepsort_edge.appearance.export.osnet`), and
:func:`export_module` for any torch feature model already built.

Needs the export extra: ``pip install ".[cpu,export]"`` in a clone (torch, timm,
onnx). Those are imported only inside the functions here.

Example:
    >>> from deepsort_edge.appearance.export import export_timm
    >>> report = export_timm("resnet18.a1_in1k", "resnet18.onnx", input_size=(128, 64))  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepsort_edge.appearance.export.calibration import synthetic_crops
from deepsort_edge.appearance.export.checkpoints import load_timm_checkpoint
from deepsort_edge.appearance.export.hub import hub_access, weights_host
from deepsort_edge.appearance.export.onnx_graph import (
    INPUT_NAME,
    convert_float16,
    drop_unused_opsets,
    freeze_same_padding,
    set_metadata,
    traced_graph,
)
from deepsort_edge.appearance.export.quantize import quantize_int8
from deepsort_edge.appearance.export.report import ExportReport, compare_with_torch, file_sha256
from deepsort_edge.appearance.model_metadata import encode_metadata
from deepsort_edge.appearance.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess_images

if TYPE_CHECKING:
    import torch

__all__ = [
    "EXPORT_EXTRA_HINT",
    "PRECISIONS",
    "RANDOM_WEIGHTS_WARNING",
    "ExportReport",
    "convert_float16",
    "export_module",
    "export_osnet",
    "export_timm",
    "require_export_extra",
]

PRECISIONS = ("fp32", "fp16", "int8")
EXPORT_EXTRA_HINT = 'pip install ".[cpu,export]" in a clone of deepsort-edge'
#: Warning for exports without pretrained weights or a checkpoint ({model} is filled in).
RANDOM_WEIGHTS_WARNING = (
    "pretrained=False without a checkpoint: {model} gets random weights, so its features "
    "carry no appearance information; pass checkpoint=PATH or pretrained=True"
)


def require_export_extra(packages: Sequence[str] = ("torch", "timm", "onnx")) -> None:
    """Import the export extra's ``packages``, or raise an ImportError that says how to install them.

    Raises:
        ImportError: naming the missing package and the install command.
    """
    missing = []
    for name in packages:
        try:
            __import__(name)
        except ImportError as exc:
            missing.append(f"{name} ({exc})")
    if missing:
        raise ImportError(
            f"exporting models needs the export extra; missing: {', '.join(missing)}. "
            f"Install it with: {EXPORT_EXTRA_HINT}"
        )


def _log(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- export


def _check_export_args(
    precision: str, input_size: Sequence[int], calibration_crops: Sequence[np.ndarray] | None
) -> tuple[int, int]:
    """Validate what every export takes; returns ``input_size`` as two ints."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if len(input_size) != 2 or min(int(v) for v in input_size) < 16:
        raise ValueError(f"input_size must be (height, width) with sides >= 16, got {input_size!r}")
    if precision == "int8" and not calibration_crops:
        raise ValueError(
            "precision='int8' needs calibration_crops (real BGR crops of the objects to track)"
        )
    return (int(input_size[0]), int(input_size[1]))


def export_timm(
    model_name: str,
    output: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    pretrained: bool | None = None,
    input_size: tuple[int, int] = (128, 64),
    opset: int = 17,
    precision: str = "fp32",
    calibration_crops: Sequence[np.ndarray] | None = None,
    verify: bool = True,
    *,
    verify_crops: Sequence[np.ndarray] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    int8_keep_float: int = 3,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> ExportReport:
    """Export a timm backbone (no classifier) to an ONNX appearance model.

    Args:
        model_name: timm model name (``timm.list_models()``).
        output: ONNX file to write; its folder is created.
        checkpoint: local weights to load (see :func:`load_timm_checkpoint`).
        pretrained: load timm's pretrained weights (default True); ignored
            when a checkpoint is given.
        input_size: crop ``(height, width)`` the model takes.
        opset: ONNX opset.
        precision: ``"fp32"``, ``"fp16"`` (float16 weights and compute,
            float32 interface) or ``"int8"`` (static QDQ quantisation).
        calibration_crops: BGR uint8 crops to calibrate int8 activation
            ranges (real crops from the target domain; required for int8).
        verify: compare ONNX Runtime with torch on ``verify_crops``.
        verify_crops: BGR uint8 crops for verification; default the
            calibration crops, else 64 synthetic crops.
        mean: input mean in RGB order; default the timm model's.
        std: input standard deviation; default the timm model's.
        model_kwargs: extra keyword arguments for ``timm.create_model``.
        int8_keep_float: for int8, how many leading convolutions stay float32
            (the stem and first block are the most sensitive to quantisation).
        progress: print progress to stderr.
        log: callable for progress lines (default: print to stderr).

    Returns:
        An :class:`ExportReport`.

    Raises:
        ImportError: if torch, timm or onnx is missing (with the install command).
        ValueError: for an unknown model or precision, int8 without
            calibration crops, or a checkpoint that does not fit.

    Example:
        >>> export_timm("tf_efficientnet_lite0", "lite0.onnx", checkpoint="lite0.pth",
        ...             input_size=(128, 64), precision="int8",
        ...             calibration_crops=crops)  # doctest: +SKIP
    """
    input_size = _check_export_args(precision, input_size, calibration_crops)
    require_export_extra()
    import timm

    say = log or (lambda message: _log(progress, message))
    if pretrained is None or checkpoint is not None:
        pretrained = checkpoint is None  # a checkpoint replaces every weight: no download
    if not timm.list_models(model_name) and not timm.list_models(model_name.split(".")[0]):
        raise ValueError(f"model_name: {model_name!r} is not a timm model (see timm.list_models())")
    say(f"building {model_name} (pretrained={pretrained}, checkpoint={checkpoint})")
    if not pretrained and checkpoint is None:
        warnings.warn(RANDOM_WEIGHTS_WARNING.format(model=model_name), UserWarning, stacklevel=2)
    reachable = True
    try:
        with contextlib.ExitStack() as stack:
            if pretrained:
                reachable = stack.enter_context(hub_access(model_name))
            # num_classes=0 (pooled features) unless the caller's model_kwargs say otherwise.
            model = timm.create_model(
                model_name, pretrained=pretrained, **{"num_classes": 0, **dict(model_kwargs or {})}
            )
    except (OSError, RuntimeError) as exc:  # hub errors subclass these (offline, no cache)
        if not pretrained:
            raise
        where = "" if reachable else f" ({weights_host(model_name)} is unreachable from here)"
        raise RuntimeError(
            f"could not load pretrained weights for {model_name!r}{where}: {exc}\n"
            "timm downloads them from the model hub on first use; without network access "
            "(and not in the local hub cache) pass checkpoint=PATH (--checkpoint) with local "
            "weights, or pretrained=False for random weights"
        ) from exc
    ignored: tuple[str, ...] = ()
    if checkpoint is not None:
        ignored = load_timm_checkpoint(model, checkpoint)
    model.eval()
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    mean = tuple(float(v) for v in (mean if mean is not None else cfg.get("mean", IMAGENET_MEAN)))
    std = tuple(float(v) for v in (std if std is not None else cfg.get("std", IMAGENET_STD)))
    frozen = freeze_same_padding(model, input_size)
    if frozen:
        say(f"made {frozen} 'SAME' padded convolutions static for {input_size[0]}x{input_size[1]}")
    return export_module(
        model,
        output,
        model_name=model_name,
        input_size=input_size,
        mean=mean,
        std=std,
        opset=opset,
        precision=precision,
        calibration_crops=calibration_crops,
        verify=verify,
        verify_crops=verify_crops,
        int8_keep_float=int8_keep_float,
        checkpoint=checkpoint,
        ignored_keys=ignored,
        log=say,
    )


def export_osnet(
    model_name: str,
    output: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str],
    *,
    input_size: tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **options: Any,
) -> ExportReport:
    """Export a torchreid / boxmot OSNet checkpoint to an ONNX appearance model.

    Builds :class:`~deepsort_edge.appearance.export.osnet.OSNet` of the named width,
    loads the checkpoint (:func:`~deepsort_edge.appearance.export.osnet.load_osnet_checkpoint`:
    the classifier is dropped) and exports the 512-d features with
    :func:`export_module`. Needs torch and onnx (the export extra), no download.

    Args:
        model_name: ``"osnet_x1_0"``, ``"osnet_x0_75"``, ``"osnet_x0_5"`` or ``"osnet_x0_25"``.
        output: ONNX file to write.
        checkpoint: the weights file (``.pth``/``.pt``/``.tar``/``.safetensors``).
        input_size: crop ``(height, width)``; default ``(256, 128)``, what the
            published ReID checkpoints were trained on.
        mean: input mean (RGB); default ImageNet's, what torchreid trains with.
        std: input standard deviation (RGB); default ImageNet's.
        **options: ``opset``, ``precision``, ``calibration_crops``, ``verify``,
            ``verify_crops``, ``int8_keep_float``, ``progress``, ``log``: as for
            :func:`export_module`.

    Returns:
        An :class:`ExportReport`.

    Raises:
        ValueError: for another model name, or a checkpoint that is not that OSNet.
        FileNotFoundError: if the checkpoint does not exist.

    Example:
        >>> export_osnet("osnet_x0_25", "osnet.onnx", "osnet_x0_25_msmt17.pth")  # doctest: +SKIP
    """
    require_export_extra()
    from deepsort_edge.appearance.export.osnet import OSNET_INPUT_SIZE, build_osnet, load_osnet_checkpoint

    model = build_osnet(model_name)
    ignored = load_osnet_checkpoint(model, checkpoint)
    return export_module(
        model,
        output,
        model_name=model_name,
        input_size=OSNET_INPUT_SIZE if input_size is None else input_size,
        mean=IMAGENET_MEAN if mean is None else mean,
        std=IMAGENET_STD if std is None else std,
        checkpoint=checkpoint,
        ignored_keys=ignored,
        **options,
    )


def export_module(
    model: torch.nn.Module,
    output: str | os.PathLike[str],
    *,
    model_name: str,
    input_size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    opset: int = 17,
    precision: str = "fp32",
    calibration_crops: Sequence[np.ndarray] | None = None,
    verify: bool = True,
    verify_crops: Sequence[np.ndarray] | None = None,
    int8_keep_float: int = 3,
    checkpoint: str | os.PathLike[str] | None = None,
    ignored_keys: Sequence[str] = (),
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> ExportReport:
    """Export a built torch feature model (weights loaded, eval mode) to an ONNX appearance model.

    The part of :func:`export_timm` after the model is built, for any module
    mapping ``[N, 3, H, W]`` normalised RGB crops to ``[N, D]`` (or
    ``[N, D, 1, 1]``) features: ONNX with a dynamic batch axis, the
    preprocessing metadata, optional float16 / int8, verification against torch.

    Args:
        model: the torch module, in eval mode.
        output: ONNX file to write; its folder is created.
        model_name: name recorded in the metadata (``source_model``) and report.
        input_size: crop ``(height, width)`` the model takes.
        mean: input mean in RGB order, on pixels scaled to [0, 1].
        std: input standard deviation in RGB order.
        checkpoint: the weights file the model was loaded from, for the report.
        ignored_keys: checkpoint keys that were not loaded, for the report.
        opset, precision, calibration_crops, verify, verify_crops,
            int8_keep_float, progress, log: as for :func:`export_timm`.

    Returns:
        An :class:`ExportReport`.

    Raises:
        ValueError: for an unknown precision, a bad input size or int8
            without calibration crops.

    Example:
        >>> export_module(model, "reid.onnx", model_name="my_reid", input_size=(256, 128),
        ...               mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))  # doctest: +SKIP
    """
    input_size = _check_export_args(precision, input_size, calibration_crops)
    require_export_extra()
    import torch

    say = log or (lambda message: _log(progress, message))
    mean = tuple(float(v) for v in mean)
    std = tuple(float(v) for v in std)
    with torch.no_grad():
        feature_dim = int(model(torch.zeros(1, 3, *input_size)).reshape(1, -1).shape[1])

    output = Path(output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    metadata = encode_metadata(input_size, mean, std, "RGB", feature_dim, model_name, precision)
    _write_onnx(model, output, model_name, input_size, mean, std, opset, precision,
                calibration_crops, int8_keep_float, metadata, say)
    say(f"saved {output}")

    report: dict[str, Any] = {}
    if verify:
        if verify_crops is not None:
            crops, source = list(verify_crops), "given"
        elif calibration_crops:
            crops, source = list(calibration_crops), "calibration"
        else:
            crops, source = synthetic_crops(64), "synthetic"
        report = {**compare_with_torch(model, output, crops, input_size, mean, std), "verify_source": source}
    result = ExportReport(
        output=output,
        model_name=model_name,
        precision=precision,
        input_size=input_size,
        opset=opset,
        feature_dim=feature_dim,
        file_size=output.stat().st_size,
        sha256=file_sha256(output),
        checkpoint=str(checkpoint) if checkpoint is not None else None,
        checkpoint_sha256=file_sha256(Path(checkpoint).expanduser())
        if checkpoint is not None
        else None,
        ignored_keys=tuple(ignored_keys),
        metadata=metadata,
        **report,
    )
    say(result.summary())
    return result


def _write_onnx(
    model: torch.nn.Module,
    output: Path,
    model_name: str,
    input_size: tuple[int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    opset: int,
    precision: str,
    calibration_crops: Sequence[np.ndarray] | None,
    int8_keep_float: int,
    metadata: dict[str, str],
    say: Callable[[str], None],
) -> None:
    """Export, fold, check and label the graph, convert it to ``precision``, and save it to ``output``."""
    import onnx

    with tempfile.TemporaryDirectory(prefix="deepsort-edge-export-") as tmp:
        workdir = Path(tmp)
        fp32_path = workdir / "fp32.onnx"
        say(f"exporting to ONNX (opset {opset}, dynamic batch)")
        proto = traced_graph(model, input_size, opset, workdir, f"{model_name} appearance features, {precision}")
        set_metadata(proto, metadata)
        if precision == "fp16":
            say("converting to float16")
            proto = convert_float16(proto)
            onnx.checker.check_model(proto)
        if precision == "int8":
            onnx.save(proto, str(fp32_path))
            calibration = preprocess_images(list(calibration_crops or []), input_size, mean, std)
            say(f"quantising to int8 (static QDQ, {len(calibration)} calibration crops)")
            int8_path = workdir / "int8.onnx"
            quantize_int8(fp32_path, int8_path, calibration, workdir, int8_keep_float, INPUT_NAME)
            proto = onnx.load(str(int8_path))
            proto.producer_name = "deepsort-edge"
            drop_unused_opsets(proto)
            set_metadata(proto, metadata)  # the quantiser may drop metadata_props
            onnx.checker.check_model(proto)
        onnx.save(proto, str(output))
