"""Which ONNX Runtime execution providers to ask for.

:func:`resolve_providers` turns ``"auto"``, a name, a short alias or a list
into the list ``onnxruntime.InferenceSession`` takes, refusing providers this
onnxruntime build lacks; :func:`providers_for_device` maps roboflow-style
``device`` strings onto it.

Example:
    >>> resolve_providers("cpu")
    ['CPUExecutionProvider']
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from typing import Any

from .runtime import import_onnxruntime

ort = import_onnxruntime()  # a clear ImportError naming the install routes when none is installed

__all__ = [
    "CPU_PROVIDER",
    "GRAPH_OPTIMIZATION_LEVELS",
    "ProviderSpec",
    "create_session",
    "make_session_options",
    "provider_name",
    "providers_for_device",
    "resolve_providers",
    "tensorrt_provider",
]

#: A provider name, or a ``(name, options)`` pair as ONNX Runtime takes it.
ProviderSpec = str | tuple[str, dict[str, Any]]

CPU_PROVIDER = "CPUExecutionProvider"

#: ``graph_optimization_level`` names -> ONNX Runtime's levels.
GRAPH_OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

# "auto" tries accelerated providers in this order, then the CPU.
_PRIORITY = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
    "OpenVINOExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
)
_ALIASES = {
    "cpu": CPU_PROVIDER,
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
}


def _canonical(name: str) -> str:
    return _ALIASES.get(name.lower(), name)


def provider_name(spec: ProviderSpec) -> str:
    """The name of a provider given as a name or a ``(name, options)`` pair."""
    return spec if isinstance(spec, str) else spec[0]


def resolve_providers(
    providers: str | Sequence[ProviderSpec] | None = "auto",
) -> list[ProviderSpec]:
    """Turn a provider request into the list ONNX Runtime takes.

    Args:
        providers: ``"auto"`` (or ``None``) for the best available provider
            followed by the CPU; a provider name (``"CUDAExecutionProvider"``
            or a short alias such as ``"cuda"``, ``"cpu"``, ``"tensorrt"``);
            or a list of names and ``(name, options)`` pairs, tried in order.

    Returns:
        Provider names or ``(name, options)`` pairs, ending with the CPU
        provider unless the request named providers explicitly.

    Raises:
        ValueError: if a named provider is not available in this
            onnxruntime build; the message lists the available ones.
        TypeError: if ``providers`` has the wrong type.

    Example:
        >>> resolve_providers([("cpu", {})])
        [('CPUExecutionProvider', {})]
    """
    available = ort.get_available_providers()
    if providers is None or (isinstance(providers, str) and providers.lower() == "auto"):
        best = [p for p in _PRIORITY if p in available]
        chosen: list[ProviderSpec] = best[:1]
        if chosen == ["TensorrtExecutionProvider"] and "CUDAExecutionProvider" in available:
            # TensorRT leaves unsupported nodes to the next provider; CUDA beats CPU there.
            chosen.append("CUDAExecutionProvider")
        return [*chosen, CPU_PROVIDER]
    if isinstance(providers, str):
        providers = [providers]
    if not isinstance(providers, Sequence):
        raise TypeError(
            f"providers must be 'auto', a provider name or a list of them, got {type(providers).__name__}"
        )
    resolved: list[ProviderSpec] = []
    for spec in providers:
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
            name, options = _canonical(spec[0]), dict(spec[1])
            item: ProviderSpec = (name, options)
        elif isinstance(spec, str):
            name = _canonical(spec)
            item = name
        else:
            raise TypeError(f"each provider must be a name or a (name, options) pair, got {spec!r}")
        if name not in available:
            raise ValueError(
                f"providers: {spec if isinstance(spec, str) else spec[0]!r} is not available in this "
                f"onnxruntime build; available providers: {', '.join(available)}"
            )
        resolved.append(item)
    if not resolved:
        raise ValueError("providers must name at least one provider, got an empty list")
    return resolved


def providers_for_device(device: str | None) -> str | list[ProviderSpec]:
    """Map roboflow's ``device`` strings (auto, cpu, cuda, cuda:1, mps) to providers.

    Example:
        >>> providers_for_device("cuda:1")[0]
        ('CUDAExecutionProvider', {'device_id': 1})
    """
    if device is None or device == "auto":
        return "auto"
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if match:
        return [("CUDAExecutionProvider", {"device_id": int(match.group(1) or 0)}), CPU_PROVIDER]
    if device == "mps":
        return ["CoreMLExecutionProvider", CPU_PROVIDER]
    return [device]


def make_session_options(
    base: ort.SessionOptions | None = None,
    intra_op_num_threads: int | None = None,
    graph_optimization_level: str | None = None,
) -> ort.SessionOptions:
    """The session options every deepsort-edge model (embedder, detector) runs with.

    Args:
        base: options to start from (changed in place); default fresh ones
            with spinning worker threads turned off.
        intra_op_num_threads: threads inside an operator (``None``: ONNX
            Runtime's default, all physical cores).
        graph_optimization_level: a key of :data:`GRAPH_OPTIMIZATION_LEVELS`
            (``None``: keep ``base``'s level).

    Raises:
        TypeError: ``base`` is not an ``onnxruntime.SessionOptions``.
        ValueError: a bad thread count or level.

    Example:
        >>> make_session_options(intra_op_num_threads=1).intra_op_num_threads
        1
    """
    if base is not None and not isinstance(base, ort.SessionOptions):
        raise TypeError(f"session_options must be onnxruntime.SessionOptions, got {type(base).__name__}")
    if base is None:
        options = ort.SessionOptions()
        # Spinning worker threads keep cores busy between calls, which on a
        # small device slows the tracker running beside the model.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    else:
        options = base
    threads = intra_op_num_threads
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ValueError(f"intra_op_num_threads must be an int >= 0, got {threads!r}")
        options.intra_op_num_threads = threads
    level = graph_optimization_level
    if level is not None:
        if level not in GRAPH_OPTIMIZATION_LEVELS:
            raise ValueError(
                f"graph_optimization_level must be one of {sorted(GRAPH_OPTIMIZATION_LEVELS)}, got {level!r}"
            )
        options.graph_optimization_level = GRAPH_OPTIMIZATION_LEVELS[level]
    return options


def create_session(
    path: str | os.PathLike[str], options: ort.SessionOptions, providers: Sequence[ProviderSpec]
) -> ort.InferenceSession:
    """Start an ``InferenceSession``; falls back to the CPU (with a warning) if a provider fails.

    Args:
        path: the ONNX file.
        options: from :func:`make_session_options`.
        providers: from :func:`resolve_providers`.

    Raises:
        ValueError: the file is not a valid ONNX model, or even the CPU
            provider cannot load it (the message names ``model_path``).
    """
    requested = list(providers)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=requested)
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        message = str(exc)
        if any(word in message for word in ("Protobuf", "protobuf", "parsing", "Load model")):
            raise ValueError(
                f"model_path: {path} is not a valid ONNX model (corrupt or truncated?): {message}"
            ) from exc
        accelerated = [p for p in requested if provider_name(p) != CPU_PROVIDER]
        if not accelerated:
            raise ValueError(f"model_path: ONNX Runtime could not load {path}: {message}") from exc
        warnings.warn(
            f"could not start {[provider_name(p) for p in accelerated]} ({message}); "
            "falling back to CPUExecutionProvider",
            RuntimeWarning,
            stacklevel=3,
        )
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=[CPU_PROVIDER])
        except Exception as cpu_exc:
            raise ValueError(f"model_path: ONNX Runtime could not load {path}: {cpu_exc}") from cpu_exc
    active = session.get_providers()
    missing = [provider_name(p) for p in requested if provider_name(p) not in active]
    if missing and active and active[0] == CPU_PROVIDER and missing[0] != CPU_PROVIDER:
        warnings.warn(
            f"{missing} failed to load (missing CUDA/TensorRT libraries or driver?); running on {active}",
            RuntimeWarning,
            stacklevel=3,
        )
    return session


def tensorrt_provider(
    input_size: tuple[int, int],
    *,
    input_name: str = "images",
    max_batch: int = 256,
    opt_batch: int = 32,
    cache_dir: str | None = None,
    fp16: bool = False,
    int8: bool = False,
) -> tuple[str, dict[str, Any]]:
    """A TensorRT provider entry with a batch shape profile and an engine cache.

    Without a profile TensorRT builds a new engine for every new batch size
    (seconds each); with one it builds one engine for batches 1..``max_batch``,
    tuned for ``opt_batch``, and with ``cache_dir`` it keeps that engine on disk
    for the next start. ``fp16`` lets TensorRT run float16 kernels on a
    float32 model; ``int8`` runs a QDQ (static int8) model's quantised nodes as
    int8. Put it first in a provider list, followed by CUDA and the CPU for
    the nodes TensorRT cannot take.

    Args:
        input_size: ``(height, width)`` of the model input.
        input_name: the model's input name (deepsort-edge exports use ``images``).
        max_batch: the largest batch the engine accepts.
        opt_batch: the batch the engine is tuned for.
        cache_dir: folder for built engines (None: rebuilt at every start).
        fp16: allow float16 kernels.
        int8: run the quantised (QDQ) nodes of an int8 model as int8.

    Example:
        >>> tensorrt_provider((256, 128), max_batch=64)[1]["trt_profile_max_shapes"]
        'images:64x3x256x128'
    """
    height, width = input_size
    if not 1 <= opt_batch <= max_batch:
        raise ValueError(f"need 1 <= opt_batch <= max_batch, got opt_batch={opt_batch}, max_batch={max_batch}")
    options: dict[str, Any] = {
        "trt_profile_min_shapes": f"{input_name}:1x3x{height}x{width}",
        "trt_profile_opt_shapes": f"{input_name}:{opt_batch}x3x{height}x{width}",
        "trt_profile_max_shapes": f"{input_name}:{max_batch}x3x{height}x{width}",
        "trt_fp16_enable": bool(fp16),
        "trt_int8_enable": bool(int8),
    }
    if cache_dir is not None:
        options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir))
    return "TensorrtExecutionProvider", options
