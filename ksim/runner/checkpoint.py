"""Checkpoints: one file per save, `ckpt_<iteration>.eqx`, written atomically, newest K kept.

A file is a JSON header line (iteration, env steps, wall time) followed by the
learner state's leaves in equinox's format. Loading needs a template of the same
structure, which the runner builds from the run's saved config.
"""

import json
import os
import re
from pathlib import Path
from typing import Any, TypeVar

import equinox as eqx

T = TypeVar("T")

_NAME = re.compile(r"ckpt_(\d+)\.eqx$")


def checkpoint_dir(run_dir: Path) -> Path:
    """Where a run keeps its checkpoints."""
    return run_dir / "checkpoints"


def list_checkpoints(run_dir: Path) -> dict[int, Path]:
    """Checkpoints of a run by iteration number, oldest first."""
    folder = checkpoint_dir(run_dir)
    found = {int(m.group(1)): p for p in folder.glob("ckpt_*.eqx") if (m := _NAME.search(p.name))}
    return dict(sorted(found.items()))


def save(run_dir: Path, iteration: int, tree: Any, header: dict[str, Any], keep: int) -> Path:
    """Write `tree` as checkpoint `iteration` (temp file + rename: never half a file), then prune to `keep`."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ckpt_{iteration}.eqx"
    tmp = path.with_suffix(".eqx.tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps({"iteration": iteration, **header}).encode() + b"\n")
        eqx.tree_serialise_leaves(f, tree)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    for old in list(list_checkpoints(run_dir))[:-keep] if keep > 0 else []:
        list_checkpoints(run_dir)[old].unlink(missing_ok=True)
    return path


def resolve(pretrained: str | Path, checkpoint_num: int | None) -> tuple[Path, Path]:
    """(run directory, checkpoint file) for `pretrained=` (a run dir or a file) and `checkpoint_num=`."""
    path = Path(pretrained).expanduser()
    if path.is_file():
        return path.parent.parent, path
    if not path.is_dir():
        raise FileNotFoundError(f"pretrained={pretrained}: no such run directory or checkpoint file")
    found = list_checkpoints(path)
    if not found:
        raise FileNotFoundError(f"pretrained={pretrained}: no checkpoints in {checkpoint_dir(path)}")
    if checkpoint_num is None:
        return path, found[max(found)]
    if checkpoint_num not in found:
        raise FileNotFoundError(f"checkpoint_num={checkpoint_num}: {path} has checkpoints {sorted(found)}")
    return path, found[checkpoint_num]


def load(path: Path, like: T) -> tuple[T, dict[str, Any]]:
    """(tree, header) from a checkpoint file, with `like` giving the structure and dtypes."""
    with open(path, "rb") as f:
        header = json.loads(f.readline())
        try:
            tree = eqx.tree_deserialise_leaves(f, like)
        except Exception as err:  # a shape mismatch surfaces as various errors from numpy/equinox
            raise ValueError(
                f"{path} does not fit this task's model ({err}); was it trained with other sizes or observations?"
            ) from None
    return tree, header
