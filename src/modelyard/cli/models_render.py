"""How ``modelyard models`` draws versions: the table, one version's panel, lineage trees, alias moves."""

from __future__ import annotations

from typing import Any

from .render import local_time, num

__all__ = [
    "diff_text", "importance_table", "lineage_tree", "metric_text", "move_text", "split_text", "version_panel",
    "versions_table",
]


def metric_text(key: str | None, value: float | None) -> str:
    """``key value`` with significant digits, or ``-``."""
    return "-" if key is None or value is None else f"{key} {num(value)}"


def split_text(split: dict[str, Any]) -> str:
    """A version's split in words: the part sizes and how they were drawn."""
    sizes = ", ".join(f"{k} {split[k]:,}" for k in ("train", "validation", "test") if k in split) or "-"
    if "seed" not in split:
        return sizes + " (how the rows were drawn is not recorded: registered before versions recorded it)"
    how = (f"seed {split['seed']}, validation {num(split['val_size'])}, test {num(split['test_size'])}"
           + (", stratified by class" if split.get("stratify") else ""))
    seen = split.get("seen") or {}
    kept = "" if not seen else ("; training rows recorded by content" if seen.get("complete")
                                else "; a sample of the training rows recorded by content")
    return f"{sizes} of {split.get('rows', 0):,} rows ({how}{kept})"


def versions_table(versions: list[Any]) -> Any:
    """The listing table of versions."""
    from rich import box
    from rich.table import Table

    t = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, show_edge=False)
    for col, nowrap in (("version", True), ("id", True), ("family", True), ("key metric", True),
                        ("aliases", False), ("created", True)):
        t.add_column(col, no_wrap=nowrap, overflow="fold")
    for v in versions:
        t.add_row(v.ref, v.short_id, v.family, metric_text(v.key_metric, v.key_value),
                  ", ".join(v.aliases), local_time(v.created_at, seconds=False))
    return t


def version_panel(v: Any, parent: str | None) -> Any:
    """Everything one version records, as a panel."""
    from rich.console import Group
    from rich.table import Table

    from .render import metrics_table

    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    rows = [
        ("version", v.ref), ("id", v.id), ("family", v.family), ("task", v.task),
        ("aliases", ", ".join(v.aliases) or "-"), ("parent", parent or "- (root)"),
        ("created", f"{local_time(v.created_at)} by {v.creator}"), ("data", f"{v.source} (fingerprint {v.fingerprint[:12]})"),
        ("split", split_text(v.split)), ("seed", str(v.seed)),
        ("training", ", ".join(f"{k}={val}" for k, val in v.fit_config.to_dict().items() if val is not None)),
        ("epochs run", f"{len(v.history)}"), ("weights", f"{v.artifact[:12]} ({v.artifact_size:,} bytes, safetensors)"),
        ("libraries", ", ".join(f"{k} {val}" for k, val in v.library_versions.items())),
    ]
    if v.description:
        rows.append(("description", v.description))
    if v.tags:
        rows.append(("tags", ", ".join(f"{k}={val}" for k, val in v.tags.items())))
    for k, val in v.links.items():
        rows.append((k.replace("_", " "), str(val)[:12] if k in ("metrics_from", "warm_start") else str(val)))
    for k, val in rows:
        info.add_row(k, val)
    params = Table(title="hyperparameters", header_style="bold")
    params.add_column("name")
    params.add_column("value")
    for k, val in v.params.items():
        params.add_row(k, str(val))
    title = "held-out metrics" + (" (measured on the parent: same weights)" if "metrics_from" in v.links else "")
    parts = [info, params, metrics_table(v.metrics, title=title)]
    imp = importance_table(getattr(v, "importance", None))
    if imp is not None:
        parts.append(imp)
    return Group(*parts)


def importance_table(imp: dict[str, Any] | None, top: int = 20) -> Any:
    """Feature importance as a table with a bar per feature (largest first), or None when there is none."""
    if not imp or not imp.get("values"):
        return None
    from rich.table import Table

    items = sorted(imp["values"].items(), key=lambda kv: -kv[1])
    peak = max((v for _, v in items), default=0.0) or 1.0
    more = f", top {top} of {len(items)}" if len(items) > top else ""
    t = Table(title=f"feature importance ({imp['method'].replace('_', ' ')}{more})", header_style="bold")
    t.add_column("feature", overflow="fold")
    t.add_column("importance", justify="right")
    t.add_column("")
    for name, value in items[:top]:
        t.add_row(name, f"{value:.4g}", "█" * max(0, round(24 * value / peak)))
    return t


def diff_text(version: Any, reg: Any) -> str:
    """What changed against the parent (params), in one line."""
    from ..registry.lineage import format_diff

    edge = reg.lineage(version.id).edge_to(version.id)
    return "changes: " + format_diff(edge.diff) if edge is not None else ""


def lineage_tree(lin: Any) -> Any:
    """A lineage as a tree, each edge labelled with its change."""
    from rich.tree import Tree

    from ..registry.lineage import format_diff

    edges = {e.child_id: e for e in lin.edges}
    children: dict[str, list[Any]] = {}
    for d in lin.descendants:
        children.setdefault(d.parent_id, []).append(d)

    def label(v: Any) -> str:
        text = f"[bold]{v.ref}[/]" if v.id == lin.version.id else v.ref
        text += f" [dim]{v.short_id}[/] {v.family} {metric_text(v.key_metric, v.key_value)}"
        if v.aliases:
            text += " [green]" + " ".join(f"@{a}" for a in v.aliases) + "[/]"
        if v.tags.get("study") is not None:
            trial = f" trial {v.tags['trial']}" if v.tags.get("trial") is not None else ""
            text += f" [magenta](tuned: study {v.tags['study']}{trial})[/]"
        e = edges.get(v.id)
        if e is not None:
            how = "retrained" if e.retrained else "same weights"
            via = f", via {len(e.via)} deleted" if e.via else ""
            text += f"  [cyan]({format_diff(e.diff)}; {how}{via})[/]"
        return text

    chain = [*reversed(lin.ancestors), lin.version]
    tree = Tree(label(chain[0]))
    node = tree
    for v in chain[1:]:
        node = node.add(label(v))

    def grow(branch: Any, parent_id: str) -> None:
        for c in children.get(parent_id, ()):
            grow(branch.add(label(c)), c.id)

    grow(node, lin.version.id)
    return tree


def move_text(m: Any) -> str:
    """One alias move in words."""
    what = {"set": "moved", "rollback": "rolled back", "unset": "removed", "delete": "removed"}.get(m.action, m.action)
    src = m.from_ref or "(unset)"
    dst = m.to_ref or "(unset)"
    why = f" — {m.reason}" if m.reason else ""
    return f"{what} {m.name}@{m.alias}: {src} -> {dst} by {m.user}{why}"
