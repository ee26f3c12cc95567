"""libra-serve's HTTP API (FastAPI): the OpenAI moderation shape, the guard's own schema, health and
Prometheus metrics. Errors use the OpenAI error body: {"error": {"message", "type", "param", "code"}}.
"""

from __future__ import annotations

import secrets
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from libra_train.data.schema import UNSAFE, Located, validate_records
from libra_train.errors import DataError
from libra_train.serve.batcher import DynamicBatcher, WorkerError
from libra_train.serve.metrics import ServeMetrics
from libra_train.serve.streaming import SessionError, StreamLimits, StreamStore, add_stream_routes


@dataclass
class ServeOptions:
    model_name: str
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_request_bytes: int = 1_000_000
    max_inputs: int = 64
    api_key: str | None = None  # from the environment variable named in config; None: no key needed
    stream: StreamLimits = field(default_factory=StreamLimits)


INVALID = "invalid_request_error"


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, kind: str = INVALID):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind


def error_body(status: int, message: str, param: str | None, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status)


class GuardRequest(BaseModel):
    """`question` (and optional `response`), or `messages`; judged as training judges a sample."""

    model_config = ConfigDict(extra="forbid")
    id: str | int | None = None
    question: str | None = None
    response: str | None = None
    messages: list | None = None


class ModerationRequest(BaseModel):
    """The OpenAI moderation request: `input` is a text, a list of texts, or a list of text parts."""

    model_config = ConfigDict(extra="allow")  # e.g. the client's `model`, which one guard ignores
    input: str | list


class BodyLimit:
    """Refuses a request body over max_bytes with 413, whether or not it declares its length: the
    body is read here (at most max_bytes of it) and replayed to the app."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._refuse(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: the disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send):
        response = error_body(413, f"request body over {self.max_bytes} bytes", None, "request_too_large")
        await response(scope, receive, send)


def _param(loc) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) if parts else "body"


def create_app(scorer, options: ServeOptions) -> FastAPI:
    metrics = ServeMetrics()
    batcher = DynamicBatcher(scorer.score, options.max_batch_size, options.max_wait_ms, metrics.observe_batch)
    metrics.track_queue(batcher.depth)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()  # uvicorn has finished the requests in flight by now

    app = FastAPI(title="libra-serve", lifespan=lifespan)
    app.state.batcher, app.state.metrics = batcher, metrics
    app.add_middleware(BodyLimit, max_bytes=options.max_request_bytes)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        metrics.observe_request(request.url.path, response.status_code, time.perf_counter() - start)
        return response

    _add_error_handlers(app)
    require_key = Depends(_key_check(options.api_key))
    _add_judging_routes(app, scorer, batcher, options, require_key)
    stream_guard = getattr(scorer, "stream_guard", None)
    store = None
    if stream_guard is not None:
        store = StreamStore(stream_guard, scorer.tokenizer, options.stream, scorer.controversial_as)
    add_stream_routes(app, store, require_key)
    _add_status_routes(app, scorer, batcher, metrics, options)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as OpenAI's error body, naming the parameter at fault."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError):
        return error_body(err.status, err.message, err.param, err.kind)

    @app.exception_handler(SessionError)
    async def session_error(request: Request, err: SessionError):
        return error_body(err.status, err.message, err.param, INVALID)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError):
        first = err.errors()[0]
        if first.get("type") == "json_invalid":
            return error_body(400, f"malformed JSON: {first.get('msg')}", "body", "invalid_request_error")
        param = _param(first.get("loc", ()))
        return error_body(400, f"{param}: {first.get('msg')}", param, "invalid_request_error")


def _key_check(api_key: str | None):
    """The dependency that refuses a request without the server's API key (none set: every request)."""

    def require_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        if not secrets.compare_digest(token.encode(), api_key.encode()):  # constant time
            raise ApiError(
                401, "a valid API key is required (Authorization: Bearer KEY)", kind="authentication_error"
            )

    return require_key


def _add_judging_routes(
    app: FastAPI, scorer, batcher: DynamicBatcher, options: ServeOptions, require_key
) -> None:
    """/v1/guard (one exchange) and /v1/moderations (OpenAI's moderation API), through the batcher."""

    async def judge(records: list[dict], params: list[str] | None = None) -> list[tuple[dict, dict]]:
        prepared = []
        for i, record in enumerate(records):
            try:
                prepared.append(scorer.prepare(record))
            except ValueError as err:
                param = params[i] if params else "messages" if record.get("messages") else "question"
                raise ApiError(400, f"{param}: {err}" if params else str(err), param) from None
        try:
            results = await batcher.submit(prepared)
        except WorkerError as err:
            raise ApiError(500, f"the guard failed on this batch: {err}", kind="server_error") from None
        return [(result, p.truncation) for result, p in zip(results, prepared)]

    @app.post("/v1/guard", dependencies=[require_key])
    async def guard(body: GuardRequest):
        record = guard_record(body)
        ((result, cut),) = await judge([record])
        answer = {
            "id": record["id"],
            "label": result["pred_label"],
            "p_unsafe": result["p_unsafe"],
            "threshold": scorer.threshold,
            "flagged": result["pred_label"] == UNSAFE,
            "truncated": cut or False,
        }
        if "categories" in result:
            answer["categories"] = result["categories"]
        return answer

    @app.post("/v1/moderations", dependencies=[require_key])
    async def moderations(body: ModerationRequest):
        records = moderation_records(body.input, options.max_inputs)
        judged = await judge(records, [f"input[{i}]" for i in range(len(records))])
        names = list(scorer.fmt.policy) if scorer.fmt.with_category else []
        return {
            "id": f"modr-{uuid.uuid4().hex}",
            "model": options.model_name,
            "results": [moderation_result(result, cut, names) for result, cut in judged],
        }


def _add_status_routes(
    app: FastAPI, scorer, batcher: DynamicBatcher, metrics: ServeMetrics, options: ServeOptions
) -> None:
    @app.get("/health")
    async def health():
        return {
            "status": "ok",
            "model": options.model_name,
            "threshold": scorer.threshold,
            "max_batch_size": options.max_batch_size,
            "queue_depth": batcher.depth(),
        }

    @app.get("/metrics")
    async def prometheus():
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)


def guard_record(body: GuardRequest) -> dict:
    """The request as a guard-schema record, checked by the same validation as a data file's record."""
    raw = {k: v for k, v in body.model_dump().items() if v is not None}
    raw.setdefault("id", "request")
    return checked_record(raw, None)


def checked_record(raw: dict, param: str | None) -> dict:
    """A request's record through the data files' own validation; a bad field is a 400 naming it."""
    try:
        (record,), _ = validate_records([Located(raw, "request", None)], require_label=False)
    except DataError as err:
        field = f"{param}.{err.field}" if param and err.field else param or err.field
        raise ApiError(400, f"{field or 'body'}: {err.message}", field) from None
    return record


EXCHANGE_FIELDS = {"question", "response", "messages"}


def moderation_records(value, max_inputs: int) -> list[dict]:
    """The moderation `input` as guard records (docs/serving.md). A text, or a text part {type: text,
    text}, is a question judged alone, as OpenAI's endpoint reads its input; an object {question,
    response} or {messages} is an exchange, judged as /v1/guard judges it."""
    items = [value] if isinstance(value, str) else value
    records = []
    for i, item in enumerate(items):
        param = f"input[{i}]"
        if isinstance(item, dict) and item.get("type") == "text":
            item = item.get("text")
        if isinstance(item, str) and item.strip():
            records.append(checked_record({"id": i, "question": item}, param))
        elif isinstance(item, dict) and EXCHANGE_FIELDS & set(item) and set(item) <= EXCHANGE_FIELDS:
            records.append(checked_record({"id": i, **item}, param))
        else:
            raise ApiError(
                400,
                f"{param}: must be non-empty text, a text part, or an exchange "
                "{question, response} or {messages}",
                param,
            )
    if not records:
        raise ApiError(400, "input: no text to moderate", "input")
    if len(records) > max_inputs:
        raise ApiError(400, f"input: {len(records)} texts, at most {max_inputs} per request", "input")
    return records


def moderation_result(result: dict, cut: dict, names: list[str]) -> dict:
    """One OpenAI moderation result. `unsafe` is the guard's own decision and score; with
    format.with_category, each taxonomy category is flagged when the guard names it, scored with
    p_unsafe when named and 0 otherwise."""
    flagged, p = result["pred_label"] == UNSAFE, float(result["p_unsafe"])
    named = set(result.get("categories", []))
    categories = {"unsafe": flagged, **{n: flagged and n in named for n in names}}
    scores = {"unsafe": p, **{n: p if flagged and n in named else 0.0 for n in names}}
    out = {
        "flagged": flagged,
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": {k: ["text"] for k in categories},
    }
    if cut:
        out["truncated"] = cut
    return out
