"""How ``modelyard train`` shows cross-validation results, the refit, and feature importance."""

from __future__ import annotations

from typing import Any

__all__ = ["cv_table", "importance_text", "refit_note"]

_SKIP = ("train_time_s", "inference_time_per_row_s", "cv_folds")


def _fmt(v: float) -> str:
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.3e}"
    return f"{v:.4f}"


def cv_table(cv: dict[str, Any], title: str) -> Any:
    """Per metric: mean ± standard deviation over the folds, and each fold's value."""
    from rich.table import Table

    folds = cv["folds"]
    table = Table(title=title, header_style="bold")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("sd", justify="right")
    for i in range(len(folds)):
        table.add_column(f"fold {i + 1}", justify="right")
    for m, mean in cv["mean"].items():
        if m in _SKIP:
            continue
        table.add_row(m, _fmt(mean), _fmt(cv["std"].get(m, 0.0)), *(_fmt(f[m]) for f in folds))
    return table


def refit_note(result: Any) -> str:
    """The sentence that says which model was registered: the refit on all rows, not a fold's."""
    cv = result.extra["cv"]
    how = (f"{cv['refit_fit_rows']} fit + {cv['refit_validation_rows']} validation for early stopping"
           if cv["refit_validation_rows"] else "no validation rows")
    return (f"the model is refit on all {cv['refit_rows']} training rows ({how}); the metrics above are its "
            f"{cv['k']}-fold cross-validated estimate (mean and sd over folds), and are what is recorded")


def importance_text(imp: dict[str, Any], top: int = 10) -> str:
    """The most important features in one line, e.g. ``importance (gain): petal_len 0.62, petal_wid 0.31, ...``."""
    items = sorted(imp["values"].items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} {v:.3g}" for k, v in items[:top])
    more = f", ... ({len(items) - top} more)" if len(items) > top else ""
    return f"feature importance ({imp['method'].replace('_', ' ')}): {shown}{more}"
