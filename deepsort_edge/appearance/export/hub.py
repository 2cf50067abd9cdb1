"""Fail in seconds, not a minute, when timm's pretrained weights are out of reach.

timm downloads pretrained weights through huggingface_hub, which retries an
unreachable host with back-off for about half a minute per candidate file
(around a minute in all) before giving up. :func:`hub_access` first tries a
TCP connection to the hub (a few seconds at most); if that fails it runs the
download in huggingface_hub's offline mode, so weights already in the local
hub cache still load and missing ones fail at once.

Example:
    >>> with hub_access("resnet18.a1_in1k") as reachable:  # doctest: +SKIP
    ...     model = timm.create_model("resnet18.a1_in1k", pretrained=True)
"""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

__all__ = ["PROBE_TIMEOUT_S", "can_connect", "hub_access", "weights_host"]

#: Longest wait for the reachability probe, in seconds (name lookup included).
PROBE_TIMEOUT_S = 3.0


def weights_host(model_name: str) -> str | None:
    """URL of the server timm would download ``model_name``'s weights from, or None.

    The Hugging Face endpoint (``$HF_ENDPOINT`` respected) for models with a
    hub id, else the host of the model's download URL; None for a name timm
    has no pretrained weights for.
    """
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(model_name)
    except (RuntimeError, ValueError):
        return None
    if cfg is None:
        return None
    if getattr(cfg, "hf_hub_id", None):
        try:
            from huggingface_hub import constants
        except ImportError:  # timm then uses the plain URL
            pass
        else:
            return str(constants.ENDPOINT)
    url = getattr(cfg, "url", None)
    return str(url) if url else None


def can_connect(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``url``'s host and port opens within ``timeout`` seconds.

    Name resolution can hang longer than a socket timeout, so the attempt
    runs in a daemon thread that is abandoned when the time is up.
    """
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    port = parts.port or (80 if parts.scheme == "http" else 443)
    outcome: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=attempt, name="deepsort-edge-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(outcome and outcome[0])


def _behind_proxy(url: str) -> bool:
    """A configured proxy makes a direct probe meaningless (the proxy may reach the hub)."""
    host = urlsplit(url).hostname or ""
    proxies = urllib.request.getproxies()
    scheme = urlsplit(url).scheme or "https"
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


@contextmanager
def hub_access(model_name: str, timeout: float = PROBE_TIMEOUT_S) -> Iterator[bool]:
    """Probe the weights server; while inside, huggingface_hub is offline if it is unreachable.

    Args:
        model_name: timm model name (with or without a pretrained tag).
        timeout: seconds the probe may take.

    Yields:
        True when the server answered (or could not be probed: no pretrained
        weights known, a proxy configured, offline mode already on); False
        when it is unreachable, and downloads then fail at once unless the
        files are in the local hub cache.
    """
    url = weights_host(model_name)
    try:
        from huggingface_hub import constants
    except ImportError:
        constants = None
    if url is None or _behind_proxy(url) or (constants is not None and constants.HF_HUB_OFFLINE):
        yield True
        return
    if can_connect(url, timeout):
        yield True
        return
    if constants is None:
        yield False
        return
    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True  # read at call time: cached files only, no retries
    try:
        yield False
    finally:
        constants.HF_HUB_OFFLINE = saved
