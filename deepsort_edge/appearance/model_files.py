"""Where appearance model files live: the shipped model and the cache of exported ones.

The shipped default model sits in ``models/`` (:func:`default_model_path`);
models exported on demand (timm models by
:meth:`~deepsort_edge.appearance.embedder.DeepSORTFeatureExtractor.from_timm`,
torch modules by the constructor) go to :func:`default_cache_dir`, under names
that say everything that changes the file (:func:`timm_cache_key`).

Example:
    >>> default_model_path().name
    'efficientnet_lite0_128x64_int8.onnx'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..optional import user_cache_dir
from .model_io import check_color_order, check_size, check_triple

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_MODEL_FILENAME",
    "cached_timm_export",
    "default_cache_dir",
    "default_model_path",
    "onnx_model_source",
    "timm_cache_key",
]

#: File name of the shipped default model inside the ``models`` folder.
DEFAULT_MODEL_FILENAME = "efficientnet_lite0_128x64_int8.onnx"


def default_model_path() -> Path:
    """Path of the shipped default model.

    An installed wheel carries it in ``deepsort_edge/models`` (the build maps
    the repository's top-level ``models/`` there); a source checkout has it
    in ``<repo>/models``.

    Raises:
        FileNotFoundError: if neither location holds the model.
    """
    package_dir = Path(__file__).resolve().parents[1]
    candidates = [package_dir / "models", package_dir.parent / "models"]
    for folder in candidates:
        path = folder / DEFAULT_MODEL_FILENAME
        if path.is_file():
            return path
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"default model {DEFAULT_MODEL_FILENAME} not found in: {searched}")


def default_cache_dir() -> Path:
    """Folder for models exported by :meth:`DeepSORTFeatureExtractor.from_timm`.

    ``$DEEPSORT_EDGE_CACHE`` when set, else the platform's user cache folder
    (``optional.user_cache_dir``): ``$XDG_CACHE_HOME/deepsort-edge`` or
    ``~/.cache/deepsort-edge`` on Linux, ``~/Library/Caches/deepsort-edge`` on
    macOS, ``%LOCALAPPDATA%\\deepsort-edge\\Cache`` on Windows.
    """
    env = os.environ.get("DEEPSORT_EDGE_CACHE")
    if env:
        return Path(env).expanduser()
    return user_cache_dir("deepsort-edge")


def timm_cache_key(
    model_name: str,
    input_size: tuple[int, int],
    opset: int,
    precision: str,
    pretrained: bool,
    checkpoint: str | os.PathLike[str] | None,
    model_kwargs: Mapping[str, Any] | None,
) -> str:
    """File stem naming everything that changes the exported model.

    Example:
        >>> timm_cache_key("resnet18.a1_in1k", (128, 64), 17, "fp32", True, None, None)
        'resnet18.a1_in1k_128x64_opset17_fp32'
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name)
    parts = [safe, f"{input_size[0]}x{input_size[1]}", f"opset{opset}", precision]
    extra: dict[str, Any] = {}
    if checkpoint is not None:
        ckpt = Path(checkpoint).expanduser().resolve()
        stat = ckpt.stat() if ckpt.exists() else None
        extra["checkpoint"] = [
            str(ckpt),
            stat.st_size if stat else 0,
            stat.st_mtime_ns if stat else 0,
        ]
    elif not pretrained:
        parts.append("random")
    if model_kwargs:
        extra["kwargs"] = {k: repr(v) for k, v in sorted(model_kwargs.items())}
    if extra:
        digest = hashlib.sha256(json.dumps(extra, sort_keys=True).encode()).hexdigest()[:12]
        parts.append(digest)
    return "_".join(parts)


def cached_timm_export(
    model_name: str,
    folder: Path,
    input_size: tuple[int, int],
    *,
    opset: int,
    precision: str,
    pretrained: bool,
    checkpoint: str | os.PathLike[str] | None,
    calibration_crops: Sequence[np.ndarray] | None,
    model_kwargs: Mapping[str, Any] | None,
) -> Path:
    """The ONNX file of a timm model in ``folder``, exported first on a cache miss.

    The file is named by :func:`timm_cache_key`; an export needs the export
    extra and writes under a temporary name, renamed when complete, so
    concurrent callers never see half a file. A random-weights warning is the
    caller's to give (once, also on a cache hit).

    Raises:
        ImportError: if the file must be exported and torch, timm or onnx is missing.
    """
    path = folder / f"{timm_cache_key(model_name, input_size, opset, precision, pretrained, checkpoint, model_kwargs)}.onnx"
    if not path.is_file():
        try:
            from deepsort_edge.appearance.export import (
                RANDOM_WEIGHTS_WARNING,
                export_timm,
                require_export_extra,
            )

            require_export_extra()
        except ImportError as exc:
            raise ImportError(
                f"from_timm({model_name!r}) must export the model to ONNX first, which needs "
                f'torch, timm and onnx: pip install ".[cpu,export]" in a clone ({exc})'
            ) from exc
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with warnings.catch_warnings():
                # Said once above, also when the file comes from the cache.
                warnings.filterwarnings(
                    "ignore", re.escape(RANDOM_WEIGHTS_WARNING.format(model=model_name))
                )
                export_timm(
                    model_name,
                    tmp,
                    checkpoint=checkpoint,
                    pretrained=pretrained,
                    input_size=input_size,
                    opset=opset,
                    precision=precision,
                    calibration_crops=calibration_crops,
                    model_kwargs=model_kwargs,
                )
            os.replace(tmp, path)  # atomic: concurrent callers never see half a file
        finally:
            tmp.unlink(missing_ok=True)
    return path


def onnx_model_source(
    source: str | os.PathLike[str] | torch.nn.Module,
    cache_dir: str | os.PathLike[str] | None,
    input_size: tuple[int, int] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    color_order: str | None,
) -> tuple[str | os.PathLike[str], Any, Any, Any, Any]:
    """The ONNX file an extractor loads for ``source``, and the preprocessing to load it with.

    An ONNX path passes through with the preprocessing as given (None: read
    from the model later). A torch module or ``.pt``/``.pth`` file is exported
    once into ``<cache_dir>/torch`` (default :func:`default_cache_dir`), with
    roboflow 2.0.1's preprocessing where none is given.

    Returns:
        ``(path, input_size, mean, std, color_order)``.

    Raises:
        ValueError: ``source`` is a URL (nothing is downloaded).
        TypeError: ``source`` is neither a path nor a torch module.
    """
    from deepsort_edge.appearance.export.torch_module import (  # light: torch only on a cache miss
        is_torch_checkpoint,
        is_torch_module,
        onnx_for_torch_model,
    )

    if isinstance(source, str) and re.match(r"[a-z][a-z0-9+.-]*://", source, re.IGNORECASE):
        raise ValueError(
            f"model_or_checkpoint_path: {source!r} is a URL; deepsort-edge downloads nothing "
            "(roboflow 2.0.1 did): download the file and pass its path"
        )
    if is_torch_module(source) or (
        isinstance(source, (str, os.PathLike)) and is_torch_checkpoint(source)
    ):
        # roboflow 2.0.1's feed, unless the caller says otherwise: [0, 1] pixels, no
        # normalisation, the frame's BGR channels in order, 128x128 crops.
        input_size = check_size(input_size if input_size is not None else (128, 128), "input_size")
        mean = check_triple(mean if mean is not None else (0.0, 0.0, 0.0), "mean")
        std = check_triple(std if std is not None else (1.0, 1.0, 1.0), "std")
        color_order = check_color_order(color_order if color_order is not None else "BGR")
        folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        source = onnx_for_torch_model(
            source, folder / "torch", input_size, mean, std, color_order  # type: ignore[arg-type]
        )
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "model_or_checkpoint_path must be the path of an ONNX file or a torch .pt/.pth "
            f"file, or a torch.nn.Module; got {type(source).__name__}"
        )
    return source, input_size, mean, std, color_order
