"""The Hugging Face side of text data: optional packages and the hub, failing fast in one line.

Without network, ``huggingface_hub`` retries each request with back-off (about 25 s per file)
before giving up. Fetches go through :func:`require_hub` first: it reads the offline switches at
call time (``huggingface_hub`` reads them once, at import) and tries one TCP connection with a
short timeout, so a run without network fails in seconds with a message saying what to do.
"""

from __future__ import annotations

import importlib
import os
import socket
from typing import Any
from urllib.parse import urlparse

from optbench.errors import OptbenchError

_TRUE = {"1", "on", "yes", "true"}
CONNECT_TIMEOUT_S = 3.0


def import_optional(module: str, what: str) -> Any:
    """Import a text-data dependency, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OptbenchError(
            f"{what} needs the Python package {module!r}: pip install datasets tokenizers pyarrow"
        ) from None


def offline_switch() -> str | None:
    """The name of the offline environment variable that is set, if any."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return name
    return None


def _reachable(endpoint: str) -> bool:
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def one_line(err: BaseException) -> str:
    """An exception's message on one line, for OptbenchError messages."""
    return " ".join(str(err).split())


def require_hub(what: str, instead: str) -> None:
    """Raise OptbenchError unless ``what`` can be fetched from the hub; ``instead`` says what to
    configure to do without it."""
    switch = offline_switch()
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if switch is not None:
        reason = f"{switch} is set"
    elif not _reachable(endpoint):
        reason = f"{endpoint} is unreachable"
    else:
        return
    raise OptbenchError(f"cannot fetch {what} from the Hugging Face hub ({reason}); {instead}")
