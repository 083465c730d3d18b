"""Compile-time visibility (`JIT_PROFILE=1`) and the persistent compile cache.

Nothing here runs at import; the runner calls `setup_compile_cache` and wraps its
jitted functions with `profiled` when asked.
"""

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax


def jit_profile_enabled() -> bool:
    """Whether `JIT_PROFILE=1` is set."""
    return os.environ.get("JIT_PROFILE", "0") not in ("", "0", "false")


def setup_compile_cache(folder: str) -> Path | None:
    """Turn on JAX's persistent compilation cache in `folder` ('' leaves it off)."""
    if not folder:
        return None
    path = Path(folder).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path


class _CompileClock:
    """Sums XLA compile durations reported through jax.monitoring while a call runs."""

    def __init__(self) -> None:
        self.seconds = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration_secs: float, **kwargs: str | int) -> None:
        if event.endswith("backend_compile_duration") or event.endswith("jaxpr_trace_duration"):
            self.seconds += duration_secs


_clock: _CompileClock | None = None


def _signature(args: tuple) -> tuple:
    leaves, treedef = jax.tree.flatten(args)
    # weak types count: a weakly-typed leaf that becomes strong after one step recompiles the function
    return (
        treedef,
        tuple(
            (getattr(x, "shape", None), str(getattr(x, "dtype", type(x))), getattr(x, "weak_type", None))
            for x in leaves
        ),
    )


def profiled(name: str, fn: Callable) -> Callable:
    """`fn` unchanged, or, under JIT_PROFILE=1, timed: compile and first-run time, and recompiles flagged."""
    global _clock
    if not jit_profile_enabled():
        return fn
    if _clock is None:
        _clock = _CompileClock()
    clock = _clock
    seen: set[tuple] = set()

    def wrapper(*args: Any) -> Any:
        sig = _signature(args)
        if sig in seen:
            return fn(*args)
        before, start = clock.seconds, time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        total = time.perf_counter() - start
        compile_s = clock.seconds - before
        tag = "RECOMPILE (new input shapes or types)" if seen else "compile"
        seen.add(sig)
        print(f"[JIT_PROFILE] {name}: {tag} {compile_s:.2f} s (trace + XLA), first run {total - compile_s:.2f} s")
        return out

    return wrapper
