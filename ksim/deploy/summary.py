"""Episode statistics from recorded (T, E) arrays, shared by `action=eval` and `ksim.deploy` (numpy only)."""

import math

import numpy as np

KINDS = ("forward", "sideways", "turning", "still")
STILL_COMMAND = 0.05  # a command below this norm asks to stand still (tracking's `still` kind, gait's still steps)
CYCLE_SECONDS = 0.7  # the cycle errors' window: one stride of a walking humanoid (K-Bot's gait clock: 1.4-1.8 Hz)


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


def tracking(command_TE3: np.ndarray, error_TE3: np.ndarray, live_TE: np.ndarray, ctrl_dt: float) -> dict[str, float]:
    """Mean tracking errors, overall and per command kind, beside those of a robot that stands still.

    `error_TE3` is the command minus the base velocity (vx, vy, wz) in the base frame. A step's
    kind is `still` when its command is below `STILL_COMMAND` in norm, else the largest of |vx| (forward),
    |vy| (sideways) and |wz| (turning). The `cycle` errors are those of the velocity averaged over
    `CYCLE_SECONDS` (about one gait cycle), so the sway of each step does not count: they tell
    "does not follow" from "sways while following". `yaw_rate_still` is the mean signed yaw rate
    of the base on still steps.
    """
    moving_TE = np.linalg.norm(command_TE3, axis=-1) >= STILL_COMMAND
    kind_TE = np.where(moving_TE, np.argmax(np.abs(command_TE3), axis=-1), 3)
    errors = {
        "lin_vel": np.linalg.norm(error_TE3[..., :2], axis=-1),
        "ang_vel": np.abs(error_TE3[..., 2]),
        "lin_vel_still": np.linalg.norm(command_TE3[..., :2], axis=-1),  # a robot standing still
        "ang_vel_still": np.abs(command_TE3[..., 2]),
    }
    out = {f"{k}_error": _mean(v, live_TE) for k, v in errors.items()}
    for i, kind in enumerate(KINDS):
        for k in ("lin_vel", "ang_vel"):
            out[f"{k}_error_{kind}"] = _mean(errors[k], live_TE & (kind_TE == i))
    # signed: a policy that breaks left/right symmetry turns one way whatever it is told (0 if symmetric)
    out["yaw_rate_still"] = _mean(command_TE3[..., 2] - error_TE3[..., 2], live_TE & ~moving_TE)
    mean_error_TE3, window_TE = _window_mean(command_TE3, error_TE3, live_TE, round(CYCLE_SECONDS / ctrl_dt))
    out["lin_vel_cycle_error"] = _mean(np.linalg.norm(mean_error_TE3[..., :2], axis=-1), window_TE)
    out["ang_vel_cycle_error"] = _mean(np.abs(mean_error_TE3[..., 2]), window_TE)
    return out


def gait(
    contact_TEF: np.ndarray, foot_xy_TEF2: np.ndarray, command_TE3: np.ndarray, live_TE: np.ndarray, ctrl_dt: float
) -> dict[str, float]:
    """How the feet move: the share of steps with every foot in the air, and their speed told to stand or to move.

    `contact_TEF` flags each foot's ground contact and `foot_xy_TEF2` is its horizontal world
    position at the start of each step. A step's foot speed is the mean over feet of the distance
    to the next step's position over `ctrl_dt`, on steps whose next step is in the same (first)
    episode. Still steps are those whose command is below `STILL_COMMAND` in norm.
    """
    airborne_TE = ~np.any(contact_TEF > 0.5, axis=-1)
    speed_TE = np.linalg.norm(np.diff(foot_xy_TEF2, axis=0), axis=-1).mean(axis=-1) / ctrl_dt
    paired_TE = live_TE[1:]  # live is a prefix of each env's steps: step t's successor is live iff t did not end it
    still_TE = np.linalg.norm(command_TE3[:-1], axis=-1) < STILL_COMMAND
    return {
        "feet_airborne": _mean(airborne_TE, live_TE),
        "feet_speed_still": _mean(speed_TE, paired_TE & still_TE),
        "feet_speed_moving": _mean(speed_TE, paired_TE & ~still_TE),
    }


def _mean(value_TE: np.ndarray, mask_TE: np.ndarray) -> float:
    return float(np.sum(value_TE * mask_TE) / mask_TE.sum()) if mask_TE.any() else math.nan


def _window_mean(
    command_TE3: np.ndarray, error_TE3: np.ndarray, live_TE: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The error averaged over the window of 2·(width // 2) + 1 steps centred on each step, and where it is whole.

    A window is whole when it lies inside the env's first episode and holds one command, so the
    mean error is the command minus the mean velocity.
    """
    half = max(width // 2, 1)
    num_steps = error_TE3.shape[0]
    cum_TE3 = np.concatenate([np.zeros_like(error_TE3[:1]), np.cumsum(error_TE3, axis=0)])
    changed_TE = np.concatenate([np.zeros_like(live_TE[:1]), np.any(np.diff(command_TE3, axis=0) != 0, axis=-1)])
    changes_TE = np.concatenate([np.zeros_like(changed_TE[:1], int), np.cumsum(changed_TE, axis=0)])
    t = np.arange(half, num_steps - half)  # centres of windows [t - half, t + half]
    mean_TE3 = np.zeros_like(error_TE3)
    whole_TE = np.zeros_like(live_TE)
    mean_TE3[t] = (cum_TE3[t + half + 1] - cum_TE3[t - half]) / (2 * half + 1)
    # live is a prefix of each env's steps, so the window's last step decides; no command change inside
    whole_TE[t] = live_TE[t + half] & (changes_TE[t + half + 1] - changes_TE[t - half + 1] == 0)
    return mean_TE3, whole_TE


def summary_line(metrics: dict[str, float]) -> str:
    """`key=value` pairs, 4 significant digits."""
    return " ".join(f"{k}={v:.4g}" if not math.isnan(v) else f"{k}=nan" for k, v in metrics.items())
