"""Built-in image classification (PyTorch): train a compact CNN, evaluate it, write a model package.

Data (`--data_url`): a folder per class (`cat/1.png`, `dog/2.jpg`) or ModelArts manifests
(`*.manifest`, image-classification annotations) whose sources are staged under the folder.
Output (`--train_url`): `model/` (config.json, customize_service.py, image_net.py, model.pt),
`eval_result.json` (accuracy, per-class precision/recall/F1, confusion matrix) and
`checkpoints/last.pt`, from which a restarted attempt resumes.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
from image_net import ImageNet, to_tensor  # noqa: E402

def load_samples(root: Path) -> tuple[list[Path], list[int], list[str]]:
    manifest = common.read_manifest(root)
    if manifest:
        index = common.file_index(root)
        pairs = []
        for item in manifest:
            names = [a.get("name") for a in item.get("annotation") or [] if a.get("name")]
            path = common.resolve_source(root, item.get("source", ""), index)
            if names and path is not None:
                pairs.append((path, names[0]))
        if not pairs:
            raise SystemExit("The manifest has no labeled images whose files are in the input folder.")
    else:
        pairs = [(p, p.parent.name) for p in common.find_images(root) if p.parent != root]
        if not pairs:
            raise SystemExit(f"No images found in {root}: use one folder per class, or a manifest.")
    labels = sorted({label for _, label in pairs})
    if len(labels) < 2:
        raise SystemExit(f"At least two classes are needed; found {labels}.")
    lookup = {label: k for k, label in enumerate(labels)}
    return [p for p, _ in pairs], [lookup[label] for _, label in pairs], labels


def main() -> None:
    args = common.parse_args({"epochs": (int, 10), "batch_size": (int, 32), "learning_rate": (float, 0.003),
                              "image_size": (int, 32), "width": (int, 32), "val_split": (float, 0.2),
                              "seed": (int, 0)})
    data, out = Path(args.data_url), Path(args.train_url)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    common.say(f"Training on {device}.")
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    paths, targets, labels = load_samples(data)
    order = np.random.RandomState(args.seed).permutation(len(paths))
    n_val = max(1, int(len(paths) * args.val_split))
    val_idx, train_idx = order[:n_val], order[n_val:]
    tensors = torch.stack([to_tensor(Image.open(p), args.image_size) for p in paths])
    y = torch.tensor(targets)
    common.say(f"{len(paths)} images, {len(labels)} classes; {len(train_idx)} for training, {n_val} for evaluation.")

    model = ImageNet(len(labels), width=args.width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, args.epochs))
    checkpoint = out / "checkpoints" / "last.pt"
    first_epoch = 1
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device)
        if state.get("labels") == labels:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            first_epoch = state["epoch"] + 1
            common.say(f"Resuming from checkpoint of epoch {state['epoch']}.")
    loss_fn = nn.CrossEntropyLoss()
    x_train, y_train = tensors[train_idx], y[train_idx]
    x_val, y_val = tensors[val_idx].to(device), y[val_idx].to(device)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(first_epoch, args.epochs + 1):
        started = time.monotonic()
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for start in range(0, len(perm), args.batch_size):
            batch = perm[start:start + args.batch_size]
            xb, yb = x_train[batch].to(device), y_train[batch].to(device)
            # Light augmentation: random shifts of up to 2 pixels keep small data from being memorised.
            shift = [int(v) for v in torch.randint(-2, 3, (2,), generator=gen)]
            xb = torch.roll(xb, shifts=shift, dims=(2, 3))
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        scheduler.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = loss_fn(logits, y_val).item()
            accuracy = (logits.argmax(1) == y_val).float().mean().item()
        common.log_metric("train_loss", total / len(x_train), step=epoch)
        common.log_metric("val_loss", val_loss, step=epoch)
        common.log_metric("accuracy", accuracy, step=epoch)
        common.say(f"epoch {epoch}/{args.epochs}: train_loss {total / len(x_train):.4f} val_loss {val_loss:.4f} "
                   f"accuracy {accuracy:.4f} ({time.monotonic() - started:.1f} s)")
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"epoch": epoch, "labels": labels, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict()}, checkpoint.with_suffix(".tmp"))
        checkpoint.with_suffix(".tmp").replace(checkpoint)

    model.eval()
    with torch.no_grad():
        predictions = model(x_val).argmax(1).cpu().numpy()
    report = common.classification_report(y_val.cpu().numpy(), predictions, labels)
    report["task_type"] = "image_classification"
    report["misclassified"] = [{"file": str(paths[i].relative_to(data)), "label": labels[targets[i]],
                                "predicted": labels[int(p)]} for i, p in zip(val_idx, predictions)
                               if int(p) != targets[i]][:200]
    common.write_json(out / "eval_result.json", report)
    for name in ("precision", "recall", "f1"):
        common.log_metric(f"macro_{name}", report[f"macro_{name}"], step=args.epochs)

    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.cpu().state_dict(), model_dir / "model.pt")
    common.copy_service_files(model_dir, "service_image_classification.py", "image_net.py")
    common.write_json(model_dir / "config.json", {
        "model_type": "PyTorch",
        "model_algorithm": "image_classification",
        "runtime": "atelier-torch-image-classification",
        "metrics": {"accuracy": report["accuracy"], "precision": report["macro_precision"],
                    "recall": report["macro_recall"], "f1": report["macro_f1"]},
        "apis": [{"url": "/", "method": "post",
                  "request": {"Content-type": "multipart/form-data",
                              "data": {"type": "object", "properties": {"images": {"type": "file"}}}},
                  "response": {"Content-type": "application/json",
                               "data": {"type": "object", "properties": {
                                   "predicted_label": {"type": "string"},
                                   "scores": {"type": "array", "items": [{"type": "array", "minItems": 2,
                                                                          "maxItems": 2,
                                                                          "items": [{"type": "string"},
                                                                                    {"type": "number"}]}]}}}}}],
        "dependencies": common.package_dependencies(("torch", torch.__version__.split("+")[0]), ("Pillow", ""),
                                                    ("numpy", "")),
        "atelier": {"labels": labels, "image_size": args.image_size, "width": args.width, "weights": "model.pt",
                    "service_class": "ImageClassificationService"},
    })
    common.say(f"Model package written to {model_dir}; accuracy {report['accuracy']:.4f}.")


if __name__ == "__main__":
    main()
