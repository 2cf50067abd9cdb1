"""Appearance embeddings for DeepSORT on ONNX Runtime.

:class:`DeepSORTFeatureExtractor` crops each detection from a BGR frame,
preprocesses the crops in one vectorised pass (:mod:`deepsort_edge.appearance.preprocess`)
and runs them through an ONNX model in batches, returning one L2-normalised
``float32`` row per detection. It keeps the API of roboflow trackers'
extractor (``from_timm``, ``extract_features(frame, detections)``) but never
imports torch: timm models are exported to ONNX once (see
:mod:`deepsort_edge.appearance.export`) and cached.

A model file is self-describing when it carries deepsort-edge metadata
(:mod:`deepsort_edge.appearance.model_metadata`: ``input_size``, ``mean``, ``std``,
``color_order``, ``feature_dim``, ``source_model``, written by the exporter);
files without it, such as third-party ReID models, take those values as
arguments. Execution providers are chosen by :mod:`deepsort_edge.appearance.providers`.

Example:
    >>> import numpy as np
    >>> from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor
    >>> fx = DeepSORTFeatureExtractor.default()
    >>> frame = np.zeros((480, 640, 3), dtype=np.uint8)
    >>> fx.extract_features(frame, np.array([[10, 20, 60, 140]])).shape
    (1, 1280)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepsort_edge.appearance.model_metadata import METADATA_KEYS, decode_metadata
from deepsort_edge.appearance.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    as_xyxy,
    check_bgr_image,
    preprocess_crops,
    preprocess_images,
)
from deepsort_edge.appearance.providers import (
    CPU_PROVIDER,
    ProviderSpec,
    create_session,
    make_session_options,
    providers_for_device,
    resolve_providers,
)

from .runtime import import_onnxruntime
from ..optional import user_cache_dir

ort = import_onnxruntime()  # a clear ImportError naming the install routes when none is installed

if TYPE_CHECKING:
    import supervision as sv
    import torch

__all__ = [
    "DEFAULT_MODEL_FILENAME",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "METADATA_KEYS",
    "DeepSORTFeatureExtractor",
    "default_cache_dir",
    "default_model_path",
]

#: File name of the shipped default model inside the ``models`` folder.
DEFAULT_MODEL_FILENAME = "efficientnet_lite0_128x64_int8.onnx"


#: Keywords of ``from_timm`` that configure the extractor rather than ``timm.create_model``.
_CONSTRUCTOR_OPTIONS = frozenset(
    {"mean", "std", "color_order", "session_options", "intra_op_num_threads", "graph_optimization_level"}
)

# --------------------------------------------------------------------------- paths


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


def _l2_normalise(features: np.ndarray) -> np.ndarray:
    """Row-normalise; rows with zero or non-finite norm get the constant unit vector.

    ReLU-capped backbones can output all zeros for a flat crop (a 1-pixel or
    uniform window); the constant vector ``1/sqrt(D)`` keeps such rows finite
    and unit-norm, close to other featureless crops and far from textured ones.
    """
    features = features.astype(np.float32, copy=False)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] < 1e-12)
    safe = np.where(bad[:, None], 1.0, norms)
    out = features / safe
    if bad.any():
        if not np.isfinite(features[bad]).all():
            warnings.warn(
                f"the appearance model returned non-finite values for {int(bad.sum())} crop(s); "
                "using the constant unit vector for them",
                RuntimeWarning,
                stacklevel=3,
            )
        out[bad] = np.float32(1.0 / math.sqrt(features.shape[1]))
    return out


def _triple(value: Sequence[float], name: str) -> tuple[float, float, float]:
    try:
        triple = tuple(float(v) for v in value)
    except TypeError as exc:
        raise TypeError(f"{name} must be a sequence of 3 numbers, got {value!r}") from exc
    if len(triple) != 3 or not all(math.isfinite(v) for v in triple):
        raise ValueError(f"{name} must be 3 finite numbers, got {value!r}")
    if name == "std" and any(v <= 0 for v in triple):
        raise ValueError(f"std must be positive, got {value!r}")
    return triple  # type: ignore[return-value]


def _color_order(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in ("RGB", "BGR"):
        raise ValueError(f"color_order must be 'RGB' or 'BGR', got {value!r}")
    return value.upper()


#: Largest model input side: re-id inputs are a few hundred pixels; a batch of
#: larger crops would need gigabytes.
MAX_INPUT_SIDE = 1024


class ModelError(ValueError):
    """The appearance model gave output that cannot be features: one row of ``D >= 1`` values per crop."""


def _size(value: Sequence[int], name: str) -> tuple[int, int]:
    try:
        size = tuple(int(v) for v in value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{name} must be (height, width), got {value!r}") from exc
    if len(size) != 2 or min(size) < 1 or max(size) > MAX_INPUT_SIDE:
        raise ValueError(f"{name} must be (height, width) with sides in [1, {MAX_INPUT_SIDE}], got {value!r}")
    return size  # type: ignore[return-value]


def _check_output_shape(shape: list, model: str) -> None:
    """Features are ``[N, D]`` or ``[N, D, 1, 1]``; a map such as ``[N, 8, 8]`` is no feature vector."""
    if len(shape) > 2 and any(d != 1 for d in shape[2:] if isinstance(d, int)):
        raise ModelError(
            f"{model}: the model's output has shape {shape}; expected [N, D] or [N, D, 1, 1] "
            "(a feature map needs pooling before it can be compared)"
        )


# ------------------------------------------------------------------------- extractor


class DeepSORTFeatureExtractor:
    """DeepSORT appearance feature extractor on ONNX Runtime.

    Drop-in for ``trackers.DeepSORTFeatureExtractor`` (roboflow trackers
    2.0.1), including its positional form ``(model_or_checkpoint_path,
    device, input_size)``: build it from an ONNX file (:meth:`from_onnx`, or
    the constructor), from a ``torch.nn.Module`` or a ``.pt``/``.pth`` file
    holding one (exported to ONNX once and cached, see below), from a timm
    model name (:meth:`from_timm`) or from the shipped model
    (:meth:`default`), then call :meth:`extract_features` once per frame.

    A torch model is exported through the export extra (torch, onnx) into
    ``<cache_dir>/torch`` under a name derived from its weights and
    architecture (or the checkpoint file's bytes), the input size and the
    preprocessing (:func:`deepsort_edge.appearance.export.torch_module.onnx_for_torch_model`);
    the next construction with the same content loads that file. Unless given,
    its preprocessing is 2.0.1's: ``128x128`` crops, pixels scaled to
    ``[0, 1]`` without mean/std, channels in the frame's BGR order.

    Args:
        model_or_checkpoint_path: an ONNX model with one input
            ``[N, 3, H, W]`` and one output ``[N, D]`` (or ``[N, D, 1, 1]``);
            a ``torch.nn.Module``; or a ``.pt``/``.pth`` file holding a
            pickled module (loaded with ``weights_only=False`` as 2.0.1 did,
            so only files you trust).
        device: roboflow's device string (``"auto"``, ``"cpu"``, ``"cuda"``,
            ``"cuda:1"``, ``"mps"``), or an ONNX Runtime provider name or
            list; ignored when ``providers`` is given.
        input_size: ``(height, width)`` of the model input; default from the
            model's metadata, else from its static input shape (``(128, 128)``
            for torch models).
        providers: ``"auto"``, a provider name or a list; see
            :func:`deepsort_edge.appearance.providers.resolve_providers`.
        mean: per-channel mean of ``[0, 1]`` pixels, in ``color_order``;
            default from metadata, else ImageNet's (with a warning).
        std: per-channel standard deviation; as ``mean``.
        color_order: ``"RGB"`` or ``"BGR"``, the order the model expects;
            default from metadata, else ``"RGB"``.
        batch_size: most crops per inference call.
        session_options: an ``onnxruntime.SessionOptions`` to start from.
        intra_op_num_threads: threads ONNX Runtime uses inside an operator
            (``None``: its default, all physical cores).
        graph_optimization_level: ``"disable"``, ``"basic"``, ``"extended"``
            or ``"all"`` (``None``: keep the session options' level).
        cache_dir: folder for exported torch models (default
            :func:`default_cache_dir`).

    Attributes:
        device: where the session runs, in roboflow's words (``"cpu"``,
            ``"cuda:0"``, ...; see :attr:`device`).
        model: the ``onnxruntime.InferenceSession`` (2.0.1's ``model`` was the
            torch module); :attr:`model_path` is its file.
        transform: one BGR crop -> the model's ``(3, H, W)`` float32 input
            (2.0.1's ``transform`` returned a torch tensor).

    Raises:
        FileNotFoundError: if the model file does not exist.
        ValueError: if the file is not a loadable ONNX model, its input is
            not ``[N, 3, H, W]``, a provider is not available, or a torch
            file holds no module.
        ImportError: if a torch model must be exported and torch or onnx is
            missing (the message names ``pip install "deepsort-edge[export]"``).

    Example:
        >>> fx = DeepSORTFeatureExtractor.from_onnx(
        ...     "osnet_x0_25_msmt17.onnx", input_size=(256, 128),
        ...     mean=IMAGENET_MEAN, std=IMAGENET_STD)  # doctest: +SKIP
        >>> features = fx.extract_features(frame, detections)  # doctest: +SKIP
        >>> fx = DeepSORTFeatureExtractor(my_torch_reid_net, "cpu", (256, 128))  # doctest: +SKIP
    """

    def __init__(
        self,
        model_or_checkpoint_path: str | os.PathLike[str] | torch.nn.Module,
        device: str | Sequence[ProviderSpec] | None = "auto",
        input_size: tuple[int, int] | None = None,
        *,
        providers: str | Sequence[ProviderSpec] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        color_order: str | None = None,
        batch_size: int = 32,
        session_options: ort.SessionOptions | None = None,
        intra_op_num_threads: int | None = None,
        graph_optimization_level: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        from deepsort_edge.appearance.export.torch_module import (  # light: torch only on a cache miss
            is_torch_checkpoint,
            is_torch_module,
            onnx_for_torch_model,
        )

        source = model_or_checkpoint_path
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
            input_size = _size(input_size if input_size is not None else (128, 128), "input_size")
            mean = _triple(mean if mean is not None else (0.0, 0.0, 0.0), "mean")
            std = _triple(std if std is not None else (1.0, 1.0, 1.0), "std")
            color_order = _color_order(color_order if color_order is not None else "BGR")
            folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
            source = onnx_for_torch_model(
                source, folder / "torch", input_size, mean, std, color_order  # type: ignore[arg-type]
            )
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(
                "model_or_checkpoint_path must be the path of an ONNX file or a torch .pt/.pth "
                f"file, or a torch.nn.Module; got {type(source).__name__}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model_or_checkpoint_path: ONNX model not found: {path}")
        if providers is None:
            providers = device if device is None or not isinstance(device, str) else providers_for_device(device)
        self.model_path = path
        self.batch_size = batch_size
        # Kept so that a pickled extractor (inside a pickled tracker) can
        # rebuild its session; a custom SessionOptions object is not kept.
        self._init_args = dict(
            model_path=str(path), providers=providers, input_size=input_size, mean=mean, std=std,
            color_order=color_order, batch_size=batch_size,
            intra_op_num_threads=intra_op_num_threads, graph_optimization_level=graph_optimization_level,
        )
        self._requested = resolve_providers(providers)
        options = make_session_options(session_options, intra_op_num_threads, graph_optimization_level)
        self._session = create_session(path, options, self._requested)
        self._bind_io(input_size, mean, std, color_order)

    # -- construction -----------------------------------------------------------

    @classmethod
    def from_onnx(
        cls,
        path: str | os.PathLike[str],
        providers: str | Sequence[ProviderSpec] | None = "auto",
        **kwargs: Any,
    ) -> DeepSORTFeatureExtractor:
        """Load an ONNX model; keyword arguments as for the constructor.

        Example:
            >>> fx = DeepSORTFeatureExtractor.from_onnx("reid.onnx", providers="cpu")  # doctest: +SKIP
        """
        return cls(path, providers=providers, **kwargs)

    @classmethod
    def default(
        cls, providers: str | Sequence[ProviderSpec] | None = "auto", **kwargs: Any
    ) -> DeepSORTFeatureExtractor:
        """Load the shipped default model (EfficientNet-Lite0, ImageNet; no torch needed).

        It is a generic appearance model: ImageNet features separate people by
        clothing colour and texture, not identity. A person ReID model
        (see the README) associates better.

        Example:
            >>> DeepSORTFeatureExtractor.default().feature_dim
            1280
        """
        return cls(default_model_path(), providers=providers, **kwargs)

    @classmethod
    def from_timm(
        cls,
        model_name: str,
        device: str | None = "auto",
        input_size: tuple[int, int] = (128, 128),
        pretrained: bool = True,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        opset: int = 17,
        precision: str = "fp32",
        calibration_crops: Sequence[np.ndarray] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        providers: str | Sequence[ProviderSpec] | None = None,
        batch_size: int = 32,
        model_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> DeepSORTFeatureExtractor:
        """Export a timm model to ONNX once (cached) and load it.

        Needs the export extra (torch, timm, onnx) the first time a given
        model, input size, opset and precision is asked for; afterwards the
        cached file loads without torch. The cache is
        :func:`default_cache_dir` (``$DEEPSORT_EDGE_CACHE`` overrides).

        Args:
            model_name: timm model name, e.g. ``"mobilenetv4_conv_small.e1200_r224_in1k"``.
            device: roboflow-style device (``"auto"``, ``"cpu"``, ``"cuda"``,
                ``"cuda:1"``); ignored when ``providers`` is given.
            input_size: crop ``(height, width)`` fed to the model.
            pretrained: load timm's pretrained weights (downloads them once;
                when the hub is unreachable, fails within seconds unless they
                are in the local hub cache). ``False`` without a
                ``checkpoint`` means random weights, with a ``UserWarning``.
            checkpoint: a local state-dict file to load instead.
            opset: ONNX opset.
            precision: ``"fp32"``, ``"fp16"`` or ``"int8"`` (needs
                ``calibration_crops``).
            calibration_crops: BGR uint8 crops for int8 calibration.
            cache_dir: folder for exported files.
            providers: as for the constructor.
            batch_size: most crops per inference call.
            model_kwargs: extra keyword arguments for ``timm.create_model``.
            **kwargs: constructor options (``mean``, ``std``, ``color_order``,
                ``session_options``, ``intra_op_num_threads``,
                ``graph_optimization_level``) go to the constructor; every
                other keyword goes to ``timm.create_model``, as in roboflow
                trackers 2.0.1 (e.g. ``num_classes=0``, ``drop_rate=0.1``).

        Raises:
            ImportError: if the export extra is missing and the model is not cached.
            RuntimeError: if pretrained weights are needed but cannot be
                downloaded (the message says how to pass local weights).

        Example:
            >>> fx = DeepSORTFeatureExtractor.from_timm("resnet18.a1_in1k", input_size=(128, 64))  # doctest: +SKIP
        """
        size = _size(input_size, "input_size")
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in _CONSTRUCTOR_OPTIONS}
        if kwargs:
            both = sorted(set(kwargs) & set(model_kwargs or {}))
            if both:
                raise TypeError(f"from_timm got {both} both as keywords and in model_kwargs")
            model_kwargs = {**(model_kwargs or {}), **kwargs}
        random_weights = not pretrained and checkpoint is None
        if random_weights:
            from deepsort_edge.appearance.export import RANDOM_WEIGHTS_WARNING

            warnings.warn(RANDOM_WEIGHTS_WARNING.format(model=model_name), UserWarning, stacklevel=2)
        key = _cache_key(model_name, size, opset, precision, pretrained, checkpoint, model_kwargs)
        folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        path = folder / f"{key}.onnx"
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
                        input_size=size,
                        opset=opset,
                        precision=precision,
                        calibration_crops=calibration_crops,
                        model_kwargs=model_kwargs,
                    )
                os.replace(tmp, path)  # atomic: concurrent callers never see half a file
            finally:
                tmp.unlink(missing_ok=True)
        chosen = providers if providers is not None else providers_for_device(device)
        return cls(path, providers=chosen, batch_size=batch_size, **options)

    def _bind_io(
        self,
        input_size: tuple[int, int] | None,
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
        color_order: str | None,
    ) -> None:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1:
            raise ValueError(
                f"model_path: expected a model with one input [N, 3, H, W], got {len(inputs)} inputs "
                f"{[i.name for i in inputs]}"
            )
        spec = inputs[0]
        shape = list(spec.shape)
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise ValueError(
                f"model_path: expected the input {spec.name!r} to be [N, 3, H, W], got shape {shape}"
            )
        if spec.type not in ("tensor(float)", "tensor(float16)"):
            raise ValueError(
                f"model_path: expected a float input, got {spec.type} for {spec.name!r}"
            )
        meta = decode_metadata(self._session.get_modelmeta().custom_metadata_map)
        self.metadata = meta
        if input_size is None:
            if "input_size" in meta:
                input_size = meta["input_size"]
            elif isinstance(shape[2], int) and isinstance(shape[3], int):
                input_size = (shape[2], shape[3])
            else:
                raise ValueError(
                    "input_size: the model has dynamic H, W and no deepsort-edge metadata; "
                    "pass input_size=(height, width)"
                )
        self.input_size = _size(input_size, "input_size")
        for axis, side in ((2, self.input_size[0]), (3, self.input_size[1])):
            if isinstance(shape[axis], int) and shape[axis] != side:
                raise ValueError(
                    f"input_size {self.input_size} does not match the model input shape {shape}"
                )
        if mean is None or std is None:
            if ("mean" not in meta or "std" not in meta) and (mean is None and std is None):
                warnings.warn(
                    f"{self.model_path.name} has no mean/std metadata; assuming ImageNet statistics "
                    "(pass mean= and std= to silence this)",
                    UserWarning,
                    stacklevel=3,
                )
        self.mean = _triple(mean if mean is not None else meta.get("mean", IMAGENET_MEAN), "mean")
        self.std = _triple(std if std is not None else meta.get("std", IMAGENET_STD), "std")
        self.color_order = _color_order(
            color_order if color_order is not None else meta.get("color_order", "RGB")
        )
        self._input_name = spec.name
        self._input_dtype = np.float16 if spec.type == "tensor(float16)" else np.float32
        self._output_name = outputs[0].name
        # A model exported with a fixed batch dimension can only take that many crops a call.
        self._fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        out_shape = list(outputs[0].shape)
        _check_output_shape(out_shape, self.model_path.name)
        dim = None
        if len(out_shape) >= 2 and all(isinstance(d, int) for d in out_shape[1:]):
            dim = int(np.prod(out_shape[1:]))
        elif "feature_dim" in meta:
            dim = int(meta["feature_dim"])
        if dim is None:
            probe = np.zeros((1, 3, *self.input_size), dtype=self._input_dtype)
            dim = int(np.prod(self._run(probe).shape[1:]))
        if dim < 1:
            raise ModelError(f"{self.model_path.name}: the model gives {dim} features per crop; expected >= 1")
        self.feature_dim = dim
        self.source_model = str(meta.get("source_model", self.model_path.name))

    # -- properties -------------------------------------------------------------

    @property
    def providers(self) -> list[str]:
        """Providers the session actually runs on, best first."""
        return self._session.get_providers()

    @property
    def session(self) -> ort.InferenceSession:
        """The underlying ``onnxruntime.InferenceSession``."""
        return self._session

    @property
    def model(self) -> ort.InferenceSession:
        """The ``onnxruntime.InferenceSession`` that computes the features (roboflow's name)."""
        return self._session

    @property
    def device(self) -> str:
        """Where the session runs, in roboflow's words: ``"cpu"``, ``"cuda:0"``, ``"mps"``...

        ``"cuda:N"`` for the CUDA and TensorRT providers (``N`` their
        ``device_id``), ``"mps"`` for CoreML, ``"cpu"`` for the CPU, else the
        provider's name.

        Example:
            >>> DeepSORTFeatureExtractor.default(providers="cpu").device
            'cpu'
        """
        active = self._session.get_providers()[0]
        if active == CPU_PROVIDER:
            return "cpu"
        if active in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
            options = self._session.get_provider_options().get(active, {})
            return f"cuda:{int(options.get('device_id', 0))}"
        if active == "CoreMLExecutionProvider":
            return "mps"
        return active

    def transform(self, crop: np.ndarray) -> np.ndarray:
        """One BGR uint8 crop -> the model's ``(3, H, W)`` float32 input.

        Resized and normalised exactly as :meth:`extract_features` does it for
        each detection (roboflow's ``transform``, without torch).

        Example:
            >>> fx = DeepSORTFeatureExtractor.default(providers="cpu")
            >>> fx.transform(np.zeros((50, 20, 3), np.uint8)).shape
            (3, 128, 64)
        """
        crop = check_bgr_image(crop, "crop")
        return preprocess_images([crop], self.input_size, self.mean, self.std, self.color_order)[0]

    def __getstate__(self) -> dict[str, Any]:
        return dict(self._init_args)

    def __setstate__(self, state: dict[str, Any]) -> None:
        args = dict(state)
        self.__init__(args.pop("model_path"), providers=args.pop("providers"), **args)  # type: ignore[misc]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.source_model!r}, file={self.model_path.name!r}, "
            f"providers={self.providers}, input_size={self.input_size}, "
            f"feature_dim={self.feature_dim}, batch_size={self.batch_size})"
        )

    # -- inference --------------------------------------------------------------

    def _run(self, batch: np.ndarray) -> np.ndarray:
        out = np.asarray(self._session.run([self._output_name], {self._input_name: batch})[0])
        # Reshaping a wrong batch would silently give crops each other's features.
        _check_output_shape(list(out.shape), self.model_path.name)
        if out.ndim == 0 or out.shape[0] != len(batch):
            raise ModelError(
                f"{self.model_path.name}: the model returned output of shape {out.shape} for "
                f"{len(batch)} crops; expected one row per crop ([{len(batch)}, D] or "
                f"[{len(batch)}, D, 1, 1])"
            )
        return out.reshape(len(batch), -1)

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """Run preprocessed ``(N, 3, H, W)`` input through the model in chunks.

        Args:
            batch: output of :func:`preprocess_crops` for this model.

        Returns:
            ``(N, D)`` float32 L2-normalised features.
        """
        step = self._fixed_batch or self.batch_size
        if len(batch) == 0:
            return np.empty((0, self.feature_dim), dtype=np.float32)
        batch = batch.astype(self._input_dtype, copy=False)
        chunks = []
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            if self._fixed_batch and len(chunk) < step:  # pad the last chunk to the fixed size
                pad = np.zeros((step - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
                chunks.append(self._run(np.concatenate([chunk, pad]))[: len(chunk)])
            else:
                chunks.append(self._run(np.ascontiguousarray(chunk)))
        return _l2_normalise(np.concatenate(chunks))

    def preprocess(self, frame: np.ndarray, detections: sv.Detections | np.ndarray) -> np.ndarray:
        """Validate inputs and build the model's ``(N, 3, H, W)`` float32 batch."""
        frame = check_bgr_image(frame)
        xyxy = as_xyxy(detections)
        return preprocess_crops(frame, xyxy, self.input_size, self.mean, self.std, self.color_order)

    def extract_features(
        self, frame: np.ndarray, detections: sv.Detections | np.ndarray
    ) -> np.ndarray:
        """Appearance features of each detection's crop.

        Args:
            frame: ``(H, W, 3)`` uint8 BGR image (OpenCV's layout).
            detections: ``sv.Detections`` or an ``(N, 4)`` xyxy array in pixels.
                Boxes must be finite; boxes outside the frame or empty are
                clamped to the nearest 1-pixel crop (see :func:`deepsort_edge.appearance.preprocess.clip_boxes`).

        Returns:
            ``(N, D)`` float32, each row L2-normalised; ``(0, D)`` for no detections.

        Raises:
            TypeError: if ``frame`` is not a uint8 numpy array.
            ValueError: if ``frame`` is not ``(H, W, 3)`` or a box is not finite.

        Example:
            >>> fx = DeepSORTFeatureExtractor.default()
            >>> frame = np.zeros((240, 320, 3), np.uint8)
            >>> fx.extract_features(frame, np.array([[0, 0, 40, 100], [300, 200, 400, 300]])).shape
            (2, 1280)
        """
        return self.embed_batch(self.preprocess(frame, detections))

    __call__ = extract_features


def _cache_key(
    model_name: str,
    input_size: tuple[int, int],
    opset: int,
    precision: str,
    pretrained: bool,
    checkpoint: str | os.PathLike[str] | None,
    model_kwargs: Mapping[str, Any] | None,
) -> str:
    """File stem naming everything that changes the exported model."""
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
