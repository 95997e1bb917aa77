"""Run the gateway on gunicorn: threaded workers, bounded, with a graceful shutdown.

gunicorn's ``gthread`` worker suits the router, which blocks on ``requests``: each call has
a thread, a stream writes each event as it comes, a client that goes away makes the write
fail and gunicorn closes the body, which closes the upstream stream. ``SIGTERM`` stops
accepting and lets calls and streams in flight finish (up to ``[gateway] graceful_timeout``).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import tempfile
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from ..redaction import RedactingFilter
from ..registry import Registry
from ..router import Router
from .app import GatewayApp
from .auth import Authenticator

#: Threads per worker beyond the call limit, so a call over it gets a quick 503, not a queue.
_SPARE_THREADS = 8


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, registry: Registry) -> bool:
    """Whether keys are configured; :class:`ConfigError` for an open gateway off loopback."""
    keyed = not Authenticator(registry.settings.gateway).open
    if not keyed and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without API keys: anyone who can reach it could spend "
            "your providers' keys. Set [gateway] api_keys (or HYPOTEZ_GATEWAY_API_KEYS), or "
            "bind to 127.0.0.1",
            key="gateway.api_keys",
        )
    return keyed


def build_app(registry: Registry) -> GatewayApp:
    """The application for one worker: its own router (circuits), metrics when installed."""
    router = Router(registry)
    try:
        from .metrics import GatewayMetrics
    except ImportError:  # prometheus-client is not installed: /metrics says so
        return GatewayApp(router)
    return GatewayApp(router, metrics=GatewayMetrics(router))


def run(
    registry: Registry,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str = "info",
    access_log: bool = False,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve until stopped (``SIGINT``/``SIGTERM``); needs gunicorn (the ``gateway`` extra)."""
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        raise ConfigError(
            "hypotez serve needs gunicorn: pip install 'hypotez-providers[gateway]'"
        ) from None
    settings = registry.settings.gateway
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker counts in its own files there; /metrics on any worker adds them up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hypotez-metrics-")
    options: dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": settings.max_concurrency + _SPARE_THREADS,
        "graceful_timeout": math.ceil(settings.graceful_timeout),
        "keepalive": 75,
        "loglevel": log_level,
        "errorlog": "-",
        "accesslog": "-" if access_log else None,
        "proc_name": "hypotez-gateway",
        "control_socket_disable": True,  # gunicorn's admin socket: nothing here uses it
        "when_ready": (lambda server: on_ready()) if on_ready else None,
        "child_exit": _child_exit,
    }

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in options.items():
                if value is not None:
                    self.cfg.set(name, value)

        def load(self) -> GatewayApp:
            return build_app(registry)

    _log_to_stderr(log_level)
    _Gunicorn().run()


def _log_to_stderr(level: str) -> None:
    """The library's own log lines (fallbacks, failures) beside gunicorn's, redacted."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    )
    handler.addFilter(RedactingFilter())
    library = logging.getLogger("hypotez_providers")
    library.addHandler(handler)
    library.setLevel(level.upper())


def _child_exit(server: Any, worker: Any) -> None:
    try:
        from .metrics import worker_exited
    except ImportError:  # no prometheus-client: nothing was counted
        return
    worker_exited(worker.pid)
