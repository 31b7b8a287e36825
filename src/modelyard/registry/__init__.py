"""Versions (V): the registry service, lineage graphs and refs.

``Registry`` registers, resolves, branches, aliases, rolls back, deletes and garbage-collects
versions over the store; ``lineage`` holds the pure graph rules (a DAG, always).
"""

from .service import Registry, check_alias, check_model_name, current_user, default_model_name

__all__ = ["Registry", "check_alias", "check_model_name", "current_user", "default_model_name"]
