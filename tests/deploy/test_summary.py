"""The eval summary's tracking errors: per step, per command kind, and averaged over a gait cycle."""

import numpy as np

from ksim.deploy import summary

CTRL_DT = 0.02


def _swaying(command_3: np.ndarray, amplitude: float, num_steps: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """One env holding a command whose yaw rate sways by ±amplitude at one cycle per CYCLE_SECONDS."""
    t_T = np.arange(num_steps) * CTRL_DT
    command_TE3 = np.broadcast_to(command_3, (num_steps, 1, 3)).copy()
    error_TE3 = np.zeros_like(command_TE3)
    error_TE3[:, 0, 2] = amplitude * np.sin(2 * np.pi * t_T / summary.CYCLE_SECONDS)
    return command_TE3, error_TE3


def test_a_sway_about_the_command_counts_per_step_but_not_over_a_cycle():
    command_TE3, error_TE3 = _swaying(np.array([0.0, 0.0, 0.5]), amplitude=0.3)
    live_TE = np.ones(command_TE3.shape[:2], bool)
    m = summary.tracking(command_TE3, error_TE3, live_TE, CTRL_DT)
    assert abs(m["ang_vel_error"] - 0.3 * 2 / np.pi) < 0.01  # the mean |sine|
    assert m["ang_vel_cycle_error"] < 0.01
    assert m["ang_vel_error_turning"] == m["ang_vel_error"] and np.isnan(m["ang_vel_error_forward"])
    # a steady miss counts both ways
    m = summary.tracking(command_TE3, error_TE3 + np.array([0.1, 0.0, 0.2]), live_TE, CTRL_DT)
    assert abs(m["ang_vel_cycle_error"] - 0.2) < 0.01 and abs(m["lin_vel_cycle_error"] - 0.1) < 1e-6
    assert np.isnan(m["yaw_rate_still"])  # no still steps


def test_a_spin_on_still_commands_reads_signed():
    command_TE3 = np.zeros((100, 2, 3))
    command_TE3[50:, :, 2] = 0.5  # still for 1 s, then told to turn
    yaw_rate_TE = np.where(np.arange(100)[:, None] < 50, np.array([-0.3, -0.1]), 0.5)
    error_TE3 = np.zeros_like(command_TE3)
    error_TE3[..., 2] = command_TE3[..., 2] - yaw_rate_TE
    m = summary.tracking(command_TE3, error_TE3, np.ones((100, 2), bool), CTRL_DT)
    assert abs(m["yaw_rate_still"] + 0.2) < 1e-9 and abs(m["ang_vel_error_still"] - 0.2) < 1e-9


def test_cycle_windows_hold_one_command_and_stay_inside_the_first_episode():
    command_TE3, error_TE3 = _swaying(np.array([0.5, 0.0, 0.0]), amplitude=0.0)
    command_TE3[100:, 0, 0] = 0.2  # a new command: the robot lags it by 0.3 m/s for 10 steps
    error_TE3[100:110, 0, 0] = 0.3
    live_TE = np.ones(command_TE3.shape[:2], bool)
    live_TE[150:] = False  # the episode ended; what follows is another episode's
    error_TE3[150:, 0, 0] = 5.0
    width = round(summary.CYCLE_SECONDS / CTRL_DT)
    _, whole_TE = summary._window_mean(command_TE3, error_TE3, live_TE, width)
    half = width // 2
    assert whole_TE[half : 100 - half, 0].all() and not whole_TE[100 - half : 100 + half, 0].any()
    assert whole_TE[100 + half : 150 - half, 0].all() and not whole_TE[150 - half :, 0].any()
    m = summary.tracking(command_TE3, error_TE3, live_TE, CTRL_DT)
    # only windows wholly after the lag would read 0; those holding part of it read at most 0.3·10/width
    assert 0 < m["lin_vel_cycle_error"] <= 0.3 * 10 / width + 1e-6
    assert abs(m["lin_vel_error"] - 0.3 * 10 / 150) < 1e-9


def test_gait_counts_flight_steps_and_foot_speed_told_to_stand_or_to_move():
    num_steps = 100
    command_TE3 = np.zeros((num_steps, 1, 3))
    command_TE3[50:, 0, 0] = 0.5  # stand for 1 s, then walk
    contact_TEF = np.ones((num_steps, 1, 2))
    contact_TEF[60:65, 0, :] = 0.0  # both feet up for 5 steps
    foot_xy_TEF2 = np.zeros((num_steps, 1, 2, 2))
    foot_xy_TEF2[50:, 0, :, 0] = 0.01 * np.arange(num_steps - 50)[:, None]  # 0.5 m/s while walking
    live_TE = np.ones((num_steps, 1), bool)
    live_TE[90:] = False  # the episode ended at step 89; the next one's feet jump back
    foot_xy_TEF2[90:] = 0.0
    m = summary.gait(contact_TEF, foot_xy_TEF2, command_TE3, live_TE, CTRL_DT)
    assert abs(m["feet_airborne"] - 5 / 90) < 1e-9
    assert m["feet_speed_still"] == 0.0
    assert abs(m["feet_speed_moving"] - 0.5) < 1e-9  # the jump back at the reset is not counted
