"""Local weights for timm backbones: unwrap, rename and load checkpoint files.

:func:`load_timm_checkpoint` accepts the common ways a state dict is stored
(plain, wrapped in ``state_dict``/``model``/``state_dict_ema``, DataParallel
``module.`` prefixes, safetensors) and renames ``efficientnet_pytorch``-style
keys to timm's, so that :func:`deepsort_edge.appearance.export.export_timm` can export
weights that never touch the model hub. torch is imported only when called.

Example:
    >>> import timm  # doctest: +SKIP
    >>> model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)  # doctest: +SKIP
    >>> load_timm_checkpoint(model, "lite0.pth")  # doctest: +SKIP
    ('classifier.weight', 'classifier.bias')
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["load_timm_checkpoint", "read_state_dict"]


def _unwrap_state_dict(obj: Any) -> dict[str, Any]:
    for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            return _unwrap_state_dict(obj[key])
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint must hold a state dict, got {type(obj).__name__}")
    return {re.sub(r"^(module|model)\.", "", k): v for k, v in obj.items()}


def _remap_efficientnet_pytorch(state: dict[str, Any], model: torch.nn.Module) -> dict[str, Any]:
    """Rename keys of ``efficientnet_pytorch`` (lukemelas-style) checkpoints to timm's.

    Those number blocks flatly (``_blocks.7``) and name layers after the
    TensorFlow original; timm nests blocks by stage (``blocks.2.1``) and uses
    its own layer names. The block order is the same in both.
    """
    flat = [(s, j) for s, stage in enumerate(model.blocks) for j in range(len(stage))]
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    separable = {
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn1",
        "_project_conv": "conv_pw",
        "_bn2": "bn2",
    }
    inverted = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    se = {"_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand"}
    renamed = {}
    for key, value in state.items():
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if match:
            index, layer, param = int(match.group(1)), match.group(2), match.group(3)
            if index >= len(flat):
                raise ValueError(f"checkpoint has block {index}, the timm model only {len(flat)}")
            s, j = flat[index]
            table = inverted if hasattr(model.blocks[s][j], "conv_pwl") else separable
            name = {**table, **se}.get(layer)
            if name is None:
                raise ValueError(f"checkpoint key {key!r} has no counterpart in the timm model")
            renamed[f"blocks.{s}.{j}.{name}.{param}"] = value
        else:
            head, _, rest = key.partition(".")
            renamed[f"{top.get(head, head)}.{rest}"] = value
    return renamed


def _numpy_scalars_allowed() -> contextlib.AbstractContextManager[Any]:
    """Let ``weights_only`` loading rebuild numpy scalars and dtypes (nothing that runs code).

    Training checkpoints (torchreid's among them) store metrics such as
    ``rank1`` as numpy scalars next to the weights; files written under numpy
    1.x name the rebuild function ``numpy.core.multiarray.scalar``.
    """
    import numpy as np
    import torch

    allow = getattr(torch.serialization, "safe_globals", None)
    if allow is None:  # torch < 2.5: no allow-list
        return contextlib.nullcontext()
    scalar = np.float32(0).__reduce__()[0]
    dtypes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefdg"}
    return allow([scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtypes])


def read_state_dict(checkpoint: str | os.PathLike[str]) -> dict[str, Any]:
    """The state dict stored in a checkpoint file, unwrapped and without ``module.`` prefixes.

    Accepts a plain state dict or one wrapped in ``state_dict_ema``,
    ``model_ema``, ``state_dict`` or ``model`` (training checkpoints that also
    hold the optimiser and epoch), and DataParallel ``module.``/``model.``
    prefixes.

    Args:
        checkpoint: ``.pth``/``.pt``/``.bin``/``.tar`` file (loaded with
            ``weights_only=True``: no code in the file runs) or ``.safetensors``.

    Returns:
        Parameter name -> tensor.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: in one line, if the file cannot be read as weights or holds no state dict.

    Example:
        >>> sorted(read_state_dict("osnet_x0_25.pth"))[:1]  # doctest: +SKIP
        ['conv1.bn.bias']
    """
    import pickle

    import torch

    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: Any = load_file(str(path))
        else:
            with _numpy_scalars_allowed():
                raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"checkpoint {path} cannot be read as weights: {first}") from exc
    return _unwrap_state_dict(raw)


def load_timm_checkpoint(
    model: torch.nn.Module, checkpoint: str | os.PathLike[str]
) -> tuple[str, ...]:
    """Load a local checkpoint into a timm model built with ``num_classes=0``.

    Accepts plain state dicts, dicts wrapping one (``state_dict``, ``model``,
    ``state_dict_ema``), ``module.`` prefixes (DataParallel) and
    ``efficientnet_pytorch``-style key names. Every backbone weight must load
    (strict); classifier weights in the checkpoint are dropped.

    Args:
        model: timm model without classifier.
        checkpoint: path of a ``.pth``/``.pt``/``.bin`` file (loaded with
            ``weights_only=True``) or a ``.safetensors`` file.

    Returns:
        The checkpoint keys that were dropped (the classifier head).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if keys or shapes do not match the model.
    """
    state = read_state_dict(checkpoint)
    if "_conv_stem.weight" in state and hasattr(model, "blocks"):
        state = _remap_efficientnet_pytorch(state, model)
    expected = model.state_dict()
    head = str(getattr(model, "pretrained_cfg", {}).get("classifier", "classifier"))
    ignored = tuple(
        k for k in state if k not in expected and (k.startswith(head + ".") or k.startswith("fc."))
    )
    state = {k: v for k, v in state.items() if k not in ignored}
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    if mismatched:
        raise ValueError("checkpoint shapes do not match the model: " + "; ".join(mismatched[:5]))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {checkpoint} does not match the model: {exc}") from exc
    return ignored
