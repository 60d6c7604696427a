"""The model package contract: `model/config.json` rules and the package layout check.

Pure Python (standard library only): the console validates packages with it at import and
the model server reads packages with it at start, so both apply exactly the same rules.

Layout (seed-06 §8.1): the package directory holds a folder `model/` with exactly one
`config.json`, exactly one `customize_service.py` (optional for a built-in runtime and for
`Image` models), helper modules, label files, and the engine's model file. Each problem is
reported as (field, message), field being a dotted path into config.json or "package".

Tolerated quirks of the official examples (seed-06 §8.5), each normalised with a warning:
`applicaton/json`, `item` instead of `items`, one-element tuple `items`, `"type": "file"`,
health numbers written as strings, lower-case methods.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable

# Engines accepted in `model_type`, by lower-case spelling.
MODEL_TYPES = {
    "tensorflow": "TensorFlow",
    "mindspore": "MindSpore",
    "pytorch": "PyTorch",
    "xgboost": "XGBoost",
    "scikit_learn": "Scikit_Learn",
    "spark_mllib": "Spark_MLlib",
    "caffe": "Caffe",
    "mxnet": "MXNet",
    "image": "Image",
}
# Machine-learning engines: `__init__(self, model_path)`, JSON requests only.
ML_TYPES = frozenset({"XGBoost", "Scikit_Learn", "Spark_MLlib"})
# Engines whose `self.model_path` is the model *file* (the others get the model directory).
FILE_PATH_TYPES = frozenset({"PyTorch", "Scikit_Learn", "XGBoost", "Spark_MLlib", "MindSpore"})
# The engine's model file, found by suffix in model/ (exactly one expected).
MODEL_FILE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "PyTorch": (".pth", ".pt"),
    "Scikit_Learn": (".pkl", ".joblib", ".m"),
    "XGBoost": (".model", ".xgb", ".ubj"),
    "MindSpore": (".ckpt",),
    "Caffe": (".caffemodel",),
    "MXNet": (".params",),
    "TensorFlow": ("saved_model.pb",),
}

# Built-in runtimes: packages written by Atelier's built-in algorithms name one of these in
# `runtime`; the model server then serves them without a customize_service.py.
BUILTIN_RUNTIMES = {
    "atelier-torch-image-classification": "PyTorch",
    "atelier-torch-detection": "PyTorch",
    "atelier-sklearn-tabular": "Scikit_Learn",
}
DEFAULT_RUNTIME = "python3"

MAX_INT = 2147483647
ALGORITHM_RE = re.compile(r"^[A-Za-z]")
FORBIDDEN_CHARS = set("&!\"'<>=")
CJK_RE = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
RESTRAINTS = {"EXACT": "==", "ATLEAST": ">=", "ATMOST": "<="}
CONTENT_TYPES = {"application/json", "multipart/form-data"}
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


class ConfigError(ValueError):
    """config.json or the package breaks a rule; `problems` lists (field, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))
        self.problems = problems


@dataclass
class PackageReport:
    """What the layout check found: the parsed config, the model file, warnings and problems."""

    config: dict = field(default_factory=dict)
    model_file: str = ""  # path relative to the package root, "" when the engine needs none
    has_service: bool = False
    size_bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _text_rule(value: str) -> str | None:
    if any(ch in FORBIDDEN_CHARS for ch in value):
        return "must not contain any of & ! \" ' < > ="
    if CJK_RE.search(value):
        return "must not contain Chinese characters"
    return None


def _int_field(value, name: str, low: int, problems: list, warnings: list, where: str) -> int | None:
    if isinstance(value, bool):
        problems.append((f"{where}.{name}", f"must be a whole number from {low} to {MAX_INT}"))
        return None
    if isinstance(value, str):
        if not value.strip().lstrip("-").isdigit():
            problems.append((f"{where}.{name}", f'"{value}" is not a whole number from {low} to {MAX_INT}'))
            return None
        warnings.append(f"{where}.{name} was written as text; read as the number {int(value)}.")
        value = int(value)
    if not isinstance(value, int) or not low <= value <= MAX_INT:
        problems.append((f"{where}.{name}", f"must be a whole number from {low} to {MAX_INT}"))
        return None
    return value


def _schema(node, where: str, warnings: list) -> object:
    """Normalise a JSON-Schema-like body description: `item` → `items`, 1-tuple items → schema."""
    if isinstance(node, list):
        return [_schema(v, f"{where}[{i}]", warnings) for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "item" and "items" not in node:
            warnings.append(f'{where} uses "item"; read as "items".')
            key = "items"
        if key == "items" and isinstance(value, list) and len(value) == 1:
            value = value[0]
        out[key] = _schema(value, f"{where}.{key}", warnings)
    return out


def _body(raw, where: str, problems: list, warnings: list, *, ml: bool) -> dict:
    if raw is None:
        return {"Content-type": "application/json"}
    if not isinstance(raw, dict):
        problems.append((where, "must be an object with Content-type and data"))
        return {}
    ctype_key = next((k for k in raw if k.lower() == "content-type"), "Content-type")
    ctype = raw.get(ctype_key, "application/json")
    if not isinstance(ctype, str):
        problems.append((f"{where}.Content-type", "must be text"))
        ctype = "application/json"
    normal = ctype.strip().lower()
    if normal == "applicaton/json":
        warnings.append(f'{where}.Content-type "{ctype}" read as "application/json".')
        normal = "application/json"
    if normal not in CONTENT_TYPES:
        problems.append((f"{where}.Content-type", f'"{ctype}" is not application/json or multipart/form-data'))
    elif ml and normal != "application/json":
        problems.append((f"{where}.Content-type", "machine-learning models accept application/json only"))
    body = {"Content-type": normal}
    if "data" in raw:
        if not isinstance(raw["data"], dict):
            problems.append((f"{where}.data", "must be a JSON Schema object"))
        else:
            body["data"] = _schema(raw["data"], f"{where}.data", warnings)
    return body


def config_parse(raw) -> tuple[dict, list[str]]:
    """Validate and normalise a parsed config.json; returns (config, warnings) or raises ConfigError."""
    problems: list[tuple[str, str]] = []
    warnings: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([("config.json", "must hold one JSON object")])
    config: dict = {}

    algorithm = raw.get("model_algorithm")
    if not isinstance(algorithm, str) or not algorithm:
        problems.append(("model_algorithm", "is required (e.g. image_classification)"))
    elif len(algorithm) > 36:
        problems.append(("model_algorithm", f"has {len(algorithm)} characters; at most 36"))
    elif not ALGORITHM_RE.match(algorithm):
        problems.append(("model_algorithm", "must start with a letter"))
    elif rule := _text_rule(algorithm):
        problems.append(("model_algorithm", rule))
    config["model_algorithm"] = algorithm if isinstance(algorithm, str) else ""

    model_type = raw.get("model_type")
    canonical = MODEL_TYPES.get(model_type.strip().lower()) if isinstance(model_type, str) else None
    if canonical is None:
        problems.append(("model_type", f"{model_type!r} is not a supported engine; use one of "
                                       f"{', '.join(MODEL_TYPES.values())}"))
        canonical = ""
    config["model_type"] = canonical
    is_image = canonical == "Image"

    runtime = raw.get("runtime", DEFAULT_RUNTIME)
    if not isinstance(runtime, str) or not runtime.strip():
        problems.append(("runtime", "must be text naming the runtime"))
        runtime = DEFAULT_RUNTIME
    if is_image and "runtime" in raw:
        problems.append(("runtime", "Image models bring their own runtime; remove runtime"))
    builtin_type = BUILTIN_RUNTIMES.get(runtime)
    if builtin_type and canonical and canonical != builtin_type:
        problems.append(("runtime", f'the built-in runtime "{runtime}" serves {builtin_type} models, '
                                    f"not {canonical}"))
    config["runtime"] = runtime.strip()

    if "swr_location" in raw:
        if not is_image:
            problems.append(("swr_location", "Non-custom type models should not contain swr_location."))
        elif not isinstance(raw["swr_location"], str):
            problems.append(("swr_location", "must be text"))
        else:
            config["swr_location"] = raw["swr_location"]

    metrics = raw.get("metrics") or {}
    if not isinstance(metrics, dict):
        problems.append(("metrics", "must be an object with f1, recall, precision, accuracy"))
        metrics = {}
    config["metrics"] = {}
    for name in ("f1", "recall", "precision", "accuracy"):
        if name in metrics and metrics[name] is not None:
            value = metrics[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append((f"metrics.{name}", "must be a number"))
            else:
                # Kept to 17 decimal places, truncated (not rounded) beyond (seed-06 Table 8-39).
                text = repr(float(value))
                if "e" not in text and "." in text:
                    whole, _, frac = text.partition(".")
                    text = f"{whole}.{frac[:17]}"
                config["metrics"][name] = float(text)

    apis = raw.get("apis", [])
    if apis is None:
        apis = []
    if not isinstance(apis, list):
        problems.append(("apis", "must be a list of API definitions"))
        apis = []
    if not is_image and len(apis) > 1:
        problems.append(("apis", f"{len(apis)} APIs defined; a {canonical or 'non-Image'} model has exactly one, "
                                 'with url "/"'))
    ml = canonical in ML_TYPES
    config["apis"] = []
    for index, api in enumerate(apis):
        where = f"apis[{index}]"
        if not isinstance(api, dict):
            problems.append((where, "must be an object with url, method, request, response"))
            continue
        url = api.get("url", "/")
        if not isinstance(url, str) or not url.startswith("/") or any(c.isspace() for c in url):
            problems.append((f"{where}.url", "must start with / and contain no spaces"))
            url = "/"
        elif not is_image and url != "/":
            problems.append((f"{where}.url", f'must be "/" for a {canonical or "non-Image"} model, not "{url}"'))
        method = api.get("method", "POST")
        if not isinstance(method, str) or method.strip().upper() not in METHODS:
            problems.append((f"{where}.method", f"{method!r} is not one of {', '.join(sorted(METHODS))}"))
            method = "POST"
        elif method != method.upper():
            warnings.append(f'{where}.method "{method}" read as "{method.upper()}".')
        config["apis"].append({
            "url": url,
            "method": method.strip().upper(),
            "request": _body(api.get("request"), f"{where}.request", problems, warnings, ml=ml),
            "response": _body(api.get("response"), f"{where}.response", problems, warnings, ml=ml),
        })

    deps = raw.get("dependencies", [])
    if deps is None:
        deps = []
    if not isinstance(deps, list):
        problems.append(("dependencies", "must be a list of {installer, packages}"))
        deps = []
    if is_image and deps:
        problems.append(("dependencies", "Customize model does not support dependencies."))
    config["dependencies"] = []
    for index, dep in enumerate(deps):
        where = f"dependencies[{index}]"
        if not isinstance(dep, dict):
            problems.append((where, "must be an object with installer and packages"))
            continue
        if dep.get("installer") != "pip":
            problems.append((f"{where}.installer", f'{dep.get("installer")!r} is not supported; only "pip"'))
        packages = dep.get("packages")
        if not isinstance(packages, list):
            problems.append((f"{where}.packages", "is required: a list of {package_name, package_version, restraint}"))
            continue
        clean = []
        for pindex, package in enumerate(packages):
            pwhere = f"{where}.packages[{pindex}]"
            if not isinstance(package, dict):
                problems.append((pwhere, "must be an object with package_name"))
                continue
            name = package.get("package_name")
            version = package.get("package_version") or ""
            restraint = package.get("restraint") or ""
            if not isinstance(name, str) or not name.strip():
                problems.append((f"{pwhere}.package_name", "is required"))
                continue
            if rule := _text_rule(name):
                problems.append((f"{pwhere}.package_name", rule))
            if not isinstance(version, str):
                problems.append((f"{pwhere}.package_version", "must be text"))
                version = ""
            elif rule := _text_rule(version):
                problems.append((f"{pwhere}.package_version", rule))
            if version and restraint not in RESTRAINTS:
                problems.append((f"{pwhere}.restraint", "is required with package_version: EXACT, ATLEAST or ATMOST"))
            elif restraint and restraint not in RESTRAINTS:
                problems.append((f"{pwhere}.restraint", f"{restraint!r} is not EXACT, ATLEAST or ATMOST"))
            clean.append({"package_name": name.strip(), "package_version": version.strip(),
                          "restraint": restraint if version else ""})
        config["dependencies"].append({"installer": "pip", "packages": clean})

    if "health" in raw and raw["health"] is not None:
        config["health"] = health_parse(raw["health"], problems, warnings)

    # Keys Atelier's built-in algorithms add (labels, input size, normalisation) pass through.
    for key in ("labels", "input_size", "mean", "std", "features", "task", "score_threshold"):
        if key in raw:
            config[key] = raw[key]
    if problems:
        raise ConfigError(problems)
    return config, warnings


def health_parse(raw, problems: list, warnings: list) -> dict:
    if not isinstance(raw, dict):
        problems.append(("health", "must be an object with check_method, period_seconds, failure_threshold"))
        return {}
    method = str(raw.get("check_method", "")).upper()
    health: dict = {"check_method": method}
    if method not in ("HTTP", "EXEC"):
        problems.append(("health.check_method", "is required: HTTP or EXEC"))
    if method == "HTTP":
        url = raw.get("url", "/health")
        if not isinstance(url, str) or not url.startswith("/"):
            problems.append(("health.url", "must start with / (default /health)"))
            url = "/health"
        health["url"] = url
        protocol = str(raw.get("protocol", "http")).lower()
        if protocol not in ("http", "https"):
            problems.append(("health.protocol", "must be http or https"))
        health["protocol"] = protocol
    if method == "EXEC":
        command = raw.get("command")
        if not isinstance(command, str) or not command.strip():
            problems.append(("health.command", "is required when check_method is EXEC"))
        health["command"] = command or ""
    for name, low, default in (("period_seconds", 1, None), ("failure_threshold", 1, None),
                               ("initial_delay_seconds", 0, 0), ("timeout_seconds", 1, 5)):
        if name not in raw or raw[name] in (None, ""):
            if default is None:
                problems.append((f"health.{name}", f"is required: a whole number from {low} to {MAX_INT}"))
            else:
                health[name] = default
            continue
        value = _int_field(raw[name], name, low, problems, warnings, "health")
        if value is not None:
            health[name] = value
    return health


def dependency_specs(config: dict) -> list[str]:
    """pip requirement strings of config.dependencies: EXACT → ==, ATLEAST → >=, ATMOST → <=."""
    specs = []
    for dep in config.get("dependencies", []):
        for package in dep.get("packages", []):
            version = package.get("package_version")
            if version:
                specs.append(f"{package['package_name']}{RESTRAINTS[package['restraint']]}{version}")
            else:
                specs.append(package["package_name"])
    return specs


def package_check(files: dict[str, int], read: Callable[[str], bytes], *, max_file_bytes: int) -> PackageReport:
    """Check a package's layout; `files` maps paths relative to the package root to sizes.

    `read(path)` returns a file's bytes (only config.json is read). Problems use the
    messages of the AI-application event catalogue (seed-06 §2.10).
    """
    report = PackageReport(size_bytes=sum(files.values()))
    model_files = {path: size for path, size in files.items() if path.startswith("model/")}
    if not model_files:
        report.problems.append(("package", "Model size calculated failed.Can not find model child directory in "
                                           "current model directory."))
        return report
    for path, size in files.items():
        if size > max_file_bytes:
            report.problems.append(("package", f"Model file {path} is larger than "
                                               f"{max_file_bytes / 1024 ** 3:g}G and cannot be imported."))
    for name in ("config.json", "customize_service.py"):
        found = sorted(p for p in model_files if p.rsplit("/", 1)[-1] == name)
        if len(found) > 1:
            report.problems.append(("package", f"Found {len(found)} {name} files ({', '.join(found)}); the package "
                                               f"must hold exactly one, at model/{name}."))
        elif found and found[0] != f"model/{name}":
            report.problems.append(("package", f"{name} must sit directly in model/, not at {found[0]}."))
    if "model/config.json" not in model_files:
        report.problems.append(("package", "Model size calculated failed.Can not find config.json file in current "
                                           "model directory model."))
        return report
    try:
        raw = json.loads(read("model/config.json").decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        report.problems.append(("config.json", f"is not valid JSON: {exc}"))
        return report
    try:
        report.config, report.warnings = config_parse(raw)
    except ConfigError as exc:
        report.problems.extend(exc.problems)
        return report
    config = report.config
    report.has_service = "model/customize_service.py" in model_files
    builtin = config["runtime"] in BUILTIN_RUNTIMES
    if not report.has_service and not builtin and config["model_type"] != "Image":
        report.problems.append(("package", "Model size calculated failed.Can not find customize_service.py file "
                                           "in current model directory model."))
    suffixes = MODEL_FILE_SUFFIXES.get(config["model_type"])
    if suffixes:
        candidates = sorted(p for p in model_files if p.endswith(suffixes) and p.count("/") >= 1)
        if not candidates:
            if builtin or not report.has_service:
                report.problems.append(("package", f"Model size calculated failed.Can not find "
                                                   f"{'/'.join(suffixes)} file in current model directory model."))
            else:
                # The inference code may load its own files (multi-model packages, seed-06 §9.4).
                report.hints.append(f"No {'/'.join(suffixes)} file in model/; the inference code loads its own files.")
        else:
            report.model_file = candidates[0]
            if len(candidates) > 1:
                report.hints.append(f"Model size calculated failed.Find more than one {'/'.join(suffixes)} file in "
                                    f"current model directory model: using {candidates[0]}.")
    return report


def package_check_dir(root, *, max_file_bytes: int = 5 * 1024 ** 3) -> PackageReport:
    """`package_check` over a local directory (the model server's view of its staged package)."""
    from pathlib import Path

    root = Path(root)
    files = {}
    for path in root.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            files[path.relative_to(root).as_posix()] = path.stat().st_size
    return package_check(files, lambda rel: (root / rel).read_bytes(), max_file_bytes=max_file_bytes)
