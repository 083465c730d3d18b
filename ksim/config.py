"""Config fields with their help text and bounds, and the one check that enforces them.

Every config (PPO's, the runner's, a task's, the viewer's, the benchmarks') is a dataclass
whose fields are made with `opt`; `check_fields` rejects NaN, infinities and out-of-range
values with one line that names the field.
"""

import dataclasses
import math
from typing import Any


def opt(
    default: Any, help: str = "", *, ge: float | None = None, gt: float | None = None, le: float | None = None
) -> Any:
    """A dataclass field with its help text (shown by `--help`) and bounds (each element, for tuples).

    `ge`/`le` are inclusive bounds and `gt` an exclusive one. Defaults must be immutable. A
    subclass that only changes a default writes `opt(new_default)`: help and bounds are inherited.
    """
    meta: dict[str, Any] = {"help": help} if help else {}
    meta |= {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le)) if v is not None}
    return dataclasses.field(default=default, metadata=meta)


def field_meta(cls: type, name: str) -> dict[str, Any]:
    """A field's help and bounds, merged down the class hierarchy (the most derived class wins)."""
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        merged |= dict(f.metadata) if f is not None else {}
    return merged


def _problem(value: Any, meta: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if "ge" in meta and value < meta["ge"]:
        return f"must be >= {meta['ge']}"
    if "gt" in meta and value <= meta["gt"]:
        return f"must be > {meta['gt']}"
    if "le" in meta and value > meta["le"]:
        return f"must be <= {meta['le']}"
    return None


def check_fields(config: Any) -> None:
    """Raise a one-line ValueError for the first field that is NaN, infinite or out of its bounds."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        for item in value if isinstance(value, tuple) else (value,):
            problem = _problem(item, field_meta(type(config), f.name))
            if problem:
                shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
                raise ValueError(f"{f.name}={shown}: {problem}")
