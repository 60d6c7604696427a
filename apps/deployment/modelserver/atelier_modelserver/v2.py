"""Open Inference Protocol (KServe V2) tensors: JSON and binary-extension encoding and decoding.

Request bodies are JSON, optionally followed by raw tensors when the header
`Inference-Header-Content-Length` gives the JSON part's length (binary tensor extension):
each binary input carries `parameters.binary_data_size`, tensors follow in input order,
little-endian, BYTES elements as a 4-byte length prefix plus the bytes.
"""
from __future__ import annotations

import json
import struct

import numpy as np

DTYPES = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}


class V2Error(ValueError):
    """A malformed inference request (400 with `{"error": message}`)."""


def datatype_of(array: np.ndarray) -> str:
    if array.dtype == np.object_ or array.dtype.kind in "SU":
        return "BYTES"
    for name, dtype in DTYPES.items():
        if name != "BYTES" and array.dtype == np.dtype(dtype):
            return name
    raise V2Error(f"no V2 datatype for numpy dtype {array.dtype}")


def _bytes_decode(raw: bytes, count: int) -> list[bytes]:
    items, offset = [], 0
    for _ in range(count):
        if offset + 4 > len(raw):
            raise V2Error("BYTES tensor data ends inside an element's length prefix")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        items.append(raw[offset:offset + length])
        offset += length
    return items


def _bytes_encode(array: np.ndarray) -> bytes:
    out = bytearray()
    for item in array.reshape(-1):
        data = item if isinstance(item, bytes) else str(item).encode()
        out += struct.pack("<I", len(data)) + data
    return bytes(out)


def request_decode(body: bytes, header_length: str | None) -> tuple[dict, dict[str, np.ndarray]]:
    """(the JSON request, {input name: array}) of an infer request body."""
    try:
        json_len = int(header_length) if header_length else len(body)
    except ValueError:
        raise V2Error("Inference-Header-Content-Length is not a number") from None
    try:
        request = json.loads(body[:json_len] or b"{}")
    except ValueError as exc:
        raise V2Error(f"the request is not valid JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
        raise V2Error('the request needs "inputs": a non-empty list of tensors')
    offset = json_len
    tensors: dict[str, np.ndarray] = {}
    for index, spec in enumerate(request["inputs"]):
        if not isinstance(spec, dict):
            raise V2Error(f"input {index} is not an object")
        name, datatype, shape = spec.get("name"), spec.get("datatype"), spec.get("shape")
        if not isinstance(name, str) or datatype not in DTYPES or not isinstance(shape, list):
            raise V2Error(f"input {index} needs a name, a datatype ({', '.join(DTYPES)}) and a shape")
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise V2Error(f"input {name}: the shape must list non-negative whole numbers")
        count = int(np.prod(shape)) if shape else 1
        size = (spec.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            raw = body[offset:offset + int(size)]
            if len(raw) != int(size):
                raise V2Error(f"input {name}: the body ends before its {size} bytes of binary data")
            offset += int(size)
            if datatype == "BYTES":
                array = np.empty(count, dtype=object)
                array[:] = _bytes_decode(raw, count)
            else:
                array = np.frombuffer(raw, dtype=np.dtype(DTYPES[datatype]).newbyteorder("<"))
        else:
            if "data" not in spec:
                raise V2Error(f"input {name} has no data")
            if datatype == "BYTES":
                flat = np.asarray(spec["data"], dtype=object).reshape(-1)
                array = np.empty(flat.size, dtype=object)
                array[:] = [v.encode() if isinstance(v, str) else v for v in flat]
            else:
                try:
                    array = np.asarray(spec["data"], dtype=DTYPES[datatype])
                except (TypeError, ValueError):
                    raise V2Error(f"input {name}: the data is not {datatype}") from None
        if array.size != count:
            raise V2Error(f"input {name}: shape {shape} needs {count} values, got {array.size}")
        tensors[name] = array.reshape(shape)
    return request, tensors


def response_encode(*, model_name: str, model_version: str, request: dict,
                    outputs: dict[str, np.ndarray]) -> tuple[bytes, dict[str, str]]:
    """The infer response body and its extra headers; binary outputs when the request asked for them."""
    wanted = request.get("outputs")
    params = request.get("parameters") or {}
    binary_default = bool(params.get("binary_data_output", False))
    selected: list[tuple[str, bool]] = []
    if wanted:
        for spec in wanted:
            name = spec.get("name") if isinstance(spec, dict) else None
            if name not in outputs:
                raise V2Error(f"unknown output {name!r}; the model has {', '.join(outputs)}")
            selected.append((name, bool((spec.get("parameters") or {}).get("binary_data", binary_default))))
    else:
        selected = [(name, binary_default) for name in outputs]
    header_outputs, blobs = [], []
    for name, binary in selected:
        array = np.asarray(outputs[name])
        datatype = datatype_of(array)
        entry = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            raw = _bytes_encode(array) if datatype == "BYTES" else np.ascontiguousarray(
                array, dtype=np.dtype(DTYPES[datatype]).newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        elif datatype == "BYTES":
            entry["data"] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                             for v in array.reshape(-1)]
        else:
            entry["data"] = array.reshape(-1).tolist()
        header_outputs.append(entry)
    response = {"model_name": model_name, "model_version": model_version, "outputs": header_outputs}
    if "id" in request:
        response["id"] = request["id"]
    head = json.dumps(response, separators=(",", ":")).encode()
    if not blobs:
        return head, {"content-type": "application/json"}
    return head + b"".join(blobs), {"content-type": "application/octet-stream",
                                    "inference-header-content-length": str(len(head))}


SCHEMA_DATATYPES = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES", "file": "BYTES"}


def metadata_from_schema(api: dict) -> tuple[list, list]:
    """V2 tensors described by the `apis` request/response schemas of config.json."""

    def tensors(body: dict) -> list:
        props = ((body or {}).get("data") or {}).get("properties") or {}
        out = []
        for name, schema in props.items():
            kind = schema.get("type") if isinstance(schema, dict) else None
            if kind == "array":
                item = schema.get("items") if isinstance(schema.get("items"), dict) else {}
                out.append({"name": name, "datatype": SCHEMA_DATATYPES.get(item.get("type"), "BYTES"), "shape": [-1]})
            else:
                out.append({"name": name, "datatype": SCHEMA_DATATYPES.get(kind, "BYTES"), "shape": [1]})
        return out

    return tensors(api.get("request")), tensors(api.get("response"))


def to_arrays(result) -> dict[str, np.ndarray]:
    """A generic service's result dict as output tensors."""
    if not isinstance(result, dict):
        result = {"output": result}
    out = {}
    for name, value in result.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        array = np.asarray(value)
        if array.dtype.kind in "SU":
            array = array.astype(object)
        elif array.dtype == object:
            array = np.asarray([json.dumps(v) if not isinstance(v, (str, bytes)) else v for v in array.reshape(-1)],
                               dtype=object).reshape(array.shape)
        out[str(name)] = array
    return out
