"""Built-in tabular classification / regression: FLAML AutoML within a time budget.

Data (`--data_url`): one or more CSV files (all `*.csv` under the folder, concatenated; they
must share the header). `--label_column` names the column to predict; every other column is a
feature (numbers, or text that FLAML treats as categories).
Output (`--train_url`): `model/` (config.json with runtime atelier-sklearn-tabular,
customize_service.py, model.joblib holding the fitted FLAML AutoML object), `eval_result.json`
(classification: accuracy, per-class precision/recall/F1, confusion matrix; regression: MAE,
MSE, RMSE, R²) on a held-out split, and `checkpoints/search.log` (FLAML's trial log).

Resume: when the package and the evaluation already exist for the same label column and task,
a restarted attempt keeps them and exits. Otherwise the search starts again with the full time
budget, warm-started from the best configuration per learner found by the previous attempt.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

# An integer label with at most this many distinct values is taken as a class, not a quantity.
MAX_INTEGER_CLASSES = 20


def load_table(root: Path, label: str) -> pd.DataFrame:
    files = sorted(root.rglob("*.csv")) if root.is_dir() else [root]
    if not files:
        raise SystemExit(f"No CSV file found in {root}.")
    frames = []
    for path in files:
        try:
            frame = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SystemExit(f"{path.name} is not a readable CSV file: {exc}") from None
        if label not in frame.columns:
            raise SystemExit(f"{path.name} has no column {label!r} (label_column); its columns are "
                             f"{', '.join(map(str, frame.columns))}.")
        frames.append(frame)
    headers = {tuple(f.columns) for f in frames}
    if len(headers) > 1:
        raise SystemExit("The CSV files do not share the same header.")
    table = pd.concat(frames, ignore_index=True)
    table = table[table[label].notna()]
    if len(table) < 10:
        raise SystemExit(f"Only {len(table)} labeled rows; at least 10 are needed.")
    if len(table.columns) < 2:
        raise SystemExit("The table has no feature column besides the label.")
    return table


def decide_task(series: pd.Series, requested: str) -> str:
    if requested in ("classification", "regression"):
        return requested
    if series.dtype == object or series.dtype == bool or str(series.dtype) in ("category", "string", "str"):
        return "classification"
    if pd.api.types.is_integer_dtype(series) and series.nunique() <= MAX_INTEGER_CLASSES:
        return "classification"
    return "regression"


def previous_best(log: Path) -> dict:
    """Best configuration per learner in a FLAML trial log (JSON lines), for a warm start."""
    best: dict[str, tuple[float, dict]] = {}
    if not log.is_file():
        return {}
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        learner, config, loss = record.get("learner"), record.get("config"), record.get("validation_loss")
        if learner and isinstance(config, dict) and isinstance(loss, (int, float)):
            config = {k: v for k, v in config.items() if k != "learner"}
            if learner not in best or loss < best[learner][0]:
                best[learner] = (loss, config)
    return {learner: config for learner, (_, config) in best.items()}


def main() -> None:
    args = common.parse_args({"label_column": (str, "label"), "task": (str, "auto"), "time_budget": (int, 60),
                              "metric": (str, "auto"), "val_split": (float, 0.2), "seed": (int, 0)})
    if args.task not in ("auto", "classification", "regression"):
        raise SystemExit(f"task must be auto, classification or regression, not {args.task!r}.")
    data, out = Path(args.data_url), Path(args.train_url)
    model_dir, report_path = out / "model", out / "eval_result.json"
    table = load_table(data, args.label_column)
    task = decide_task(table[args.label_column], args.task)

    if (model_dir / "model.joblib").is_file() and report_path.is_file():
        done = json.loads(report_path.read_text())
        if done.get("label_column") == args.label_column and done.get("task") == task:
            common.say(f"Restart {common.restart_count()}: the model package of the previous attempt is complete; "
                       "keeping it.")
            return

    import joblib
    from flaml import AutoML
    from sklearn.model_selection import train_test_split

    y = table[args.label_column]
    x = table.drop(columns=[args.label_column])
    if task == "classification":
        y = y.astype(str) if y.dtype == object else y
        counts = y.value_counts()
        if len(counts) < 2:
            raise SystemExit(f"The label column {args.label_column!r} holds a single class.")
        stratify = y if counts.min() >= 2 else None
    else:
        if not pd.api.types.is_numeric_dtype(y):
            raise SystemExit(f"Regression needs a numeric label column; {args.label_column!r} is {y.dtype}.")
        stratify = None
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=args.val_split, random_state=args.seed,
                                                      stratify=stratify)
    common.say(f"{len(table)} rows, {x.shape[1]} features; task {task}; {len(x_train)} rows for the search, "
               f"{len(x_val)} held out; time budget {args.time_budget} s.")

    checkpoints = out / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    log = checkpoints / "search.log"
    warm = previous_best(log)
    if warm:
        common.say(f"Resuming the search from the best configurations of the previous attempt: {', '.join(warm)}.")
        log.replace(checkpoints / "search.previous.log")
    settings = {"task": task, "time_budget": args.time_budget, "metric": args.metric, "seed": args.seed,
                "log_file_name": str(log), "verbose": 0, "n_jobs": max(1, (os.cpu_count() or 1))}
    if warm:
        settings["starting_points"] = warm
    automl = AutoML()
    started = time.monotonic()
    automl.fit(x_train, y_train, **settings)
    common.say(f"Search finished in {time.monotonic() - started:.1f} s: best learner {automl.best_estimator}, "
               f"best validation loss {automl.best_loss:.4f}.")
    best_so_far = None
    for step, line in enumerate(log.read_text().splitlines() if log.is_file() else [], start=1):
        try:
            loss = json.loads(line).get("validation_loss")
        except ValueError:
            continue
        if isinstance(loss, (int, float)):
            best_so_far = loss if best_so_far is None else min(best_so_far, loss)
            common.log_metric("search_best_loss", best_so_far, step=step)

    predictions = automl.predict(x_val)
    if task == "classification":
        labels = [str(c) for c in automl.classes_]
        lookup = {label: k for k, label in enumerate(labels)}
        report = common.classification_report([lookup[str(v)] for v in y_val], [lookup[str(v)] for v in predictions],
                                              labels)
        report["task_type"] = "tabular_classification"
        for name in ("accuracy", "macro_precision", "macro_recall", "macro_f1"):
            common.log_metric(name, report[name])
        package_metrics = {"accuracy": report["accuracy"], "precision": report["macro_precision"],
                           "recall": report["macro_recall"], "f1": report["macro_f1"]}
    else:
        labels = []
        report = common.regression_report(y_val.to_numpy(), predictions)
        report["task_type"] = "tabular_regression"
        for name in ("mae", "mse", "rmse", "r2"):
            common.log_metric(name, report[name])
        package_metrics = {}
    report.update({"task": task, "label_column": args.label_column, "best_estimator": automl.best_estimator,
                   "best_config": automl.best_config, "rows_train": len(x_train), "rows_eval": len(x_val),
                   "features": [str(c) for c in x.columns]})
    common.write_json(report_path, report)

    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / "model.joblib.tmp"
    joblib.dump(automl, tmp)
    tmp.replace(model_dir / "model.joblib")
    common.copy_service_files(model_dir, "service_tabular.py")
    import flaml
    import lightgbm
    import sklearn

    common.write_json(model_dir / "config.json", {
        "model_type": "Scikit_Learn",
        "model_algorithm": "predict_analysis" if task == "classification" else "regression",
        "runtime": "atelier-sklearn-tabular",
        "metrics": package_metrics,
        "apis": [{"url": "/", "method": "post",
                  "request": {"Content-type": "application/json",
                              "data": {"type": "object", "properties": {"data": {"type": "object", "properties": {
                                  "req_data": {"type": "array", "items": [{"type": "object"}]}}}}}},
                  "response": {"Content-type": "application/json",
                               "data": {"type": "object", "properties": {"data": {"type": "object", "properties": {
                                   "resp_data": {"type": "array", "items": [{"type": "object"}]}}}}}}}],
        "dependencies": common.package_dependencies(("flaml", flaml.__version__), ("lightgbm", lightgbm.__version__),
                                                    ("scikit-learn", sklearn.__version__), ("pandas", pd.__version__),
                                                    ("numpy", np.__version__)),
        "features": [str(c) for c in x.columns],
        # The runtime maps integer predictions through `labels`; that only holds when the classes are 0..K-1.
        "labels": labels if labels == [str(k) for k in range(len(labels))] else [],
        "task": task,
    })
    summary = (f"accuracy {report['accuracy']:.4f}" if task == "classification" else
               f"R² {report['r2']:.4f}, RMSE {report['rmse']:.4f}")
    common.say(f"Model package written to {model_dir}; {summary}.")


if __name__ == "__main__":
    main()
