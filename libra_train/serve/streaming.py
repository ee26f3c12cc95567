"""libra-serve's streaming sessions (docs/serving.md, "Streaming moderation"): a client opens a session
with the question, sends the response in chunks as the assistant writes it, and gets p(unsafe) after
each new token and whether the stop rule has fired. Each session keeps its KV cache, so a token costs one
cached step. Sessions expire after `stream_ttl_s` without a chunk; their number and their tokens are
capped, which bounds the memory their caches take."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from libra_train.stream.metrics import stop_index
from libra_train.stream.session import StreamSession


@dataclass(frozen=True)
class StreamLimits:
    max_sessions: int = 64
    ttl_s: float = 300.0
    max_tokens: int = 4096
    threshold: float = 0.5
    k: int = 2


class SessionError(Exception):
    """A request the store refuses: its HTTP status, and what the client can do."""

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


@dataclass
class _Open:
    session: StreamSession
    last_used: float
    stopped_at: int | None = None
    scores: list[float] = field(default_factory=list)


class StreamStore:
    def __init__(self, guard, tokenizer, limits: StreamLimits, controversial_as: str, clock=time.monotonic):
        self.guard, self.tokenizer, self.limits, self.clock = guard, tokenizer, limits, clock
        self.controversial_as = controversial_as
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()  # one model: one session steps at a time

    def _expire(self) -> None:
        now = self.clock()
        for sid in [s for s, o in self._open.items() if now - o.last_used > self.limits.ttl_s]:
            del self._open[sid]

    def open(self, question: str) -> str:
        with self._lock:
            self._expire()
            if len(self._open) >= self.limits.max_sessions:
                raise SessionError(
                    429, f"{len(self._open)} sessions are open, the most this server keeps "
                    f"(stream_max_sessions={self.limits.max_sessions}): close one, or wait for one to expire",
                )  # fmt: skip
            session = StreamSession(self.guard, self.tokenizer, question, self.controversial_as)
            sid = f"strm-{uuid.uuid4().hex}"
            self._open[sid] = _Open(session, self.clock())
            return sid

    def _get(self, sid: str) -> _Open:
        self._expire()
        if sid not in self._open:
            raise SessionError(
                404, f"no open session {sid!r}: it was closed, expired (stream_ttl_s={self.limits.ttl_s:g} "
                "without a chunk) or never opened; open a new one", "session",
            )  # fmt: skip
        return self._open[sid]

    def feed(self, sid: str, text: str | None, token_ids: list[int] | None) -> dict:
        with self._lock:
            entry = self._get(sid)
            ids = entry.session.tokens_with(text) if text is not None else None  # tokenized once
            total = len(ids) if ids is not None else len(entry.session.fed) + len(token_ids)
            if total > self.limits.max_tokens:
                raise SessionError(
                    413,
                    f"the response would pass stream_max_tokens={self.limits.max_tokens} tokens",
                    "text" if text is not None else "token_ids",  # the field the client sent
                )
            probs = (
                entry.session.feed_text(text, ids) if text is not None else entry.session.feed_ids(token_ids)
            )
            first = len(entry.session.fed) - len(probs)  # a chunk may re-run tokens a merge changed
            entry.scores = entry.scores[:first] + probs
            entry.last_used = self.clock()
            if entry.stopped_at is None:  # a stop once made stays
                entry.stopped_at = stop_index(entry.scores, self.limits.threshold, self.limits.k)
            return {
                "session": sid,
                "p_unsafe": probs,
                "first_token": first,
                "tokens": len(entry.session.fed),
                "stop": entry.stopped_at is not None,
                "stopped_at": entry.stopped_at,
            }

    def close(self, sid: str) -> None:
        with self._lock:
            self._get(sid)
            del self._open[sid]


class StreamOpenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str


class StreamChunkRequest(BaseModel):
    """The response's next chunk: text, or token ids of the guard's tokenizer (one of the two)."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    token_ids: list[int] | None = None


def add_stream_routes(app, store: StreamStore | None, auth) -> None:
    """POST /v1/stream (open), POST /v1/stream/{session} (a chunk), DELETE /v1/stream/{session} (close).
    Without a stream head the routes answer 400 and say how to get one."""

    def live() -> StreamStore:
        if store is None:
            raise SessionError(
                400, "this guard has no stream head: train one with a curriculum stage of kind: stream "
                "(libra-train experiment=stream) and serve that stage's checkpoint",
            )  # fmt: skip
        return store

    @app.post("/v1/stream", dependencies=[auth])
    async def open_session(body: StreamOpenRequest):
        if not body.question.strip():
            raise SessionError(400, "question: must be non-empty text", "question")
        opened = live()
        sid = await asyncio.to_thread(opened.open, body.question)
        return {
            "session": sid,
            "expires_after_idle_s": opened.limits.ttl_s,
            "max_tokens": opened.limits.max_tokens,
        }

    @app.post("/v1/stream/{session}", dependencies=[auth])
    async def feed(session: str, body: StreamChunkRequest):
        if (body.text is None) == (body.token_ids is None):
            raise SessionError(400, "give the chunk as text or as token_ids, one of the two", "body")
        return await asyncio.to_thread(live().feed, session, body.text, body.token_ids)

    @app.delete("/v1/stream/{session}", dependencies=[auth])
    async def close(session: str):
        await asyncio.to_thread(live().close, session)
        return {"session": session, "closed": True}
