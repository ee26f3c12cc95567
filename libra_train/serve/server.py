"""Running libra-serve: load the guard, build the app, serve it with uvicorn until SIGTERM or SIGINT.

uvicorn's shutdown stops accepting connections, lets the requests in flight finish (up to
graceful_timeout_s), and only then runs the app's shutdown, which stops the batcher.
"""

from __future__ import annotations

import logging
import os

from libra_train.command_config import ServeConfig
from libra_train.serve.app import ServeOptions, create_app
from libra_train.serve.scorer import GuardScorer
from libra_train.serve.streaming import StreamLimits

log = logging.getLogger(__name__)


def serve_options(cfg: ServeConfig) -> ServeOptions:
    api_key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    return ServeOptions(
        model_name=cfg.model,
        max_batch_size=cfg.max_batch_size,
        max_wait_ms=cfg.max_wait_ms,
        max_request_bytes=cfg.max_request_bytes,
        max_inputs=cfg.max_inputs,
        api_key=api_key or None,
        stream=StreamLimits(
            cfg.stream_max_sessions,
            cfg.stream_ttl_s,
            cfg.stream_max_tokens,
            *_stop_rule(cfg),
        ),
    )


def _stop_rule(cfg: ServeConfig) -> tuple[float, int]:
    """The stop rule as given, else the one the stream stage saved with the head (where it saved one)."""
    from libra_train.stream.train import saved_stop_rule

    saved = saved_stop_rule(cfg.model)
    return (
        saved["threshold"] if cfg.stream_threshold is None else cfg.stream_threshold,
        saved["k"] if cfg.stream_k is None else cfg.stream_k,
    )


def warm_up_record(trained_task: str | None) -> dict:
    """A record the guard judges: a response-only guard refuses a question alone, a question-only guard a
    response (formats.untrained_task), and the warm-up must not stop the server."""
    record = {"id": "warm-up", "question": "你好"}
    return record if trained_task == "prompt" else {**record, "response": "你好！有什么可以帮你的吗？"}


def run_server(cfg: ServeConfig) -> None:
    import uvicorn

    options = serve_options(cfg)
    scorer = GuardScorer.load(cfg)
    scorer.score([scorer.prepare(warm_up_record(scorer.trained_task))])
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("libra-serve listens on %s: reachable beyond this machine", cfg.host)
    if options.api_key is None:
        log.warning("no API key: %s is not set, so /v1/* take requests without one", cfg.api_key_env)
    uvicorn.run(
        create_app(scorer, options),
        host=cfg.host,
        port=cfg.port,
        timeout_graceful_shutdown=int(cfg.graceful_timeout_s),
        log_level=cfg.log_level,
    )
