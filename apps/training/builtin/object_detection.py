"""Built-in object detection (PyTorch): a compact single-scale CenterNet-style detector.

Written here in plain PyTorch (no torchvision, no third-party detector code): a small
convolutional backbone with dilated blocks at stride 4, and three heads — per-class centre
heatmap (focal loss on Gaussian peaks), box size and centre offset (L1 at the peaks). Decoding
(3×3 max-pool peak picking, top-K) is part of the exported TorchScript model, so the package
serves with the model server's `atelier-torch-detection` runtime or its own customize_service.py.

Data (`--data_url`): COCO `annotations.json` (any `*.json` with `images`, `annotations`,
`categories`) with the image files anywhere below the folder.
Output (`--train_url`): `model/` (config.json, customize_service.py, model.pt as TorchScript),
`eval_result.json` (pycocotools mAP@0.5, mAP@[.5:.95], per-class AP@0.5) on a held-out split, and
`checkpoints/last.pt`, from which a restarted attempt resumes.
"""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

STRIDE = 4
TOP_K = 50


class Detector(nn.Module):
    """Input: pixels 0–1, [N, 3, S, S]. Output of `forward`: heatmap logits, sizes, offsets at stride 4."""

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()

        def conv(cin, cout, stride=1, dilation=1):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation,
                                           bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.stem = nn.Sequential(conv(3, width // 2, 2), conv(width // 2, width, 2), conv(width, width))
        # Dilations widen the receptive field to whole objects without losing the stride-4 grid.
        self.blocks = nn.ModuleList([conv(width, width, dilation=d) for d in (1, 2, 4, 8, 1)])

        def head(cout, bias=0.0):
            last = nn.Conv2d(width, cout, 1)
            nn.init.constant_(last.bias, bias)
            return nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), last)

        self.heatmap = head(num_classes, -2.19)  # prior probability 0.1: focal loss starts stable
        self.size = head(2)
        self.offset = head(2)

    def forward(self, x):
        x = self.stem((x - 0.5) / 0.5)
        for block in self.blocks:
            x = x + block(x)
        return self.heatmap(x), self.size(x), self.offset(x)


class ExportedDetector(nn.Module):
    """What the model package holds: pixels in, (boxes [N, K, 4] x1y1x2y2 in input pixels, scores, labels) out."""

    def __init__(self, detector: Detector, top_k: int = TOP_K):
        super().__init__()
        self.detector = detector
        self.top_k = top_k

    def forward(self, x):
        heat, size, offset = self.detector(x)
        return decode(heat, size, offset, self.top_k)


def decode(heat: torch.Tensor, size: torch.Tensor, offset: torch.Tensor, top_k: int):
    heat = torch.sigmoid(heat)
    peaks = (F.max_pool2d(heat, 3, stride=1, padding=1) == heat).float()
    n, c, h, w = heat.shape
    scores, index = (heat * peaks).reshape(n, -1).topk(min(top_k, c * h * w))
    labels = torch.div(index, h * w, rounding_mode="floor")
    cell = index % (h * w)
    ys = torch.div(cell, w, rounding_mode="floor").float()
    xs = (cell % w).float()
    size = size.reshape(n, 2, -1)
    offset = offset.reshape(n, 2, -1)
    bw = size[:, 0, :].gather(1, cell) * STRIDE
    bh = size[:, 1, :].gather(1, cell) * STRIDE
    cx = (xs + offset[:, 0, :].gather(1, cell)) * STRIDE
    cy = (ys + offset[:, 1, :].gather(1, cell)) * STRIDE
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=2)
    return boxes, scores, labels


def gaussian_radius(w: float, h: float) -> float:
    # A simple, size-proportional spread (CenterNet's IoU-derived radius is close to this for small boxes).
    return max(0.5, 0.15 * min(w, h) / STRIDE * 2)


def build_targets(boxes: list[list[float]], classes: list[int], num_classes: int, grid: int):
    heat = np.zeros((num_classes, grid, grid), dtype=np.float32)
    size = np.zeros((2, grid, grid), dtype=np.float32)
    offset = np.zeros((2, grid, grid), dtype=np.float32)
    mask = np.zeros((grid, grid), dtype=np.float32)
    yy, xx = np.mgrid[0:grid, 0:grid]
    for (x1, y1, x2, y2), k in zip(boxes, classes):
        w, h = x2 - x1, y2 - y1
        if w <= 0 or h <= 0:
            continue
        cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
        ix, iy = min(grid - 1, int(cx)), min(grid - 1, int(cy))
        sigma = gaussian_radius(w, h)
        g = np.exp(-((xx - ix) ** 2 + (yy - iy) ** 2) / (2 * sigma ** 2))
        heat[k] = np.maximum(heat[k], g)
        size[:, iy, ix] = (w / STRIDE, h / STRIDE)
        offset[:, iy, ix] = (cx - ix, cy - iy)
        mask[iy, ix] = 1.0
    return heat, size, offset, mask


def focal_loss(logits, target):
    pred = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(pred) * (1 - pred) ** 2 * pos
    neg_loss = torch.log(1 - pred) * pred ** 2 * (1 - target) ** 4 * neg
    n_pos = pos.sum()
    return -(pos_loss.sum() + neg_loss.sum()) / n_pos.clamp(min=1)


def load_coco(root: Path, image_size: int):
    """Images resized to `image_size` (tensor [N, 3, S, S], 0–1), boxes in resized pixels, categories."""
    candidates = [p for p in sorted(root.rglob("*.json")) if p.name != "eval_result.json"]
    coco = None
    for path in candidates:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if isinstance(data, dict) and {"images", "annotations", "categories"} <= set(data):
            coco = data
            break
    if coco is None:
        raise SystemExit(f"No COCO annotation file (a .json with images, annotations, categories) in {root}.")
    index = common.file_index(root)
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    labels = [str(c["name"]) for c in categories]
    cat_index = {c["id"]: k for k, c in enumerate(categories)}
    by_image: dict = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    tensors, boxes, classes, names = [], [], [], []
    for image in coco["images"]:
        path = common.resolve_source(root, image["file_name"], index)
        if path is None:
            raise SystemExit(f"Image {image['file_name']} of the annotation file is not in the input folder.")
        pil = Image.open(path).convert("RGB")
        sx, sy = image_size / pil.width, image_size / pil.height
        pil = pil.resize((image_size, image_size), Image.BILINEAR)
        tensors.append(torch.from_numpy(np.asarray(pil, dtype=np.float32).transpose(2, 0, 1) / 255.0))
        items = [a for a in by_image.get(image["id"], []) if a.get("category_id") in cat_index]
        boxes.append([[a["bbox"][0] * sx, a["bbox"][1] * sy, (a["bbox"][0] + a["bbox"][2]) * sx,
                       (a["bbox"][1] + a["bbox"][3]) * sy] for a in items])
        classes.append([cat_index[a["category_id"]] for a in items])
        names.append(image["file_name"])
    if len(tensors) < 4:
        raise SystemExit(f"Only {len(tensors)} images; at least 4 are needed.")
    return torch.stack(tensors), boxes, classes, labels, names


def coco_evaluate(model, images, boxes, classes, labels, device) -> dict:
    """mAP@0.5, mAP@[.5:.95] and per-class AP@0.5 with pycocotools on the given images."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    size = images.shape[-1]
    gt = {"images": [{"id": i + 1, "width": size, "height": size} for i in range(len(images))],
          "categories": [{"id": k + 1, "name": name} for k, name in enumerate(labels)], "annotations": []}
    for i, (bs, cs) in enumerate(zip(boxes, classes)):
        for (x1, y1, x2, y2), k in zip(bs, cs):
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i + 1, "category_id": k + 1,
                                      "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                      "iscrowd": 0})
    detections = []
    exported = ExportedDetector(model).eval()
    with torch.no_grad():
        for start in range(0, len(images), 64):
            out_boxes, out_scores, out_labels = exported(images[start:start + 64].to(device))
            for j in range(len(out_boxes)):
                for box, score, label in zip(out_boxes[j].tolist(), out_scores[j].tolist(), out_labels[j].tolist()):
                    if score < 0.01:
                        continue
                    x1, y1, x2, y2 = (min(max(v, 0.0), size) for v in box)
                    detections.append({"image_id": start + j + 1, "category_id": int(label) + 1,
                                       "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    if not detections or not gt["annotations"]:
        return {"map50": 0.0, "map": 0.0, "per_class": [{"label": name, "ap50": 0.0} for name in labels]}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = COCO()
        truth.dataset = gt
        truth.createIndex()
        found = truth.loadRes(detections)
        evaluation = COCOeval(truth, found, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = evaluation.eval["precision"]  # [IoU, recall, class, area, max dets]
    per_class = []
    for k, name in enumerate(labels):
        values = precision[0, :, k, 0, -1]
        values = values[values > -1]
        per_class.append({"label": name, "ap50": float(values.mean()) if values.size else 0.0,
                          "instances": sum(cs.count(k) for cs in classes)})
    return {"map50": float(max(evaluation.stats[1], 0.0)), "map": float(max(evaluation.stats[0], 0.0)),
            "per_class": per_class}


def main() -> None:
    args = common.parse_args({"epochs": (int, 30), "batch_size": (int, 16), "learning_rate": (float, 0.002),
                              "image_size": (int, 128), "val_split": (float, 0.2), "score_threshold": (float, 0.3),
                              "seed": (int, 0)})
    if args.image_size % STRIDE:
        raise SystemExit(f"image_size must be a multiple of {STRIDE}, not {args.image_size}.")
    data, out = Path(args.data_url), Path(args.train_url)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    common.say(f"Training on {device}.")
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    images, boxes, classes, labels, names = load_coco(data, args.image_size)
    order = np.random.RandomState(args.seed).permutation(len(images))
    n_val = max(1, int(len(images) * args.val_split))
    val_idx, train_idx = order[:n_val], order[n_val:]
    grid = args.image_size // STRIDE
    targets = [build_targets(boxes[i], classes[i], len(labels), grid) for i in range(len(images))]
    heat_t, size_t, offset_t, mask_t = (torch.from_numpy(np.stack([t[j] for t in targets])) for j in range(4))
    common.say(f"{len(images)} images, {sum(map(len, boxes))} boxes, {len(labels)} classes; {len(train_idx)} for "
               f"training, {n_val} for evaluation.")

    model = Detector(len(labels)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=1e-4)
    steps = max(1, args.epochs * ((len(train_idx) + args.batch_size - 1) // args.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.learning_rate, total_steps=steps,
                                                    pct_start=0.15)
    checkpoint = out / "checkpoints" / "last.pt"
    first_epoch = 1
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device)
        if state.get("labels") == labels and state.get("epochs") == args.epochs:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            first_epoch = state["epoch"] + 1
            common.say(f"Resuming from checkpoint of epoch {state['epoch']}.")
    train_idx_t = torch.from_numpy(train_idx)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(first_epoch, args.epochs + 1):
        started = time.monotonic()
        model.train()
        perm = train_idx_t[torch.randperm(len(train_idx_t), generator=gen)]
        total = 0.0
        for start in range(0, len(perm), args.batch_size):
            batch = perm[start:start + args.batch_size]
            xb = images[batch].to(device)
            hb, sb, ob, mb = (t[batch].to(device) for t in (heat_t, size_t, offset_t, mask_t))
            if bool(torch.rand(1, generator=gen) < 0.5):  # horizontal flip: mirror the targets too
                xb, hb, sb, mb = xb.flip(3), hb.flip(3), sb.flip(3), mb.flip(2)
                # A centre at cell x + o maps to cell (W-1-x) + (1 - o) after the flip.
                ob = ob.flip(3)
                ob = torch.stack([(1 - ob[:, 0]) * mb, ob[:, 1]], dim=1)
            heat, size, offset = model(xb)
            m = mb.unsqueeze(1)
            n_obj = mb.sum().clamp(min=1)
            loss = (focal_loss(heat, hb) + 0.1 * (torch.abs(size - sb) * m).sum() / n_obj
                    + (torch.abs(offset - ob) * m).sum() / n_obj)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(batch)
        common.log_metric("train_loss", total / len(train_idx), step=epoch)
        message = f"epoch {epoch}/{args.epochs}: train_loss {total / len(train_idx):.4f}"
        if epoch % 5 == 0 or epoch == args.epochs:
            model.eval()
            result = coco_evaluate(model, images[val_idx], [boxes[i] for i in val_idx],
                                   [classes[i] for i in val_idx], labels, device)
            common.log_metric("map50", result["map50"], step=epoch)
            message += f" mAP@0.5 {result['map50']:.4f}"
        common.say(f"{message} ({time.monotonic() - started:.1f} s)")
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"epoch": epoch, "epochs": args.epochs, "labels": labels, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
                   checkpoint.with_suffix(".tmp"))
        checkpoint.with_suffix(".tmp").replace(checkpoint)

    model.eval()
    result = coco_evaluate(model, images[val_idx], [boxes[i] for i in val_idx], [classes[i] for i in val_idx],
                           labels, device)
    report = {"task_type": "object_detection", "map50": result["map50"], "map": result["map"],
              "per_class": result["per_class"], "labels": labels, "images_eval": int(n_val),
              "images_train": int(len(train_idx)), "image_size": args.image_size}
    common.write_json(out / "eval_result.json", report)
    common.log_metric("map50", result["map50"], step=args.epochs)

    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    exported = ExportedDetector(model.cpu()).eval()
    import warnings

    with warnings.catch_warnings():
        # Tracing fixes the input size, which the package declares (input_size) and its servers resize to.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        scripted = torch.jit.trace(exported, torch.zeros(1, 3, args.image_size, args.image_size))
    tmp = model_dir / "model.pt.tmp"
    torch.jit.save(scripted, str(tmp))
    tmp.replace(model_dir / "model.pt")
    common.copy_service_files(model_dir, "service_object_detection.py")
    common.write_json(model_dir / "config.json", {
        "model_type": "PyTorch",
        "model_algorithm": "object_detection",
        "runtime": "atelier-torch-detection",
        "metrics": {"accuracy": result["map50"]},
        "apis": [{"url": "/", "method": "post",
                  "request": {"Content-type": "multipart/form-data",
                              "data": {"type": "object", "properties": {"images": {"type": "file"}}}},
                  "response": {"Content-type": "application/json",
                               "data": {"type": "object", "properties": {
                                   "detection_classes": {"type": "array", "items": [{"type": "string"}]},
                                   "detection_boxes": {"type": "array", "items": [{"type": "array", "minItems": 4,
                                                                                   "maxItems": 4,
                                                                                   "items": [{"type": "number"}]}]},
                                   "detection_scores": {"type": "array", "items": [{"type": "number"}]}}}}}],
        "dependencies": common.package_dependencies(("torch", torch.__version__.split("+")[0]), ("Pillow", ""),
                                                    ("numpy", "")),
        "labels": labels,
        "input_size": [3, args.image_size, args.image_size],
        "score_threshold": args.score_threshold,
    })
    common.say(f"Model package written to {model_dir}; mAP@0.5 {result['map50']:.4f}.")


if __name__ == "__main__":
    main()
