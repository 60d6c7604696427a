"""Readers and writers of dataset layouts (ModelArts directory specs, manifests, VOC, YOLO, COCO, CSV,
Label Studio, CVAT). Readers yield `ImportItem`s and report per-item problems; the import engine
(`apps.datasets.imports`) turns items into samples."""
