"""`python -m atelier_modelserver.batch`: batch inference over staged files (seed-06 §6).

Input: `--input` (a staged folder, or a staged `.manifest` whose sources the console resolved
into `--sources`, a JSON list of {"source", "local"} with `local` relative to the inputs
folder or an https URL). Every file is one request (CSV files: one request per row, built with
`--mapping`), sent to the package's pipeline in-process (`--package`), or over HTTP to a
custom server started with `--command` (it listens on $PORT).

Output in `--output`: `infer-result-<task>[_<k>].manifest` (JSON lines: source, result
SUCCESSFUL|FAILED, inference-loc or error_message) and `infer-result-<task>/<relative
path>_result.txt` per successful input (the model's response body; for CSV one JSON line per
row). `inference-loc` is written as `<output-uri>/infer-result-<task>/…`. With `--shards N`
the files are split by index and shard k writes `infer-result-<task>_<k+1>.manifest`.
Progress goes out as metric lines `batch_total`, `batch_done`, `batch_failed`.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

# Lines per manifest file before it is split into _1, _2, … (single shard).
MANIFEST_SPLIT_LINES = int(os.environ.get("BATCH_MANIFEST_SPLIT_LINES", "10000"))
CAST = {"number": float, "integer": int, "boolean": lambda v: v.strip().lower() in ("1", "true", "yes"),
        "string": str}


def _metric(name: str, value: float) -> None:
    sys.stdout.write("ATELIER_METRIC " + json.dumps({"name": name, "value": value}) + "\n")
    sys.stdout.flush()


def mapping_apply(schema, row: list[str]):
    """Build one request from a CSV row with a mapping schema whose leaves carry `index`."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if kind == "object":
        out = {}
        for name, sub in (schema.get("properties") or {}).items():
            value = mapping_apply(sub, row)
            if value is not None:
                out[name] = value
        return out
    if kind == "array":
        items = schema.get("items")
        items = items[0] if isinstance(items, list) and items else items
        value = mapping_apply(items, row)
        return [value] if value is not None else []
    index = schema.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0 or index >= len(row):
        return None  # a parameter without a valid index is ignored (seed-06 §6.2)
    cast = CAST.get(kind, str)
    try:
        return cast(row[index])
    except ValueError:
        raise ValueError(f"column {index} value {row[index]!r} is not {kind}") from None


def file_field(api: dict) -> str:
    props = ((api.get("request") or {}).get("data") or {}).get("properties") or {}
    for name, schema in props.items():
        if isinstance(schema, dict) and schema.get("type") == "file":
            return name
    return "images"


class Caller:
    """Sends one request's data to the model; returns the response body (bytes) or raises."""

    def __init__(self, args):
        self.proc = None
        self.tls = None
        if args.command:
            port = _free_port()
            env = dict(os.environ, PORT=str(port))
            self.proc = subprocess.Popen(json.loads(args.command), env=env)
            # An image that declares HTTPS is called over TLS; its certificate may be self-signed
            # (it is this process's own child, on the loopback).
            if args.scheme == "https":
                import ssl

                self.tls = ssl.create_default_context()
                self.tls.check_hostname, self.tls.verify_mode = False, ssl.CERT_NONE
            self.url = f"{args.scheme}://127.0.0.1:{port}{args.request_path}"
            self._wait(f"{args.scheme}://127.0.0.1:{port}{args.health_path or ''}", bool(args.health_path), port)
            self.pipeline = None
        else:
            from .app import Pipeline, dumps
            from .loader import LoadedModel, model_load, package_root

            model = LoadedModel(name=args.name, version=args.version, package_dir=package_root(args.package))
            model_load(model)
            if model.error:
                raise SystemExit(f"Model load failed: {model.error}")
            self.pipeline, self.dumps = Pipeline(model), dumps

    def _wait(self, url: str, http: bool, port: int) -> None:
        import socket

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server command exited with code {self.proc.returncode} before it was ready")
            try:
                if http:
                    with urllib.request.urlopen(url, timeout=2, context=self.tls):
                        return
                else:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise SystemExit("the server command did not become ready within 300 s")

    def call(self, data, *, is_json: bool) -> bytes:
        if self.pipeline is not None:
            status, body = self.pipeline.run(data)
            if status != 200:
                raise RuntimeError(body.get("error_msg") if isinstance(body, dict) else str(body))
            return self.dumps(body)
        if is_json:
            payload, ctype = json.dumps(data).encode(), "application/json"
        else:
            payload, ctype = _multipart(data)
        request = urllib.request.Request(self.url, data=payload, headers={"Content-Type": ctype}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=40, context=self.tls) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"HTTP {exc.code}: {exc.read()[:300].decode('utf-8', 'replace')}") from None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _multipart(data: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for field, files in data.items():
        for name, handle in files.items():
            out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                      "Content-Type: application/octet-stream\r\n\r\n".encode())
            out.write(handle.read())
            out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def _items(args) -> list[tuple[str, str, Path | str]]:
    """(source as written in the output manifest, relative name for the result, local path or URL)."""
    root = Path(args.input)
    if args.sources:
        sources = Path(args.sources)
        if sources.is_dir():  # the run engine stages a file input inside a folder of its name
            sources = next(sources.glob("*.json"))
        entries = json.loads(sources.read_text())
        base = Path(args.inputs_dir)
        items = []
        for entry in entries:
            local = entry["local"]
            name = entry.get("name") or local.rsplit("/", 1)[-1]
            items.append((entry["source"], name, local if local.startswith("https://") else base / local))
        return items
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [(f"{args.input_uri.rstrip('/')}/{p.relative_to(root).as_posix()}", p.relative_to(root).as_posix(), p)
            for p in files]


def _read(location) -> bytes:
    if isinstance(location, str):
        with urllib.request.urlopen(location, timeout=60) as response:  # noqa: S310 - pre-signed https only
            return response.read()
    return Path(location).read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atelier_modelserver.batch")
    parser.add_argument("--input", default=os.environ.get("ATELIER_INPUT_DATA", ""))
    parser.add_argument("--input-uri", default="")
    parser.add_argument("--sources", default=os.environ.get("ATELIER_INPUT_SOURCES", ""))
    parser.add_argument("--inputs-dir", default=os.environ.get("ATELIER_INPUTS_DIR", ""))
    parser.add_argument("--output", default=os.environ.get("ATELIER_OUTPUT_RESULT", ""))
    parser.add_argument("--output-uri", required=True)
    parser.add_argument("--task-id", required=True)
    parser.add_argument("--package", default=os.environ.get("ATELIER_INPUT_PACKAGE", ""))
    parser.add_argument("--name", default=os.environ.get("MODEL_NAME", "model"))
    parser.add_argument("--version", default=os.environ.get("MODEL_VERSION", "0.0.1"))
    parser.add_argument("--command", default="")
    parser.add_argument("--request-path", default="/")
    parser.add_argument("--health-path", default="")
    parser.add_argument("--scheme", choices=("http", "https"), default="http")
    parser.add_argument("--api", default="{}")
    parser.add_argument("--mapping", default="")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    args = parser.parse_args(argv)

    api = json.loads(args.api)
    is_json = (api.get("request") or {}).get("Content-type", "application/json") == "application/json"
    mapping = json.loads(args.mapping) if args.mapping else None
    field = file_field(api)
    items = [item for index, item in enumerate(_items(args)) if index % args.shards == args.shard]
    out = Path(args.output)
    results_dir = out / f"infer-result-{args.task_id}"
    _metric("batch_total", len(items))
    caller = Caller(args)
    lines: list[dict] = []
    done = failed = 0
    try:
        for source, name, location in items:
            try:
                raw = _read(location)
                if name.lower().endswith(".csv") and mapping:
                    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
                    bodies = []
                    for number, row in enumerate(r for r in rows if r):
                        try:
                            request = mapping_apply(mapping, row)
                        except ValueError as exc:
                            raise ValueError(f"row {number + 1}: {exc}") from None
                        bodies.append(caller.call(request, is_json=True).decode("utf-8", "replace"))
                    body = ("\n".join(bodies) + "\n").encode()
                elif is_json:
                    try:
                        request = json.loads(raw)
                    except ValueError:
                        raise ValueError("the file is not JSON and not a CSV with a mapping") from None
                    body = caller.call(request, is_json=True)
                else:
                    body = caller.call({field: {name.rsplit("/", 1)[-1]: io.BytesIO(raw)}}, is_json=False)
                target = results_dir / f"{name}_result.txt"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)
                lines.append({"source": source, "result": "SUCCESSFUL",
                              "inference-loc": f"{args.output_uri.rstrip('/')}/infer-result-{args.task_id}/"
                                               f"{name}_result.txt"})
                done += 1
            except Exception as exc:  # one bad input never stops the batch
                lines.append({"source": source, "result": "FAILED", "error_message": str(exc) or type(exc).__name__})
                failed += 1
            if (done + failed) % 10 == 0:
                _metric("batch_done", done)
                _metric("batch_failed", failed)
    finally:
        caller.close()
    _metric("batch_done", done)
    _metric("batch_failed", failed)
    out.mkdir(parents=True, exist_ok=True)
    chunks = [lines[i:i + MANIFEST_SPLIT_LINES] for i in range(0, len(lines), MANIFEST_SPLIT_LINES)] or [[]]
    for number, chunk in enumerate(chunks, start=1):
        if args.shards > 1:
            suffix = f"_{args.shard + 1}" if len(chunks) == 1 else f"_{args.shard + 1}_{number}"
        else:
            suffix = "" if len(chunks) == 1 else f"_{number}"
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in chunk)
        (out / f"infer-result-{args.task_id}{suffix}.manifest").write_text(text, encoding="utf-8")
    print(f"Batch finished: {done} succeeded, {failed} failed of {len(items)} inputs.", flush=True)
    return 0 if done or not items else 1


if __name__ == "__main__":
    sys.exit(main())
