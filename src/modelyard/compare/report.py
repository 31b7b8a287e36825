"""The comparison as one standalone HTML page: tables and plots, images embedded as base64 PNG (mailable).

Plots come from matplotlib's Agg backend through ``Figure`` objects (no pyplot, so no
global figure state), imported on first use. Confusion matrices for every classifier;
ROC and precision-recall curves for binary problems; predicted-against-actual and
residuals for regression.
"""

from __future__ import annotations

import base64
import html
import io
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..records.comparisons import CompareEntry, Comparison, MetricDelta, PairTest
from ..schema import Task

__all__ = ["figures", "render_html", "write_report"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:4px 8px}
th{background:#f4f4f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:.6em 1em;border-radius:4px;margin:.4em 0;background:#f4f4f4}
.better{background:#e7f6e7}.worse{background:#fbeaea}.meta{color:#666;font-size:.9em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
"""


def _e(v: Any) -> str:
    return html.escape(str(v))


def _f(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.3e}"
        return f"{v:.{digits}f}"
    return _e(v)


def _p(v: float | None) -> str:
    return "–" if v is None else ("< 1e-4" if v < 1e-4 else f"{v:.4f}")


def _seconds(v: float | None) -> str:
    if v is None:
        return "–"
    if v < 1e-3:
        return f"{v * 1e6:.1f} µs"
    if v < 1:
        return f"{v * 1e3:.2f} ms"
    return f"{v:.2f} s"


def _bytes(v: int | None) -> str:
    if v is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if v < 1024 or unit == "GiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024  # type: ignore[assignment]
    return str(v)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int = 1) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = []
    for row in rows:
        cells = "".join(
            f"<td class='n'>{c}</td>" if i >= numeric_from else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _grid(n: int, size: float = 3.6) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(size * cols, size * rows))
    return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(n)]


def figures(c: Comparison) -> list[tuple[str, str]]:
    """``(title, base64 PNG)`` of every plot of the comparison."""
    out: list[tuple[str, str]] = []
    entries = list(c.entries)
    if c.task is Task.CLASSIFICATION:
        with_cm = [e for e in entries if e.diagnostics and e.diagnostics.confusion]
        if with_cm:
            fig, axes = _grid(len(with_cm))
            names = [str(x) for x in c.classes or ()]
            for ax, e in zip(axes, with_cm, strict=True):
                cm = e.diagnostics.confusion  # type: ignore[union-attr]
                ax.imshow(cm, cmap="Blues")
                k = len(cm)
                top = max(max(row) for row in cm) or 1
                for r in range(k):
                    for q in range(k):
                        ax.text(q, r, str(cm[r][q]), ha="center", va="center", fontsize=8 if k > 6 else 10,
                                color="white" if cm[r][q] > top / 2 else "black")
                ax.set_xticks(range(k), names, rotation=45 if k > 3 else 0, fontsize=8)
                ax.set_yticks(range(k), names, fontsize=8)
                ax.set_xlabel("predicted")
                ax.set_ylabel("true")
                ax.set_title(e.label, fontsize=10)
            out.append(("Confusion matrices", _png(fig)))
        curves = [e for e in entries if e.diagnostics and e.diagnostics.roc]
        if curves:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(10, 4.2))
            ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
            for e in curves:
                d = e.diagnostics
                auc = e.metrics.get("roc_auc")
                ax1.plot(d.roc[0], d.roc[1], label=f"{e.label} (AUC {auc:.3f})" if auc is not None else e.label)
                ax2.plot(d.pr[0], d.pr[1], label=e.label)
            ax1.plot([0, 1], [0, 1], ls=":", c="grey")
            ax1.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
            ax2.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
            ax1.legend(fontsize=8, loc="lower right")
            ax2.legend(fontsize=8, loc="lower left")
            out.append(("ROC and precision-recall curves", _png(fig)))
    else:
        reg = [e for e in entries if e.diagnostics and e.diagnostics.y_true]
        if reg:
            import numpy as np

            lo = min(min(e.diagnostics.y_true + e.diagnostics.y_pred) for e in reg)  # type: ignore[operator]
            hi = max(max(e.diagnostics.y_true + e.diagnostics.y_pred) for e in reg)  # type: ignore[operator]
            fig, axes = _grid(len(reg))
            for ax, e in zip(axes, reg, strict=True):
                ax.scatter(e.diagnostics.y_true, e.diagnostics.y_pred, s=6, alpha=0.5)
                ax.plot([lo, hi], [lo, hi], ls=":", c="grey")
                ax.set(xlabel="actual", ylabel="predicted", title=e.label)
            out.append(("Predicted against actual", _png(fig)))
            fig, axes = _grid(len(reg))
            for ax, e in zip(axes, reg, strict=True):
                pred = np.asarray(e.diagnostics.y_pred)
                res = pred - np.asarray(e.diagnostics.y_true)
                ax.scatter(pred, res, s=6, alpha=0.5)
                ax.axhline(0, ls=":", c="grey")
                ax.set(xlabel="predicted", ylabel="residual (predicted - actual)", title=e.label)
            out.append(("Residuals", _png(fig)))
    return out


def _verdict(p: PairTest, alpha: float) -> str:
    how = "McNemar's exact test" if p.test == "mcnemar_exact" else f"paired bootstrap of {p.test.split(':', 1)[-1]}"
    adj = f", Holm-adjusted {_p(p.p_adjusted)}" if p.p_adjusted != p.p_value else ""
    cls = "better" if p.winner else ""
    who = {"A better": f"{p.a} is better", "B better": f"{p.b} is better"}.get(p.verdict, "no significant difference")
    return (f"<div class='verdict {cls}'><b>A = {_e(p.a)}, B = {_e(p.b)}: {_e(who)}</b> "
            f"({_e(how)}, p = {_p(p.p_value)}{adj}, α = {alpha})</div>")


def _delta_rows(deltas: Sequence[MetricDelta], with_label: bool = False) -> list[list[str]]:
    rows = []
    for d in deltas:
        ci = "–" if d.ci_low is None else f"[{_f(d.ci_low)}, {_f(d.ci_high)}]"
        better = {"A": "A", "B": "B"}.get(d.better or "", "=")
        row = [_e(d.metric), _f(d.a), _f(d.b), _f(d.delta), ci, _p(d.p_value), better, "yes" if d.significant else "no"]
        rows.append(([_e(d.label)] if with_label else []) + row)
    return rows


def _cost_rows(entries: Sequence[CompareEntry]) -> list[list[str]]:
    rows = []
    for e in entries:
        c, lat = e.cost, e.cost.latency
        rows.append([
            _e(e.label), _seconds(c.train_time_s), _bytes(c.size_bytes), _f(c.n_parameters),
            _seconds(lat.batch_p50_s) if lat else "–", _seconds(lat.batch_p95_s) if lat else "–",
            _seconds(lat.row_p50_s) if lat else "–", _seconds(lat.row_p95_s) if lat else "–",
            f"{lat.rows_per_s:,.0f}" if lat else "–",
        ])
    return rows


def render_html(c: Comparison, *, title: str | None = None) -> str:
    """The standalone HTML page of comparison ``c``."""
    labels = " vs ".join(e.label for e in c.entries)
    title = title or f"modelyard comparison: {labels}"
    parts = [(f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>")]
    parts.append(
        f"<p class='meta'>{c.task.value} on {_e(c.data_source)} ({c.n_rows:,} rows, fingerprint "
        f"{_e(c.data_fingerprint[:12])}); ranking metric {_e(c.metric)} "
        f"({'higher' if c.higher_is_better else 'lower'} is better); α = {c.alpha}; {c.resamples:,} paired "
        f"bootstrap resamples (seed {c.seed}); correction: {_e(c.correction)}; {_e(c.created_at)}</p>"
    )
    if c.rows is not None:
        parts.append(f"<p class='rows'><b>Rows:</b> {_e(c.rows.note)}.</p>")
    else:
        parts.append("<p class='rows'><b>Rows:</b> not checked against the versions' training rows (saved before "
                     "modelyard did).</p>")
    parts.append("<h2>Verdict</h2>" + "".join(_verdict(p, c.alpha) for p in c.pairs))
    if len(c.entries) > 2:
        head = ["rank", "version", "family", c.metric, "vs best", "p (Holm)"]
        vs = {p.b: p for p in c.pairs}
        rows = []
        for e in c.leaderboard:
            p = vs.get(e.label)
            rows.append([str(e.rank), _e(e.label), _e(e.family), _f(e.metrics.get(c.metric)),
                         _e(f"{p.winner} better" if p and p.winner else (p.verdict if p else "best")),
                         _p(p.p_adjusted) if p else "–"])
        parts.append("<h2>Leaderboard</h2>" + _table(head, rows, numeric_from=3))
    for p in c.pairs:
        parts.append(f"<h2>Metrics: A = {_e(p.a)}, B = {_e(p.b)}</h2>")
        head = ["metric", "A", "B", "Δ (B − A)", f"{(1 - c.alpha) * 100:g}% CI of Δ", "p", "better", "significant"]
        parts.append(_table(head, _delta_rows(p.metrics)))
        if p.mcnemar is not None:
            m = p.mcnemar
            parts.append("<h3>McNemar's test on paired correctness</h3>" + _table(
                ["both right", "only A right", "only B right", "both wrong", "exact p", "mid-p", "χ² (corrected)", "χ² p"],
                [[_f(m.both_right), _f(m.a_only), _f(m.b_only), _f(m.both_wrong), _p(m.p_exact), _p(m.p_midp),
                  _f(m.statistic), _p(m.p_chi2)]], numeric_from=0))
        if p.per_class:
            parts.append("<h3>Per class</h3>" + _table(["class", *head], _delta_rows(p.per_class, True), numeric_from=2))
    parts.append("<h2>Cost</h2>" + _table(
        ["version", "training time", "size on disk", "parameters", "batch p50", "batch p95", "row p50", "row p95",
         "rows/s"], _cost_rows(c.entries)))
    lat = next((e.cost.latency for e in c.entries if e.cost.latency), None)
    if lat:
        parts.append(f"<p class='meta'>Latency measured now, after warm-up: {lat.repeats} interleaved calls of "
                     f"{lat.batch_size:,} rows and of one row per version.</p>")
    if c.distances:
        rows = []
        for d in c.distances:
            if d.comparable:
                rows.append([_e(d.a), _e(d.b), _f(d.l2), _f(d.relative_l2), _f(d.cosine), ""])
            else:
                rows.append([_e(d.a), _e(d.b), "–", "–", "–", _e(d.reason)])
        parts.append("<h2>Parameter space</h2>" + _table(["A", "B", "L2", "relative L2", "cosine", "note"], rows, 2))
        for d in c.distances:
            if d.comparable and d.arrays:
                parts.append(f"<h3>{_e(d.a)} → {_e(d.b)} per array</h3>" + _table(
                    ["array", "shape", "L2", "relative L2", "cosine"],
                    [[_e(x.name), _e("×".join(map(str, x.shape))), _f(x.l2), _f(x.relative_l2), _f(x.cosine)]
                     for x in d.arrays], numeric_from=2))
    importance = importance_section(c.entries)
    if importance:
        parts.append(importance)
    images = figures(c)
    if images:
        parts.append("<h2>Plots</h2>")
        for name, data in images:
            parts.append(f"<h3>{_e(name)}</h3><img alt='{_e(name)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def importance_section(entries: Sequence[CompareEntry], top: int = 15) -> str:
    """Feature importance side by side: the ``top`` features by their largest value, one column per version."""
    have = [e for e in entries if e.importance and e.importance.get("values")]
    if not have:
        return ""
    features: dict[str, float] = {}
    for e in have:
        for name, v in e.importance["values"].items():
            features[name] = max(features.get(name, 0.0), float(v))
    names = sorted(features, key=lambda n: -features[n])[:top]
    head = ["feature", *(f"{e.label} ({e.importance['method'].replace('_', ' ')})" for e in have)]
    rows = [[_e(n), *(_f(e.importance["values"].get(n)) for e in have)] for n in names]
    missing = [e.label for e in entries if e not in have]
    note = (f"<p class='meta'>No feature importance for {_e(', '.join(missing))} (its family records none).</p>"
            if missing else "")
    more = f" (top {top} of {len(features)})" if len(features) > top else ""
    return (f"<h2>Feature importance{more}</h2><p class='meta'>gain: share of the trees' total split gain; "
            "impurity: mean decrease in impurity; abs standardized weight: |w| on standardized inputs, summed "
            f"over outputs and a categorical column's one-hot columns.</p>" + _table(head, rows) + note)


def write_report(c: Comparison, path: str | os.PathLike[str]) -> Path:
    """Write the HTML page atomically (temp file + rename) to ``path``; returns the path."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise DataError(f"report path {str(target)!r} is a folder; pass a file name such as compare.html")
    if not target.parent.exists():
        raise DataError(f"the folder of report path {str(target)!r} does not exist; create it or pick another path")
    page = render_html(c).encode("utf-8")
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"  # "x" mode: the umask sets permissions
    try:
        with open(tmp, "xb") as f:
            f.write(page)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
