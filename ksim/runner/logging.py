"""Training logs: TensorBoard event files and one console line per iteration with a progress bar."""

import sys
import time
from pathlib import Path

from tensorboardX import SummaryWriter


def _bar(fraction: float, width: int = 20) -> str:
    filled = int(round(fraction * width))
    return "[" + "#" * filled + "-" * (width - filled) + f"] {100 * fraction:5.1f}%"


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


class TrainLogger:
    """Writes every metric to TensorBoard and a short line to the console."""

    def __init__(self, run_dir: Path, start_iteration: int, max_iterations: int | None) -> None:
        """Open the event file; on resume, events after `start_iteration` are dropped (`purge_step`)."""
        purge = start_iteration if start_iteration > 0 else None
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge)
        self.max_iterations = max_iterations
        self.start = time.perf_counter()

    def log(self, iteration: int, env_steps: float, metrics: dict[str, float]) -> None:
        """Record one iteration's metrics (keys like `reward/upright`) at step `iteration`."""
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, iteration)
        self.writer.add_scalar("perf/env_steps", env_steps, iteration)
        ended = metrics.get("episode/num_ended", 0.0)
        parts = [
            f"it {iteration}",
            f"steps {_si(env_steps)}",
            f"{_si(metrics['perf/env_steps_per_s'])}/s",
            f"reward {metrics['reward/total']:.4f}",
            f"ep {metrics['episode/length_s']:.1f}s" if ended else "ep -",
            f"fail {metrics['episode/failure_rate']:.2f}" if ended else "fail -",
        ]
        if "distill/loss_last_epoch" in metrics:  # distillation: the fit to the teacher, first -> last epoch
            parts.append(f"fit {metrics['distill/loss_first_epoch']:.4f} -> {metrics['distill/loss_last_epoch']:.4f}")
        else:
            parts += [f"kl {metrics['policy/kl']:.4f}", f"lr {metrics['policy/learning_rate']:.1e}"]
        if "perf/rollout_s" in metrics:
            parts.append(f"roll {metrics['perf/rollout_s']:.2f}s upd {metrics['perf/update_s']:.2f}s")
        line = " | ".join(parts)
        if self.max_iterations:
            line = f"{_bar(min(iteration / self.max_iterations, 1.0))} {line}"
        print(line, flush=True)

    def text(self, message: str) -> None:
        """A console message that is not a metric line."""
        print(message, file=sys.stdout, flush=True)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()
