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

import re
from collections.abc import Sequence
from typing import Any

from ._runtime import import_onnxruntime

ort = import_onnxruntime()  # a clear ImportError naming the install routes when none is installed

__all__ = [
    "CPU_PROVIDER",
    "ProviderSpec",
    "provider_name",
    "providers_for_device",
    "resolve_providers",
    "tensorrt_provider",
]

#: A provider name, or a ``(name, options)`` pair as ONNX Runtime takes it.
ProviderSpec = str | tuple[str, dict[str, Any]]

CPU_PROVIDER = "CPUExecutionProvider"

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
