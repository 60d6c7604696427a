"""The model server's HTTP/WebSocket surface (Starlette).

ModelArts-style endpoints:
    GET  /health                      200 {"health": "true"} once the model is loaded, else 503
    <method> <apis[0].url> (default POST /)
                                      JSON or multipart in, the service's JSON out; with
                                      `Accept: text/event-stream` the answer streams as SSE
    WebSocket <apis[0].url>           text frames = JSON requests, binary frames = one file each

Open Inference Protocol (KServe V2), model name = the AI application, version = its version:
    GET  /v2                          {"name", "version", "extensions"}
    GET  /v2/health/live | /v2/health/ready
    GET  /v2/models/{m}[/versions/{v}][/ready]
    POST /v2/models/{m}[/versions/{v}]/infer   JSON or binary tensor extension

Errors: ModelArts routes answer `{"error_code": "MR.xxxx", "error_msg": …}` (400 when the model
refuses the input, 500 when it fails); V2 routes answer `{"error": message}`.
"""
from __future__ import annotations

import io
import json
import logging
import traceback

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from model_service.model_service import InputError

from . import v2
from .loader import LoadedModel

logger = logging.getLogger("atelier_modelserver")

SERVER_NAME = "atelier-modelserver"
SERVER_VERSION = "1"
# Largest request the server parses (the gateway already caps API calls at 12 MB).
MAX_BODY_BYTES = 64 * 1024 * 1024


class _Encoder(json.JSONEncoder):
    """numpy and torch values in results become plain JSON."""

    def default(self, value):
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        if hasattr(value, "tolist"):
            return value.tolist()
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return super().default(value)


def dumps(value) -> bytes:
    return json.dumps(value, cls=_Encoder, ensure_ascii=False, separators=(",", ":")).encode()


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "error_msg": message}, status_code=status)


class Pipeline:
    """Runs the service's steps in worker threads, `threads` at a time (1 by default: model code
    is rarely thread-safe; more capacity comes from more instances)."""

    def __init__(self, model: LoadedModel, threads: int = 1):
        self.model = model
        self.limiter = anyio.CapacityLimiter(max(1, threads))

    async def call(self, func, *args):
        return await anyio.to_thread.run_sync(func, *args, limiter=self.limiter)

    def run(self, data):
        """(status, body) for one request's data: 200 with the result, 400 refused, 500 failed."""
        service = self.model.service
        try:
            prepared = service._preprocess(data)
        except Exception as exc:  # anything raised while reading the input is the caller's problem
            return 400, {"error_code": "MR.0101", "error_msg": _message(exc)}
        try:
            result = service._postprocess(service._inference(prepared))
            return 200, json.loads(dumps(result))
        except InputError as exc:
            return 400, {"error_code": "MR.0101", "error_msg": _message(exc)}
        except (TypeError, ValueError) as exc:
            if "JSON serializable" in str(exc):
                return 500, {"error_code": "MR.0106", "error_msg": f"the result of _postprocess is not JSON: {exc}"}
            logger.error("inference failed:\n%s", traceback.format_exc())
            return 500, {"error_code": "MR.0105", "error_msg": _message(exc)}
        except Exception as exc:
            logger.error("inference failed:\n%s", traceback.format_exc())
            return 500, {"error_code": "MR.0105", "error_msg": _message(exc)}


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError) and exc.args:
        text = f"missing key {exc.args[0]!r}"
    return text or type(exc).__name__


def _with_uuid(request_data, status: int, body):
    """Echo `meta.uuid` of the ModelArts envelope (seed-06 §5.3) in successful dict answers."""
    if status == 200 and isinstance(body, dict) and isinstance(request_data, dict):
        meta = request_data.get("meta")
        if isinstance(meta, dict) and "meta" not in body:
            body = {"meta": {"uuid": str(meta.get("uuid", ""))}, **body}
    return body


async def _read_data(request: Request):
    """The request as the service sees it: a dict from JSON, or {field: {filename: file}}."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise InputError(f"the request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1000, max_fields=1000, max_part_size=MAX_BODY_BYTES)
        data: dict = {}
        for field, value in form.multi_items():
            if hasattr(value, "filename") and hasattr(value, "read"):
                content = await value.read()
                data.setdefault(field, {})[value.filename or field] = io.BytesIO(content)
            else:
                data[field] = value
        return data
    body = await request.body()
    if not body:
        raise InputError("the request body is empty; send JSON or a multipart form")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise InputError(f"the body is not valid JSON ({exc}); send application/json or multipart/form-data") from None


def build_app(model: LoadedModel, *, threads: int = 1) -> Starlette:
    pipeline = Pipeline(model, threads)
    api = model.api
    # Which model answered: callers of a service with several versions can tell them apart.
    model_headers = {"X-Model-Name": model.name, "X-Model-Version": model.version}
    api_url, api_method = api.get("url", "/"), api.get("method", "POST")

    def not_ready() -> JSONResponse | None:
        if model.ready:
            return None
        reason = model.error or "the model is still loading"
        return _error(503, "MR.0100", f"not ready: {reason}")

    async def health(request: Request):
        if model.ready:
            return JSONResponse({"health": "true"})
        return JSONResponse({"health": "false", "reason": model.error or "loading"}, status_code=503)

    async def predict(request: Request):
        if request.method != api_method:
            return _error(405, "ModelArts.2803", f"Method Not Allowed: this API takes {api_method}")
        if (refused := not_ready()) is not None:
            return refused
        try:
            data = await _read_data(request)
        except InputError as exc:
            return _error(400, "MR.0101", str(exc))
        if "text/event-stream" in request.headers.get("accept", ""):
            response = _sse(pipeline, data)
            response.headers.update(model_headers)
            return response
        status, body = await pipeline.call(pipeline.run, data)
        return Response(dumps(_with_uuid(data, status, body)), status_code=status, media_type="application/json",
                        headers=model_headers)

    async def websocket(ws: WebSocket):
        await ws.accept()
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if (refused := not_ready()) is not None:
                    await ws.send_text(refused.body.decode())
                    continue
                if message.get("bytes") is not None:
                    data = {"images": {"frame": io.BytesIO(message["bytes"])}}
                else:
                    try:
                        data = json.loads(message.get("text") or "")
                    except ValueError as exc:
                        await ws.send_text(dumps({"error_code": "MR.0101", "error_msg": f"not JSON: {exc}"}).decode())
                        continue
                status, body = await pipeline.call(pipeline.run, data)
                await ws.send_text(dumps(_with_uuid(data, status, body)).decode())
        except WebSocketDisconnect:
            return

    # -- KServe V2 ------------------------------------------------------------------------------

    def v2_model(request: Request) -> JSONResponse | None:
        name = request.path_params["model"]
        version = request.path_params.get("version")
        if name != model.name:
            return JSONResponse({"error": f"Model with name {name} does not exist."}, status_code=404)
        if version is not None and version != model.version:
            return JSONResponse({"error": f"Model {name} has no version {version}; this server serves "
                                          f"{model.version}."}, status_code=404)
        return None

    async def v2_server(request: Request):
        return JSONResponse({"name": SERVER_NAME, "version": SERVER_VERSION,
                             "extensions": ["binary_tensor_data", "model_version"]})

    async def v2_live(request: Request):
        return JSONResponse({"live": True})

    async def v2_ready(request: Request):
        return JSONResponse({"ready": model.ready}, status_code=200 if model.ready else 503)

    async def v2_model_ready(request: Request):
        if (missing := v2_model(request)) is not None:
            return missing
        return JSONResponse({"name": model.name, "ready": model.ready}, status_code=200 if model.ready else 503)

    def metadata() -> tuple[list, list]:
        service = model.service
        if service is not None and hasattr(service, "v2_metadata"):
            return service.v2_metadata()
        return v2.metadata_from_schema(api)

    async def v2_metadata(request: Request):
        if (missing := v2_model(request)) is not None:
            return missing
        if not model.ready:
            return JSONResponse({"error": f"Model {model.name} is not ready."}, status_code=503)
        inputs, outputs = metadata()
        return JSONResponse({"name": model.name, "versions": [model.version],
                             "platform": f"atelier_{model.config.get('model_type', '').lower()}",
                             "inputs": inputs, "outputs": outputs})

    def infer_sync(tensors: dict):
        service = model.service
        if hasattr(service, "v2_infer"):
            return service.v2_infer(tensors)
        data = {name: [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in array.reshape(-1)]
                if array.dtype == object else array.tolist() for name, array in tensors.items()}
        return v2.to_arrays(service._postprocess(service._inference(service._preprocess(data))))

    async def v2_infer(request: Request):
        if (missing := v2_model(request)) is not None:
            return missing
        if not model.ready:
            return JSONResponse({"error": f"Model {model.name} is not ready."}, status_code=503)
        body = await request.body()
        try:
            infer_request, tensors = v2.request_decode(body, request.headers.get("inference-header-content-length"))
        except v2.V2Error as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            outputs = await pipeline.call(infer_sync, tensors)
            content, headers = v2.response_encode(model_name=model.name, model_version=model.version,
                                                  request=infer_request, outputs=outputs)
        except (InputError, v2.V2Error) as exc:
            return JSONResponse({"error": _message(exc)}, status_code=400)
        except Exception as exc:
            logger.error("V2 inference failed:\n%s", traceback.format_exc())
            return JSONResponse({"error": _message(exc)}, status_code=500)
        media = headers.pop("content-type")
        return Response(content, media_type=media, headers=headers)

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v2", v2_server, methods=["GET"]),
        Route("/v2/health/live", v2_live, methods=["GET"]),
        Route("/v2/health/ready", v2_ready, methods=["GET"]),
        # Version routes first: the shorter ones would otherwise swallow them (anchors-mlops §2.7).
        Route("/v2/models/{model}/versions/{version}/ready", v2_model_ready, methods=["GET"]),
        Route("/v2/models/{model}/versions/{version}/infer", v2_infer, methods=["POST"]),
        Route("/v2/models/{model}/versions/{version}", v2_metadata, methods=["GET"]),
        Route("/v2/models/{model}/ready", v2_model_ready, methods=["GET"]),
        Route("/v2/models/{model}/infer", v2_infer, methods=["POST"]),
        Route("/v2/models/{model}", v2_metadata, methods=["GET"]),
        Route(api_url, predict, methods=sorted({"GET", "POST", "PUT", "PATCH", "DELETE"})),
        WebSocketRoute(api_url, websocket),
    ]
    return Starlette(routes=routes)


def _sse(pipeline: Pipeline, data) -> StreamingResponse:
    """Stream the answer as Server-Sent Events: `_stream` items one by one, else the whole result."""
    service = pipeline.model.service

    async def events():
        stream = getattr(service, "_stream", None)
        if callable(stream):
            iterator = await pipeline.call(lambda: iter(stream(data)))
            done = object()
            while True:
                try:
                    item = await pipeline.call(next, iterator, done)
                except Exception as exc:
                    yield b"event: error\ndata: " + dumps({"error_code": "MR.0105", "error_msg": _message(exc)}) + b"\n\n"
                    return
                if item is done:
                    break
                yield b"data: " + dumps(item) + b"\n\n"
        else:
            status, body = await pipeline.call(pipeline.run, data)
            yield (b"data: " if status == 200 else b"event: error\ndata: ") + dumps(_with_uuid(data, status, body)) + b"\n\n"
        yield b"event: done\ndata: {}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream;charset=UTF-8",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
