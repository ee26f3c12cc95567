"""Running libra-serve: load the guard, build the app, serve it with uvicorn until SIGTERM or SIGINT.

uvicorn's shutdown stops accepting connections, lets the requests in flight finish (up to
graceful_timeout_s), and only then runs the app's shutdown, which stops the batcher.
"""

from __future__ import annotations

import logging
import os

from libra_train.errors import ConfigError
from libra_train.serve.app import ServeOptions, create_app
from libra_train.serve.scorer import GuardScorer

log = logging.getLogger(__name__)


def serve_options(cfg) -> ServeOptions:
    for key in ("max_batch_size", "max_request_bytes", "max_inputs", "max_length", "port"):
        if int(cfg[key]) < 1:
            raise ConfigError(key, f"must be at least 1, got {cfg[key]}")
    if float(cfg.max_wait_ms) < 0:
        raise ConfigError("max_wait_ms", f"must be ≥ 0, got {cfg.max_wait_ms}")
    api_key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    return ServeOptions(
        model_name=str(cfg.model),
        max_batch_size=int(cfg.max_batch_size),
        max_wait_ms=float(cfg.max_wait_ms),
        max_request_bytes=int(cfg.max_request_bytes),
        max_inputs=int(cfg.max_inputs),
        api_key=api_key or None,
    )


def run_server(cfg) -> None:
    import uvicorn

    options = serve_options(cfg)
    scorer = GuardScorer.load(cfg)
    scorer.score([scorer.prepare({"id": "warm-up", "question": "你好", "response": ""})])
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("libra-serve listens on %s: reachable beyond this machine", cfg.host)
    if options.api_key is None:
        log.warning("no API key: %s is not set, so /v1/* take requests without one", cfg.api_key_env)
    uvicorn.run(
        create_app(scorer, options),
        host=cfg.host,
        port=int(cfg.port),
        timeout_graceful_shutdown=int(cfg.graceful_timeout_s),
        log_level=cfg.log_level,
    )
