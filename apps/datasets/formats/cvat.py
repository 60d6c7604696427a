"""CVAT for images 1.1 XML: <image> elements with <box>, <polygon>, <polyline>, <points> and <tag>."""
from __future__ import annotations

from typing import Iterator
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from apps.core.storage import get_storage

from ..choices import ErrorCode, Shape
from .items import AnnSpec, ImportItem, Problem, extension, read_label_file, walk


def _points(raw: str) -> list[list[float]]:
    out = []
    for pair in raw.split(";"):
        x, _, y = pair.partition(",")
        out.append([float(x), float(y)])
    return out


def read_cvat(ctx, root, ingestor) -> Iterator[ImportItem]:
    label_type = ingestor.dataset.label_type
    storage = get_storage()
    files = [p for p, info, rel in walk(root) if extension(rel) == ".xml"] if storage.is_folder(root) else [root]
    for path in files:
        try:
            doc = SafeET.fromstring(read_label_file(path).encode("utf-8"))
        except Problem as problem:
            ctx.error(path.uri, problem.code, problem.message)
            continue
        except DefusedXmlException as exc:
            ctx.error(path.uri, ErrorCode.ANNOTATION_PARSE_ERROR,
                      f"The XML declares entities or external references, which are not allowed "
                      f"({exc.__class__.__name__}).")
            continue
        except ParseError as exc:
            ctx.error(path.uri, ErrorCode.ANNOTATION_PARSE_ERROR, f"The XML is not well formed: {exc}.")
            continue
        for image in doc.iter("image"):
            name = image.get("name") or ""
            src = None
            for folder in (path.parent, path.parent.child("images")):
                if name and storage.exists(folder.child(name)):
                    src = folder.child(name)
                    break
            if src is None:
                ctx.error(path.uri, ErrorCode.MISSING_SOURCE, f'image {image.get("id")}: "{name}" was not found.')
                continue
            specs = []
            try:
                for element in image:
                    label = element.get("label") or ""
                    props = {"occluded": int(element.get("occluded", "0") or 0)} if element.get("occluded") else {}
                    if element.tag == "box":
                        box = {k: float(element.get(a)) for k, a in
                               (("xmin", "xtl"), ("ymin", "ytl"), ("xmax", "xbr"), ("ymax", "ybr"))}
                        specs.append(AnnSpec(label=label, type=label_type, shape=Shape.BNDBOX, geometry=box,
                                             properties=props))
                    elif element.tag in ("polygon", "polyline"):
                        shape = Shape.POLYGON if element.tag == "polygon" else Shape.LINE
                        specs.append(AnnSpec(label=label, type=label_type, shape=shape,
                                             geometry={"points": _points(element.get("points", ""))},
                                             properties=props))
                    elif element.tag == "points":
                        for x, y in _points(element.get("points", "")):
                            specs.append(AnnSpec(label=label, type=label_type, shape=Shape.POINT,
                                                 geometry={"x": x, "y": y}, properties=props))
                    elif element.tag == "tag":
                        specs.append(AnnSpec(label=label, type=label_type))
            except (TypeError, ValueError) as exc:
                ctx.error(path.uri, ErrorCode.ANNOTATION_PARSE_ERROR,
                          f'image "{name}": a shape has a malformed coordinate ({exc}).')
                continue
            width = int(image.get("width")) if (image.get("width") or "").isdigit() else None
            height = int(image.get("height")) if (image.get("height") or "").isdigit() else None
            yield ImportItem(origin=src.uri, src=src, rel=name, annotations=specs, width=width, height=height)
