"""Results as JSON: one conversion for the worker's events and the CLI's --json reports."""
from __future__ import annotations

import dataclasses
from pathlib import Path


def to_jsonable(value):
    """Results hold dataclasses, paths and numpy values; JSON holds none of them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "record") and callable(value.record):  # LoadedModel
        return to_jsonable(value.record())
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
