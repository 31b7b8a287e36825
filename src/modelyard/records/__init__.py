"""Frozen records, one module per domain; each part and the store return these, never live rows.

- ``training``: FitConfig, EpochLog (train/, models/)
- ``versions``: VersionSummary, Version, LineageEdge, Lineage, AliasMove, Deletion (registry/, store/)
- ``trials``: TrialState, Trial, StudyInfo (tune/, store/)
- ``comparisons``: Comparison and its parts (compare/, store/)
- ``times``: the ISO-8601 form every record uses for timestamps

The shared ``Task``, ``Column`` and ``Schema`` live one level lower, in ``modelyard.schema``.
They sit below ``store/`` (which returns them) and above ``schema``/``errors``.
"""
