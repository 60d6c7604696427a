"""The built-in algorithms: their channels and hyperparameters as the job form and API show them.

The code itself is in `builtin/` (scripts that run inside runs and import nothing from
Django). Each reads `--data_url`, writes a model package (`model/config.json`,
`model/customize_service.py`, weights) and `eval_result.json` to `--train_url`, reports
metrics while it trains, and resumes from `train_url/checkpoints/` when restarted.
"""
from __future__ import annotations

from .choices import Acquisition, Builtin

_IO = (
    [{"name": "data_url", "description": "Training data", "acquisition": Acquisition.HYPERPARAMETER,
      "constraint": None}],
    [{"name": "train_url", "description": "Model package, metrics and checkpoints",
      "acquisition": Acquisition.HYPERPARAMETER}],
)


def _h(name, kind, default, constraint=None, description="", required=False):
    return {"name": name, "type": kind, "default": default, "constraint": constraint, "required": required,
            "description": description}


def _range(low, high):
    return {"kind": "range", "min": low, "max": high}


HYPERPARAMETERS = {
    Builtin.IMAGE_CLASSIFICATION: [
        _h("epochs", "Integer", 10, _range(1, 1000), "Passes over the training data"),
        _h("batch_size", "Integer", 32, _range(1, 4096), "Images per step"),
        _h("learning_rate", "Float", 0.003, _range(1e-6, 1.0), "Adam learning rate"),
        _h("image_size", "Integer", 32, _range(8, 512), "Images are resized to this square size"),
        _h("width", "Integer", 32, _range(4, 256), "Channels of the first convolution block"),
        _h("val_split", "Float", 0.2, _range(0.05, 0.5), "Share of the data held out for evaluation"),
        _h("seed", "Integer", 0, _range(0, 2 ** 31 - 1), "Random seed"),
    ],
    Builtin.OBJECT_DETECTION: [
        _h("epochs", "Integer", 30, _range(1, 1000), "Passes over the training data"),
        _h("batch_size", "Integer", 16, _range(1, 1024), "Images per step"),
        _h("learning_rate", "Float", 0.002, _range(1e-6, 1.0), "Adam learning rate"),
        _h("image_size", "Integer", 128, _range(32, 1024), "Images are resized to this square size (a multiple of 4)"),
        _h("val_split", "Float", 0.2, _range(0.05, 0.5), "Share of the data held out for evaluation"),
        _h("score_threshold", "Float", 0.3, _range(0.0, 1.0), "Detections below this score are dropped"),
        _h("seed", "Integer", 0, _range(0, 2 ** 31 - 1), "Random seed"),
    ],
    Builtin.TABULAR: [
        _h("label_column", "String", "label", None, "Name of the column to predict", required=True),
        _h("task", "String", "auto", {"kind": "enum", "values": ["auto", "classification", "regression"]},
           "auto decides from the label column"),
        _h("time_budget", "Integer", 60, _range(5, 86400), "Seconds FLAML may search"),
        _h("metric", "String", "auto", None, "FLAML metric, e.g. accuracy, r2, rmse"),
        _h("val_split", "Float", 0.2, _range(0.05, 0.5), "Share of the data held out for evaluation"),
        _h("seed", "Integer", 0, _range(0, 2 ** 31 - 1), "Random seed"),
    ],
}

DESCRIPTIONS = {
    Builtin.IMAGE_CLASSIFICATION: "A compact convolutional network trained from scratch. Data: a folder per class "
                                  "(class/image.png) or a dataset manifest.",
    Builtin.OBJECT_DETECTION: "A single-scale anchor-free detector (CenterNet-style) in plain PyTorch, evaluated "
                              "with pycocotools mAP@0.5 and per-class AP. Data: a COCO annotation file (.json with "
                              "images, annotations, categories) with the images below the same folder.",
    Builtin.TABULAR: "FLAML AutoML within a time budget (LightGBM, random forest, extra trees, linear models). "
                     "Data: CSV files with a label column.",
}


def builtin_definitions(builtin: str) -> tuple[list[dict], list[dict], list[dict]]:
    """(input definitions, output definitions, hyperparameter definitions) of a built-in algorithm."""
    inputs, outputs = _IO
    return [dict(c) for c in inputs], [dict(c) for c in outputs], [dict(h) for h in HYPERPARAMETERS[builtin]]
