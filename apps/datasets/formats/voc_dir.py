"""`voc` and `voc-seg` directories: `X.jpg` + `X.xml` pairs by base name in the same folder."""
from __future__ import annotations

from typing import Iterator

from ..choices import IMAGE_EXTENSIONS
from .items import ImportItem, Problem, extension, read_label_file, walk
from .voc import parse_voc


def read_voc_dir(ctx, root, ingestor) -> Iterator[ImportItem]:
    label_type = ingestor.dataset.label_type
    files = list(walk(root))
    xml = {rel[: -len(".xml")]: path for path, info, rel in files if extension(rel) == ".xml"}
    for path, info, rel in files:
        ext = extension(rel)
        if ext == ".xml":
            continue
        item = ImportItem(origin=path.uri, src=path, size=info.size, rel=rel)
        stem = rel[: -len(ext)] if ext else rel
        if ext in IMAGE_EXTENSIONS and stem in xml:
            try:
                doc = parse_voc(read_label_file(xml[stem]), label_type=label_type)
            except Problem as problem:
                # The image still comes in, unlabeled; the report names the XML and the rule.
                ctx.error(xml[stem].uri, problem.code, problem.message)
            else:
                item.annotations = doc["objects"]
                item.width, item.height = doc["width"], doc["height"]
                if doc["mask_source"]:
                    item.properties = {"mask_source": doc["mask_source"]}
        yield item
