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

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepsort_edge.appearance.model_files import (
    DEFAULT_MODEL_FILENAME,
    cached_timm_export,
    default_cache_dir,
    default_model_path,
    onnx_model_source,
)
from deepsort_edge.appearance.model_io import (
    ModelError,
    check_size,
    l2_normalise,
    read_model_io,
    run_model,
)
from deepsort_edge.appearance.model_metadata import METADATA_KEYS
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
    "ModelError",
    "default_cache_dir",
    "default_model_path",
]



#: Keywords of ``from_timm`` that configure the extractor rather than ``timm.create_model``.
_CONSTRUCTOR_OPTIONS = frozenset(
    {"mean", "std", "color_order", "session_options", "intra_op_num_threads", "graph_optimization_level"}
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
        source, input_size, mean, std, color_order = onnx_model_source(
            model_or_checkpoint_path, cache_dir, input_size, mean, std, color_order
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
        self._io = io = read_model_io(self._session, path, input_size, mean, std, color_order)
        self.metadata = io.metadata
        self.input_size, self.mean, self.std, self.color_order = io.input_size, io.mean, io.std, io.color_order
        self.feature_dim, self.source_model = io.feature_dim, io.source_model

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
        size = check_size(input_size, "input_size")
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
        folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        path = cached_timm_export(
            model_name, folder, size, opset=opset, precision=precision, pretrained=pretrained,
            checkpoint=checkpoint, calibration_crops=calibration_crops, model_kwargs=model_kwargs,
        )
        chosen = providers if providers is not None else providers_for_device(device)
        return cls(path, providers=chosen, batch_size=batch_size, **options)

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
        return run_model(self._session, self._io.input_name, self._io.output_name, batch, self.model_path.name)

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """Run preprocessed ``(N, 3, H, W)`` input through the model in chunks.

        Args:
            batch: output of :func:`preprocess_crops` for this model.

        Returns:
            ``(N, D)`` float32 L2-normalised features.
        """
        step = self._io.fixed_batch or self.batch_size
        if len(batch) == 0:
            return np.empty((0, self.feature_dim), dtype=np.float32)
        batch = batch.astype(self._io.input_dtype, copy=False)
        chunks = []
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            if self._io.fixed_batch and len(chunk) < step:  # pad the last chunk to the fixed size
                pad = np.zeros((step - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
                chunks.append(self._run(np.concatenate([chunk, pad]))[: len(chunk)])
            else:
                chunks.append(self._run(np.ascontiguousarray(chunk)))
        return l2_normalise(np.concatenate(chunks))

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


