"""Checkpoints: one file per save, `ckpt_<iteration>.eqx`, written atomically, newest K kept.

A file is a JSON header line, then the learner state's leaves in equinox's format. The
header holds the iteration, env steps and wall time, what the policy was trained on
(observation layouts and joint order), and the payload's size and sha256, so a truncated
or corrupt file is found before it is read. Loading needs a template of the same
structure, which the runner builds from the run's saved config.
"""

import hashlib
import io
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import equinox as eqx

T = TypeVar("T")

_NAME = re.compile(r"ckpt_(\d+)\.eqx$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file."""


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
    payload = io.BytesIO()
    eqx.tree_serialise_leaves(payload, tree)
    data = payload.getvalue()
    header = {"iteration": iteration, **header, "payload_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ckpt_{iteration}.eqx"
    tmp = path.with_suffix(".eqx.tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(header).encode() + b"\n" + data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    for old in list(list_checkpoints(run_dir))[:-keep]:
        list_checkpoints(run_dir)[old].unlink(missing_ok=True)
    return path


def read(path: Path) -> tuple[dict[str, Any], bytes]:
    """(header, payload) of a checkpoint whose size and sha256 check out, else a CheckpointError."""
    with open(path, "rb") as f:
        line, data = f.readline(), f.read()
    try:
        header = json.loads(line)
        expected = (int(header["payload_bytes"]), str(header["sha256"]))
    except (ValueError, TypeError, KeyError):
        raise CheckpointError(f"{path} is corrupt: its header is unreadable") from None
    if (len(data), hashlib.sha256(data).hexdigest()) != expected:
        raise CheckpointError(f"{path} is corrupt or truncated: its contents do not match the sha256 in its header")
    return header, data


def resolve(pretrained: str | Path, checkpoint_num: int | None) -> tuple[Path, Path]:
    """(run directory, checkpoint file) for `pretrained=` (a run dir or a file) and `checkpoint_num=`.

    Without `checkpoint_num`, the newest checkpoint that reads back intact; any newer corrupt
    one is named in a warning.
    """
    path = Path(pretrained).expanduser()
    if path.is_file():
        return path.parent.parent, path
    if not path.is_dir():
        raise FileNotFoundError(f"pretrained={pretrained}: no such run directory or checkpoint file")
    found = list_checkpoints(path)
    if not found:
        raise FileNotFoundError(f"pretrained={pretrained}: no checkpoints in {checkpoint_dir(path)}")
    if checkpoint_num is not None:
        if checkpoint_num not in found:
            raise FileNotFoundError(f"checkpoint_num={checkpoint_num}: {path} has checkpoints {sorted(found)}")
        return path, found[checkpoint_num]
    for file in reversed(found.values()):
        try:
            read(file)
            return path, file
        except CheckpointError as err:
            print(f"warning: {err}; trying an older one", file=sys.stderr)
    raise CheckpointError(f"pretrained={pretrained}: every checkpoint in {checkpoint_dir(path)} is corrupt")


def load(path: Path, like: T, check: Callable[[dict[str, Any]], None] | None = None) -> tuple[T, dict[str, Any]]:
    """(tree, header) from a checkpoint file, with `like` giving the structure and dtypes.

    `check(header)`, if given, runs first and raises if the checkpoint does not suit the caller.
    """
    header, data = read(path)
    if check is not None:
        check(header)
    try:
        tree = eqx.tree_deserialise_leaves(io.BytesIO(data), like)
    except Exception as err:  # a shape mismatch surfaces as various errors from numpy/equinox
        raise CheckpointError(
            f"{path} does not fit this task's networks ({err}); was it trained with other network settings"
            " (actor, actor_hidden, critic_hidden, actor_mirrored, actor_mirror)?"
        ) from None
    return tree, header


def set_aside_newer(run_dir: Path, iteration: int) -> list[Path]:
    """Rename the checkpoints after `iteration` to `*.abandoned` (kept, but never picked as the latest)."""
    newer = [p for it, p in list_checkpoints(run_dir).items() if it > iteration]
    for p in newer:
        p.replace(p.with_name(p.name + ".abandoned"))
    return newer
