"""Episode statistics from recorded (T, E) arrays, shared by `action=eval` and `ksim.deploy` (numpy only)."""

import math

import numpy as np

KINDS = ("forward", "sideways", "turning", "still")


def survival(
    done_TE: np.ndarray, terminated_TE: np.ndarray, reasons: dict[str, np.ndarray], ctrl_dt: float
) -> dict[str, float]:
    """Over each env's first episode: survival rate, mean length, and the share each termination ended."""
    live_TE = live_steps(done_TE)
    fell_E = np.any(terminated_TE & live_TE, axis=0)
    metrics = {
        "survival_rate": float(1.0 - fell_E.mean()),
        "mean_episode_length_s": float((live_TE.sum(axis=0) * ctrl_dt).mean()),
        "episodes": float(done_TE.shape[1]),
        "seconds": float(done_TE.shape[0] * ctrl_dt),
    }
    for name, hit_TE in reasons.items():
        metrics[f"ended_by_{name}"] = float(np.any(hit_TE & live_TE, axis=0).mean())
    return metrics


def live_steps(done_TE: np.ndarray) -> np.ndarray:
    """Whether each step belongs to its env's first episode (no earlier step of that env ended one)."""
    return ~(np.cumsum(done_TE, axis=0) - done_TE > 0)


def tracking(
    command_TE3: np.ndarray, lin_err_TE: np.ndarray, ang_err_TE: np.ndarray, live_TE: np.ndarray
) -> dict[str, float]:
    """Mean tracking errors, overall and per command kind, beside those of a robot that stands still.

    A step's kind is `still` when its command (vx, vy, wz) is below 0.05 in norm, else the
    largest of |vx| (forward), |vy| (sideways) and |wz| (turning).
    """
    moving_TE = np.linalg.norm(command_TE3, axis=-1) >= 0.05
    kind_TE = np.where(moving_TE, np.argmax(np.abs(command_TE3), axis=-1), 3)
    errors = {
        "lin_vel": lin_err_TE,
        "ang_vel": ang_err_TE,
        "lin_vel_still": np.linalg.norm(command_TE3[..., :2], axis=-1),  # a robot standing still
        "ang_vel_still": np.abs(command_TE3[..., 2]),
    }
    out = {f"{k}_error": float(np.sum(v * live_TE) / max(live_TE.sum(), 1)) for k, v in errors.items()}
    for i, kind in enumerate(KINDS):
        mask_TE = live_TE & (kind_TE == i)
        for k in ("lin_vel", "ang_vel"):
            out[f"{k}_error_{kind}"] = float(np.sum(errors[k] * mask_TE) / mask_TE.sum()) if mask_TE.any() else math.nan
    return out


def summary_line(metrics: dict[str, float]) -> str:
    """`key=value` pairs, 4 significant digits."""
    return " ".join(f"{k}={v:.4g}" if not math.isnan(v) else f"{k}=nan" for k, v in metrics.items())
