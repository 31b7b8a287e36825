"""Which rows of the comparison data a comparison may use: those none of the compared versions trained on.

Each version records how its rows were split (``data.split.split_record``): the data's
fingerprint, seed, fractions and stratification, and its train and validation rows by
content (``data.rowhash``). For each version, and each warm-start ancestor whose weights it
continued from, the data is checked in the strongest way the record allows:

- ``split``: the data is the one it was split from (same fingerprint and rows), so the split
  is re-derived and its train and validation rows are known exactly (checked against the
  recorded rows: a re-derived row that is not among them falls back to the next way);
- ``rows``: otherwise every row is looked up by content among its training rows (a superset,
  subset, reordering or copy of the training file is found this way);
- ``sample``: when only a sample of its training rows' hashes is kept (large data), a match
  proves overlap but cannot find every training row, so the comparison refuses;
- ``unchecked``: the version predates split records (or is not a registered version).

The rows found for any version are left out; none left is refused in one sentence, unless
training rows are allowed, which keeps every row and says how many flatter the versions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.dataset import Dataset
from ..data.rowhash import ROW_HASH, SeenRows, row_hashes
from ..data.split import rederive
from ..errors import DataError
from ..records.comparisons import RowCheck, RowSelection
from ..schema import Task
from .align import Aligned

__all__ = ["select_rows"]

UNRECORDED = "registered before versions recorded their split"


def _version_y(aligned: Aligned, i: int, task: Task) -> NDArray:
    """The target as version ``i`` coded it in training: its own class indices, or the values."""
    if task is Task.REGRESSION or aligned.classes is None:
        return np.asarray(aligned.y, dtype=np.float64)
    cmap = aligned.class_maps[i]  # version class c is reference class cmap[c]
    inverse = np.empty(len(cmap), dtype=np.int64)
    inverse[cmap] = np.arange(len(cmap))
    return inverse[np.asarray(aligned.y, dtype=np.int64)]


def _check(label: str, records: Sequence[Mapping[str, Any] | None], dataset: Dataset, X: NDArray, y: NDArray,
           ) -> tuple[RowCheck, NDArray[np.bool_], int]:
    """One version's check: (the check, rows it trained on, estimated training rows that could not be found)."""
    n = len(dataset)
    mask = np.zeros(n, dtype=bool)
    hows: list[str] = []
    unfound = 0
    hashes: NDArray[np.uint64] | None = None
    notes: list[str] = []
    for k, rec in enumerate(records):
        whose = "it" if k == 0 else "the version it was warm-started from"
        if rec is None:
            hows.append("unchecked")
            notes.append(f"{whose} was deleted")
            continue
        seen_rec = rec.get("seen")
        seen_rows = SeenRows(seen_rec) if isinstance(seen_rec, Mapping) and seen_rec.get("hash") == ROW_HASH else None
        parts = rederive(dataset, rec) if "fingerprint" in rec else None
        if parts is not None:
            trained = np.concatenate([parts[0], parts[1]])
            if seen_rows is not None:  # the re-derived rows must be the recorded ones, else trust the content
                if hashes is None:
                    hashes = row_hashes(X, y)
                seen, known = seen_rows.match(hashes[trained])
                if not seen[known].all():
                    parts = None
        if parts is not None:
            mask[trained] = True
            hows.append("split")
            continue
        if seen_rows is None:
            hows.append("unchecked")
            notes.append(f"{whose} was {UNRECORDED}")
            continue
        if hashes is None:
            hashes = row_hashes(X, y)
        seen, known = seen_rows.match(hashes)
        mask |= seen
        if seen_rows.complete:
            hows.append("rows")
            continue
        hows.append("sample")
        found = int(seen.sum())
        if found:
            estimate = round(found / max(seen_rows.sampled_fraction, 1e-12))
            unfound = max(unfound, estimate - found)
        notes.append(f"only a sample of {whose} training rows is recorded, so a small overlap could go unseen")
    order = ("unchecked", "sample", "rows", "split")
    how = min(hows, key=order.index) if hows else "unchecked"
    trained = None if how == "unchecked" and all(h == "unchecked" for h in hows) else int(mask.sum())
    return RowCheck(label, how, trained, "; ".join(dict.fromkeys(notes))), mask, unfound


def _names(labels: Sequence[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def select_rows(
    dataset: Dataset,
    aligned: Aligned,
    labels: Sequence[str],
    records: Sequence[Sequence[Mapping[str, Any] | None] | None],
    *,
    allow_training_rows: bool = False,
) -> tuple[NDArray[np.bool_], RowSelection]:
    """The rows to evaluate on and the record saying why; DataError when no row is held out from every version.

    ``records[i]`` lists version ``i``'s split record and those of its warm-start ancestors
    (None for one that is gone), or is None for a candidate that is not a registered version.
    """
    task = Task.CLASSIFICATION if aligned.classes is not None else Task.REGRESSION
    n = len(dataset)
    training = np.zeros(n, dtype=bool)
    checks: list[RowCheck] = []
    unfound: dict[str, int] = {}
    for i, (label, recs) in enumerate(zip(labels, records, strict=True)):
        if recs is None:
            checks.append(RowCheck(label, "unchecked", None, "not a registered version"))
            continue
        check, mask, missing = _check(label, recs, dataset, aligned.X[i], _version_y(aligned, i, task))
        checks.append(check)
        training |= mask
        if missing:
            unfound[label] = missing
    n_training = int(training.sum())
    source = dataset.source
    if unfound and not allow_training_rows:
        who = _names(list(unfound))
        raise DataError(
            f"{source} shares rows with the training data of {who} (about {sum(unfound.values()) + n_training:,} "
            "rows), and only a sample of those training rows is recorded, so they cannot all be left out; compare "
            "on rows none of the versions trained on (modelyard train --save-split DIR writes a version's test rows) "
            "or pass --allow-training-rows to use every row anyway"
        )
    keep = np.ones(n, dtype=bool) if allow_training_rows else ~training
    used = int(keep.sum())
    if used == 0:
        raise DataError(
            f"every one of the {n:,} rows of {source} was a training or validation row of "
            f"{_names([c.label for c in checks if c.trained])}, so no row is held out from every version; compare "
            "on rows none of them trained on (modelyard train --save-split DIR writes a version's test rows) or "
            "pass --allow-training-rows to use them anyway"
        )
    note = _note(n, used, n_training, allow_training_rows, checks, bool(unfound))
    return keep, RowSelection(n, used, n_training, bool(allow_training_rows), tuple(checks), note)


def _note(n: int, used: int, n_training: int, allowed: bool, checks: Sequence[RowCheck], unfound: bool) -> str:
    """The one sentence that says which rows were evaluated on."""
    trained_on = [c.label for c in checks if c.trained]
    unchecked = [c.label for c in checks if c.how == "unchecked"]
    if allowed and (n_training or unfound):
        text = (f"evaluated on all {n:,} rows, {'at least ' if unfound else ''}{n_training:,} of them training or "
                f"validation rows of {_names(trained_on)} (--allow-training-rows): their scores there flatter them")
    elif n_training:
        text = (f"evaluated on the {used:,} rows held out from every version ({n_training:,} of the {n:,} rows "
                f"were training or validation rows of {_names(trained_on)} and are left out)")
    elif len(unchecked) == len(checks):
        text = f"evaluated on all {n:,} rows"
    else:
        text = f"evaluated on all {n:,} rows: none of them is a training or validation row of any version"
    if unchecked:
        why = "; ".join(dict.fromkeys(c.note for c in checks if c.how == "unchecked" and c.note))
        text += (f"; the rows could not be checked against the training rows of {_names(unchecked)}"
                 + (f" ({why})" if why else ""))
    elif any(c.how == "sample" for c in checks) and not n_training:
        text += " (checked against a sample of the larger versions' training rows)"
    return text
