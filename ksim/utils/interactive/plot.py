"""The live reward plot: each reward term and the total over a rolling window, as a PNG.

The file is rendered in a background thread (matplotlib's object API with the Agg
canvas, no pyplot state) and replaced atomically, so an image viewer that reloads it
never sees half a file.
"""

import os
import threading
import time
from collections import deque
from pathlib import Path


class RewardPlot:
    """Keeps the last `window` samples of each term and rewrites `path` every `every_seconds`."""

    def __init__(self, path: str | Path, window: int, every_seconds: float) -> None:
        """Start the writer thread."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.window = window
        self.every_seconds = every_seconds
        self.times: deque[float] = deque(maxlen=window)
        self.terms: dict[str, deque[float]] = {}
        self.writes = 0
        self._lock = threading.Lock()
        self._dirty = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reward-plot", daemon=True)
        self._thread.start()

    def add(self, sim_time: float, terms: dict[str, float]) -> None:
        """Record one step's reward terms (the total is added here)."""
        with self._lock:
            self.times.append(sim_time)
            for name, value in {**terms, "total": sum(terms.values())}.items():
                self.terms.setdefault(name, deque(maxlen=self.window)).append(value)
            self._dirty = True

    def write(self) -> None:
        """Render the current window to the file now."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        with self._lock:
            times = list(self.times)
            series = {k: list(v)[-len(times) :] for k, v in self.terms.items()}
            self._dirty = False
        fig = Figure(figsize=(6, 3.5), dpi=80)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for name, values in series.items():
            ax.plot(times[-len(values) :], values, label=name, linewidth=2.5 if name == "total" else 1.2)
        ax.set_xlabel("simulated time (s)")
        ax.set_ylabel("reward per step (scaled)")
        ax.legend(fontsize=7, loc="upper left", ncol=2)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        tmp = self.path.with_name(f".{self.path.stem}.tmp.png")
        fig.savefig(tmp, format="png")
        os.replace(tmp, self.path)
        self.writes += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.every_seconds):
            if self._dirty:
                self.write()

    def close(self) -> None:
        """Stop the thread after a last write."""
        self._stop.set()
        self._thread.join()
        if self.times:
            self.write()

    def wait_written(self, timeout: float = 5.0) -> bool:
        """Block until at least one file was written (tests)."""
        end = time.time() + timeout
        while self.writes == 0 and time.time() < end:
            time.sleep(0.05)
        return self.writes > 0
