"""One-operand layouts for host callbacks: many small per-env arrays as one row of words.

Host callbacks pay per operand, whatever its size (measured on the 2-core VM at 128
envs: `jax.pure_callback` ~20 µs each; a `buffer_callback` with one operand ~3 µs, with
ten ~40 µs), so the native backend sends and receives one packed `uint32` row per env
instead of a dozen arrays. Every field is made of 32-bit words (float32, uint32, or
a bool stored as one word), so packing is a bitcast and a concatenation, with no
conversion.
"""

import math
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, UInt32

Shape = tuple[int, ...]
_DTYPES = (np.dtype(np.float32), np.dtype(np.uint32), np.dtype(np.bool_))


@dataclass(frozen=True)
class Layout:
    """Named fields of one env, in order, as `(shape, dtype)`; dtypes float32, uint32 or bool."""

    fields: dict[str, tuple[Shape, type]]

    def __post_init__(self) -> None:
        bad = {k: np.dtype(t).name for k, (_, t) in self.fields.items() if np.dtype(t) not in _DTYPES}
        if bad:
            raise TypeError(f"packed fields must be float32, uint32 or bool, got {bad}")

    @cached_property
    def slices(self) -> dict[str, slice]:
        """Each field's columns in the packed row."""
        out, start = {}, 0
        for name, (shape, _) in self.fields.items():
            out[name] = slice(start, start + math.prod(shape))
            start += math.prod(shape)
        return out

    @cached_property
    def width(self) -> int:
        """Words per env."""
        return sum(math.prod(shape) for shape, _ in self.fields.values())

    # ---- device side, one env (the engine vmaps) ----

    def pack(self, **values: Array) -> UInt32[Array, " width"]:
        """The fields, bitcast to words and concatenated, in layout order."""
        words = []
        for name, (_, dtype) in self.fields.items():
            x = jnp.asarray(values[name]).reshape(-1)
            if np.dtype(dtype) == np.float32:
                x = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
            words.append(x.astype(jnp.uint32))
        return jnp.concatenate(words)

    def unpack(self, row: UInt32[Array, " width"]) -> dict[str, Array]:
        """The fields of one packed row, with their shapes and dtypes."""
        out = {}
        for name, (shape, dtype) in self.fields.items():
            x = row[self.slices[name]]
            if np.dtype(dtype) == np.float32:
                x = jax.lax.bitcast_convert_type(x, jnp.float32)
            elif np.dtype(dtype) == np.bool_:
                x = x != 0
            out[name] = x.reshape(shape)
        return out

    # ---- host side, whole batches (inside the callback) ----

    def read(self, buf: np.ndarray, name: str) -> np.ndarray:
        """Field `name` of every env of a packed `(num_envs, width)` batch, as a view where possible."""
        shape, dtype = self.fields[name]
        cols = np.asarray(buf)[:, self.slices[name]]
        if np.dtype(dtype) == np.float32:
            cols = cols.view(np.float32)
        elif np.dtype(dtype) == np.bool_:
            cols = cols != 0
        return cols.reshape(len(cols), *shape)

    def empty(self, num_envs: int) -> np.ndarray:
        """A zeroed `(num_envs, width)` batch to fill with `write`."""
        return np.zeros((num_envs, self.width), np.uint32)

    def write(self, buf: np.ndarray, name: str, value: np.ndarray) -> None:
        """Store every env's `name` into `buf`, converting to the field's dtype (float64 → float32)."""
        _, dtype = self.fields[name]
        cols = self.slices[name]
        value = np.asarray(value).reshape(len(buf), -1)
        if np.dtype(dtype) == np.float32:
            buf.view(np.float32)[:, cols] = value
        else:
            buf[:, cols] = value
