"""PASCAL VOC XML (spec §7.5–7.6): a tolerant reader and a strict writer.

Reading goes through defusedxml: DTD entities (and so external references) are refused,
which reports the file instead of letting it reach the network or the disk. Missing
`pose/truncated/occluded/difficult` default to 0; a `bndbox` missing a coordinate is a
per-file error. `<point>` accepts `<x>/<y>` and `<x1>/<y1>`; polygons accept a closing
point equal to the first.

Two extensions keep an annotation whole through VOC (labeling item 31): label attributes
(`property` in manifests) are written as CVAT/Datumaro VOC writes them,
`<attributes><attribute><name>color</name><value>white</value></attribute></attributes>`,
and a dashed line is a `<line>` with the flag `<dashed>1</dashed>`. Readers that do not know
these elements skip them and still see every shape.
"""
from __future__ import annotations

import json

from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ..choices import LINE_STYLE_KEY, ErrorCode, LabelType, Shape
from .items import AnnSpec, Problem

FLAGS = ("pose", "truncated", "occluded", "difficult")
# Property keys VOC writes as elements of their own; every other property is an attribute.
OWN_ELEMENTS = frozenset(FLAGS) | {"mask_color", LINE_STYLE_KEY}


def _number(element: Element | None, tag: str, where: str) -> float:
    child = element.find(tag) if element is not None else None
    if child is None or child.text is None or not child.text.strip():
        raise Problem(ErrorCode.ANNOTATION_PARSE_ERROR, f"{where} has no <{tag}>.")
    try:
        return float(child.text.strip())
    except ValueError:
        raise Problem(ErrorCode.ANNOTATION_PARSE_ERROR, f"<{tag}> of {where} is not a number: {child.text!r}.") from None


def _int_or_float(value: float):
    return int(value) if float(value).is_integer() else value


def parse_voc(text: str, *, label_type: str) -> dict:
    """Parse one VOC document into {filename, width, height, depth, mask_source, objects: [AnnSpec]}."""
    try:
        root = SafeET.fromstring(text.encode("utf-8"))
    except DefusedXmlException as exc:
        raise Problem(ErrorCode.ANNOTATION_PARSE_ERROR,
                      f"The XML declares entities or external references, which are not allowed ({exc.__class__.__name__}).") from None
    except ParseError as exc:
        raise Problem(ErrorCode.ANNOTATION_PARSE_ERROR, f"The XML is not well formed: {exc}.") from None
    if root.tag != "annotation":
        raise Problem(ErrorCode.ANNOTATION_PARSE_ERROR, f"The root element is <{root.tag}>, not <annotation>.")
    size = root.find("size")
    width = int(_number(size, "width", "<size>")) if size is not None else None
    height = int(_number(size, "height", "<size>")) if size is not None else None
    depth_el = size.find("depth") if size is not None else None
    depth = int(float(depth_el.text)) if depth_el is not None and (depth_el.text or "").strip() else 3
    objects: list[AnnSpec] = []
    for index, obj in enumerate(root.findall("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        where = f'object {index} ("{name}")'
        if not name:
            raise Problem(ErrorCode.ANNOTATION_PARSE_ERROR, f"object {index} has no <name>.")
        props = {}
        for flag in FLAGS:
            value = (obj.findtext(flag) or "").strip()
            props[flag] = value if flag == "pose" and value else (int(value) if value.isdigit() else
                                                                  ("Unspecified" if flag == "pose" else 0))
        spec = AnnSpec(label=name, type=label_type, properties=props)
        hard_coefficient = obj.findtext("hard-coefficient")
        if hard_coefficient and hard_coefficient.strip():
            spec.hard_coefficient = float(hard_coefficient)
            spec.hard = True
        confidence = obj.findtext("confidence")
        if confidence and confidence.strip():
            spec.confidence = float(confidence)
        mask_color = obj.findtext("mask_color")
        if mask_color:
            spec.properties["mask_color"] = mask_color.strip()
        spec.properties.update(_attributes(obj, where))
        if (box := obj.find("bndbox")) is not None:
            spec.shape = Shape.BNDBOX
            spec.geometry = {k: _int_or_float(_number(box, k, f"<bndbox> of {where}"))
                             for k in ("xmin", "ymin", "xmax", "ymax")}
        elif (poly := obj.find("polygon")) is not None:
            spec.shape, spec.geometry = Shape.POLYGON, {"points": _numbered_points(poly, where)}
        elif (line := obj.find("line")) is not None:
            spec.shape, spec.geometry = Shape.LINE, {"points": _numbered_points(line, where)}
            if (obj.findtext("dashed") or "").strip().lower() in ("1", "true"):
                spec.properties[LINE_STYLE_KEY] = "dashed"
        elif (point := obj.find("point")) is not None:
            tag_x = "x" if point.find("x") is not None else "x1"
            tag_y = "y" if point.find("y") is not None else "y1"
            spec.shape = Shape.POINT
            spec.geometry = {"x": _int_or_float(_number(point, tag_x, f"<point> of {where}")),
                             "y": _int_or_float(_number(point, tag_y, f"<point> of {where}"))}
        elif (circle := obj.find("circle")) is not None:
            spec.shape = Shape.CIRCLE
            spec.geometry = {k: _int_or_float(_number(circle, k, f"<circle> of {where}")) for k in ("cx", "cy", "r")}
        else:
            raise Problem(ErrorCode.ANNOTATION_PARSE_ERROR,
                          f"{where} has no shape (bndbox, polygon, line, point or circle).")
        objects.append(spec)
    return {
        "filename": (root.findtext("filename") or "").strip(),
        "width": width,
        "height": height,
        "depth": depth,
        "mask_source": (root.findtext("mask_source") or "").strip(),
        "objects": objects,
    }


def _attributes(obj: Element, where: str) -> dict:
    """`<attributes><attribute><name>…</name><value>…</value></attribute>…` as {name: value}."""
    out = {}
    for number, attribute in enumerate(obj.findall("attributes/attribute"), start=1):
        name = (attribute.findtext("name") or "").strip()
        if not name:
            raise Problem(ErrorCode.ANNOTATION_PARSE_ERROR, f"attribute {number} of {where} has no <name>.")
        if name in OWN_ELEMENTS:
            continue  # CVAT writes e.g. "occluded" here too; the element of its own is the one we read
        out[name] = attribute.findtext("value") or ""
    return out


def _numbered_points(element: Element, where: str) -> list[list]:
    points, n = [], 1
    while element.find(f"x{n}") is not None:
        points.append([_int_or_float(_number(element, f"x{n}", where)), _int_or_float(_number(element, f"y{n}", where))])
        n += 1
    if len(points) < 2:
        raise Problem(ErrorCode.ANNOTATION_PARSE_ERROR, f"{where} needs at least two numbered points.")
    return points


def out_of_bounds(spec: AnnSpec, width: int | None, height: int | None) -> str:
    """A message when the shape leaves the image (0..width, 0..height), else ""."""
    if not width or not height:
        return ""
    g = spec.geometry
    xs: list[float] = []
    ys: list[float] = []
    if spec.shape == Shape.BNDBOX:
        xs, ys = [g["xmin"], g["xmax"]], [g["ymin"], g["ymax"]]
        if g["xmin"] > g["xmax"] or g["ymin"] > g["ymax"]:
            return f'The box of "{spec.label}" has xmin > xmax or ymin > ymax.'
    elif spec.shape in (Shape.POLYGON, Shape.LINE):
        xs, ys = [p[0] for p in g["points"]], [p[1] for p in g["points"]]
    elif spec.shape == Shape.POINT:
        xs, ys = [g["x"]], [g["y"]]
    elif spec.shape == Shape.CIRCLE:
        xs, ys = [g["cx"] - g["r"], g["cx"] + g["r"]], [g["cy"] - g["r"], g["cy"] + g["r"]]
    if xs and (min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height):
        return (f'The {spec.shape} of "{spec.label}" reaches ({min(xs)}, {min(ys)})–({max(xs)}, {max(ys)}), '
                f"outside the {width}×{height} image.")
    return ""


def _fmt(value) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _rgb(hex_color: str | None) -> str:
    """"#ff0000" → "255,0,0", the form of VOC's <mask_color>; white when the label has no colour (as the mask)."""
    hex_color = hex_color or "#ffffff"
    return ",".join(str(int(hex_color[i:i + 2], 16)) for i in (1, 3, 5))


def voc_xml(*, filename: str, folder: str, width: int, height: int, depth: int = 3, objects: list[dict],
            segmented: bool = False, mask_source: str = "", hard_attribute: bool = False) -> str:
    """Write one VOC document. `objects` items: label, shape, geometry, properties, confidence, hard_coefficient."""
    out = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>', "<annotation>",
           f"  <folder>{escape(folder or 'NA')}</folder>", f"  <filename>{escape(filename)}</filename>",
           "  <source>", "    <database>Unknown</database>", "  </source>",
           "  <size>", f"    <width>{width}</width>", f"    <height>{height}</height>", f"    <depth>{depth}</depth>",
           "  </size>", f"  <segmented>{1 if segmented else 0}</segmented>"]
    if mask_source:
        out.append(f"  <mask_source>{escape(mask_source)}</mask_source>")
    for obj in objects:
        props = obj.get("properties") or {}
        out += ["  <object>", f"    <name>{escape(obj['label'])}</name>",
                f"    <pose>{escape(str(props.get('pose', 'Unspecified')))}</pose>",
                f"    <truncated>{int(props.get('truncated', 0) or 0)}</truncated>",
                f"    <occluded>{int(props.get('occluded', 0) or 0)}</occluded>",
                f"    <difficult>{int(props.get('difficult', 0) or 0)}</difficult>"]
        # A segmentation object names the colour its mask was drawn in: its own, else its label's.
        mask_color = props.get("mask_color") or (_rgb(obj.get("color")) if segmented else "")
        if mask_color:
            out.append(f"    <mask_color>{escape(str(mask_color))}</mask_color>")
        if obj.get("confidence") is not None:
            out.append(f"    <confidence>{obj['confidence']:g}</confidence>")
        if hard_attribute and obj.get("hard_coefficient") is not None:
            out.append(f"    <hard-coefficient>{obj['hard_coefficient']:g}</hard-coefficient>")
        g, shape = obj["geometry"], obj["shape"]
        if shape == Shape.LINE and props.get(LINE_STYLE_KEY) == "dashed":
            out.append("    <dashed>1</dashed>")
        attributes = {k: v for k, v in props.items() if k not in OWN_ELEMENTS}
        if attributes:
            out.append("    <attributes>")
            for name, value in attributes.items():
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                out += ["      <attribute>", f"        <name>{escape(str(name))}</name>",
                        f"        <value>{escape(text)}</value>", "      </attribute>"]
            out.append("    </attributes>")
        if shape == Shape.BNDBOX:
            out += ["    <bndbox>"] + [f"      <{k}>{_fmt(g[k])}</{k}>" for k in ("xmin", "ymin", "xmax", "ymax")] + [
                "    </bndbox>"]
        elif shape in (Shape.POLYGON, Shape.LINE):
            out.append(f"    <{shape}>")
            for n, (x, y) in enumerate(g["points"], start=1):
                out += [f"      <x{n}>{_fmt(x)}</x{n}>", f"      <y{n}>{_fmt(y)}</y{n}>"]
            out.append(f"    </{shape}>")
        elif shape == Shape.POINT:
            out += ["    <point>", f"      <x1>{_fmt(g['x'])}</x1>", f"      <y1>{_fmt(g['y'])}</y1>", "    </point>"]
        elif shape == Shape.CIRCLE:
            out += ["    <circle>"] + [f"      <{k}>{_fmt(g[k])}</{k}>" for k in ("cx", "cy", "r")] + ["    </circle>"]
        out.append("  </object>")
    out.append("</annotation>")
    return "\n".join(out) + "\n"


SEGMENTATION = LabelType.IMAGE_SEGMENTATION
