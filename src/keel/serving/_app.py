"""The HTTP face of a serving runtime (FastAPI on uvicorn).

Routes read the body (refusing an oversized one before buffering it), parse it, hand it
to the runtime and render the answer; every failure becomes a JSON error with the
request id. Bad input never reaches the model and never yields a 500: malformed bodies
are 400, oversized ones 413, signature breaks 422 naming row, column and reason. A
model that raises fails that request alone (500 with its request id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response

from keel.errors import (
    Conflict,
    InvalidArgument,
    KeelError,
    MalformedRequest,
    PayloadTooLarge,
    Unavailable,
    http_status,
)
from keel.serving._decode import parse_body
from keel.serving._metrics import CONTENT_TYPE_LATEST
from keel.serving._openapi import add_signature_schemas
from keel.serving._predlog import FeedbackEntry
from keel.serving._runtime import Served, ServingRuntime

__all__ = ["create_app"]

log = logging.getLogger("keel.serving")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_JSON = "application/json"
MAX_FEEDBACK = 10_000


def create_app(runtime: ServingRuntime) -> ServingApp:
    """A FastAPI app serving ``runtime``'s deployment; the runtime starts with the app."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.get_running_loop().create_task(runtime.start_in_background())
        # Accept connections only once the first load attempt ended: a worker never
        # takes traffic it cannot serve. If that attempt failed, the server comes up
        # anyway (503 on /ready with the reason) and keeps retrying.
        await runtime.attempted.wait()
        try:
            yield
        finally:
            loading.cancel()
            await runtime.stop()

    app = FastAPI(
        title=f"Keel deployment {runtime.deployment}",
        description="Predictions from a Keel deployment; requests follow the model's signature.",
        lifespan=lifespan,
    )
    options = runtime.options

    endpoint = PredictEndpoint(runtime)

    async def predict_route(request: Request, name: str) -> Response:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        status, content, extra = await endpoint.handle(name, headers, request.stream())
        return Response(content, status, media_type=_JSON, headers=dict(extra))

    @app.post("/predict", summary="Predict on records or columns", response_class=Response)
    async def predict(request: Request) -> Response:
        return await predict_route(request, "predict")

    @app.post("/invocations", summary="MLflow scoring protocol", response_class=Response)
    async def invocations(request: Request) -> Response:
        return await predict_route(request, "invocations")

    @app.post("/feedback", summary="Record ground truth for served rows", status_code=202)
    async def feedback(request: Request) -> Response:
        request_id = _request_id(request.headers.get("x-request-id"))
        try:
            body = await _read_body(
                request.headers.get("content-length"), request.stream(), options.max_body_bytes
            )
            entries = _feedback_entries(parse_body(body))
            if runtime.predlog is None:
                raise Conflict(
                    "this server runs without a prediction log (--no-log), so feedback cannot "
                    "be recorded; restart it with logging on"
                )
            for entry in entries:
                if not runtime.predlog.append(entry):
                    raise Unavailable("the prediction log queue is full; retry in a moment")
        except KeelError as error:
            return _error(error, request_id, http_status(error))
        return Response(orjson.dumps({"accepted": len(entries)}), 202, media_type=_JSON)

    @app.get("/health", summary="Liveness")
    async def health() -> Response:
        return Response(orjson.dumps({"status": "ok"}), media_type=_JSON)

    @app.get("/ready", summary="Readiness: 200 once every model is loaded")
    async def ready() -> Response:
        if runtime.ready:
            return Response(orjson.dumps({"status": "ready"}), media_type=_JSON)
        body = {"status": "loading", "error": runtime.load_error}
        return Response(orjson.dumps(body), 503, media_type=_JSON)

    @app.get("/metadata", summary="Deployment, policy, signatures and lineage summaries")
    async def metadata() -> Response:
        return Response(orjson.dumps(_metadata(runtime), default=str), media_type=_JSON)

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics_route() -> Response:
        return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None or app.state.openapi_for != _primary_source(runtime):
            schema = get_openapi(
                title=app.title, version="1", description=app.description, routes=app.routes
            )
            model = runtime.router.routes[0].model
            app.openapi_schema = add_signature_schemas(
                schema, None if model is None else model.loaded.signature
            )
            app.state.openapi_for = _primary_source(runtime)
        return app.openapi_schema

    app.state.openapi_for = None
    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return _error(
            KeelError(f"internal error ({type(error).__name__}); see the server log"),
            _request_id(request.headers.get("x-request-id")),
            500,
        )

    return ServingApp(app, endpoint)


class ServingApp:
    """The ASGI app: ``POST /predict`` and ``/invocations`` straight to their handler.

    The hot routes skip the framework's middleware stack (measured at half the time of
    a one-row request); everything else, including their OpenAPI documentation, is the
    FastAPI app (``.fastapi``).
    """

    def __init__(self, app: FastAPI, endpoint: PredictEndpoint) -> None:
        self.fastapi = app
        self.endpoint = endpoint
        self.runtime = endpoint.runtime

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path in ("/predict", "/invocations"):
                await self.endpoint.asgi(scope, receive, send, path[1:])
                return
        await self.fastapi(scope, receive, send)


class PredictEndpoint:
    """Reads, parses, decodes, predicts and renders one prediction request."""

    def __init__(self, runtime: ServingRuntime) -> None:
        self.runtime = runtime

    async def asgi(self, scope: Any, receive: Any, send: Any, name: str) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        try:
            status, content, extra = await self.handle(name, headers, chunks())
        except _Disconnected:
            return
        raw = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
        ]
        raw.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra)
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})

    async def handle(
        self, endpoint: str, headers: dict[str, str], body: AsyncIterator[bytes]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        """(status, JSON body, extra headers) of one request; never raises for bad input."""
        runtime = self.runtime
        started = time.perf_counter()
        request_id = _request_id(headers.get("x-request-id"))
        metrics = runtime.metrics
        metrics.in_flight_child.inc()
        runtime.in_flight += 1
        runtime.arriving += 1
        arrived = True
        variant_name, version = "-", "-"
        extra = [("x-request-id", request_id)]
        try:
            data = await _read_body(
                headers.get("content-length"), body, runtime.options.max_body_bytes
            )
            variant, model = runtime.pick(headers.get("x-routing-key"))
            variant_name, version = variant.name, model.label
            decoded = model.decoder.decode_body(data, endpoint=endpoint)
            runtime.arriving -= 1
            arrived = False
            served = await runtime.predict(
                variant,
                model,
                decoded,
                request_id=request_id,
                started=started,
                body=data,
                endpoint=endpoint,
            )
            content = _render(served, request_id, runtime.deployment, endpoint)
            status = 200
            extra.extend((("x-model-version", model.label), ("x-variant", variant.name)))
        except KeelError as error:
            status = http_status(error)
            content = _error_body(error, request_id)
        except _Disconnected:
            raise
        except Exception as error:  # the model raised: this request fails, the server stays up
            status = 500
            log.exception("request %s failed in the model", request_id)
            content = _error_body(
                KeelError(
                    f"the model failed on this request ({type(error).__name__}: {error}); "
                    f"the server is up, report request id {request_id}"
                ),
                request_id,
            )
        finally:
            if arrived:
                runtime.arriving -= 1
            runtime.in_flight -= 1
            metrics.in_flight_child.dec()
        metrics.observe_request(
            endpoint, status, version, variant_name, time.perf_counter() - started
        )
        return status, content, extra


class _Disconnected(Exception):
    """The client went away before its body arrived."""


def _primary_source(runtime: ServingRuntime) -> str | None:
    model = runtime.router.routes[0].model
    return None if model is None else model.source


def _request_id(given: str | None) -> str:
    if given is not None and _REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


async def _read_body(length: str | None, stream: AsyncIterator[bytes], cap: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``cap`` bytes."""
    if length is not None:
        if not length.isdigit():
            raise MalformedRequest(f"Content-Length {length[:40]!r} is not a number")
        if int(length) > cap:
            raise PayloadTooLarge(
                f"request body of {int(length)} bytes is over the cap of {cap} bytes; split the "
                "rows into several requests or raise --max-body-bytes"
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > cap:
            raise PayloadTooLarge(
                f"request body is over the cap of {cap} bytes; split the rows into several "
                "requests or raise --max-body-bytes"
            )
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise MalformedRequest('the request body is empty; send JSON such as [{"age": 41, ...}]')
    return body


def _render(served: Served, request_id: str, deployment: str, endpoint: str) -> bytes:
    labels = _plain(served.prediction.labels)
    if endpoint == "invocations":
        return orjson.dumps({"predictions": labels}, option=orjson.OPT_SERIALIZE_NUMPY)
    body: dict[str, Any] = {
        "request_id": request_id,
        "deployment": deployment,
        "variant": served.variant,
        "model": {
            "name": served.model.name,
            "version": served.model.version,
            "source": served.model.source,
        },
        "predictions": labels,
    }
    if served.prediction.proba is not None:
        body["classes"] = served.model.classes
        body["probabilities"] = served.prediction.proba
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY, default=_default)


def _plain(values: Any) -> Any:
    if values.dtype.kind in "iufb":
        return values
    return values.tolist()


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _error_body(error: KeelError, request_id: str) -> bytes:
    return orjson.dumps({"error": error.to_dict(), "request_id": request_id}, default=str)


def _error(error: KeelError, request_id: str, status: int) -> Response:
    return Response(
        _error_body(error, request_id),
        status,
        media_type=_JSON,
        headers={"x-request-id": request_id},
    )


def _feedback_entries(payload: Any) -> list[FeedbackEntry]:
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise MalformedRequest('send {"request_id": "...", "label": ...} or a list of them')
    now = time.time()
    out: list[FeedbackEntry] = []
    for i, item in enumerate(items):
        where = f"feedback[{i}]" if isinstance(payload, list) else "feedback"
        if not isinstance(item, dict):
            raise MalformedRequest(
                f'{where} must be an object {{"request_id": "...", "label": ...}}'
            )
        request_id = item.get("request_id")
        if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
            raise InvalidArgument(
                f"{where}.request_id must be the request id a prediction returned (1-128 of "
                f"A-Z a-z 0-9 . _ : -), got {request_id!r}"
            )
        if "labels" in item:
            labels = item["labels"]
            if not isinstance(labels, list) or not labels:
                raise InvalidArgument(f"{where}.labels must be a non-empty list, one label per row")
            rows: list[tuple[int | None, Any]] = list(enumerate(labels))
        elif "label" in item:
            row = item.get("row")
            if row is not None and (isinstance(row, bool) or not isinstance(row, int) or row < 0):
                raise InvalidArgument(f"{where}.row must be a row number (0 or more), got {row!r}")
            rows = [(row, item["label"])]
        else:
            raise InvalidArgument(f"{where} needs 'label' (or 'labels', one per row)")
        for row, label in rows:
            if (
                label is None
                or isinstance(label, dict | list)
                or (isinstance(label, float) and not math.isfinite(label))
            ):
                raise InvalidArgument(
                    f"{where}: a label must be a string, number or boolean, got {label!r}"
                )
            out.append(FeedbackEntry(now, request_id, row, orjson.dumps(label).decode()))
        if len(out) > MAX_FEEDBACK:
            raise PayloadTooLarge(f"at most {MAX_FEEDBACK} labels per request; send them in parts")
    return out


def _metadata(runtime: ServingRuntime) -> dict[str, Any]:
    router = runtime.router
    variants = []
    for v in router.variants:
        model = v.model
        entry: dict[str, Any] = {"name": v.name, "role": v.role, "share": v.share, "uri": v.uri}
        if model is not None:
            signature = model.loaded.signature
            entry["model"] = {
                "name": model.name,
                "version": model.version,
                "source": model.source,
                "signature": None if signature is None else signature.to_dict(),
                "classes": model.classes,
                "lineage": model.summary,
            }
        variants.append(entry)
    return {
        "deployment": runtime.deployment,
        "ready": runtime.ready,
        "revision": router.revision,
        "policy": router.policy.to_dict(),
        "variants": variants,
        "limits": {
            "max_rows": runtime.options.max_rows,
            "max_body_bytes": runtime.options.max_body_bytes,
            "max_batch_rows": runtime.options.max_batch_rows,
            "max_wait_seconds": runtime.options.max_wait,
        },
    }
