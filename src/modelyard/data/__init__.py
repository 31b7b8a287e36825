"""Datasets (D): loading, validation, encoding of raw rows, splits and disjoint shards."""

from .dataset import Dataset
from .load import from_arrays, from_frame, load_dataset
from .split import shard, split

__all__ = ["Dataset", "from_arrays", "from_frame", "load_dataset", "shard", "split"]
