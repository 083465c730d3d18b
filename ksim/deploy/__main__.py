"""`python -m ksim.deploy <export folder>`: run an exported policy in plain MuJoCo, without JAX.

Ends with the same `key=value` summary line as `action=eval` (survival, episode length and,
when the policy follows velocity commands, the tracking errors).
"""

import argparse
import math
import sys
from pathlib import Path

import mujoco
import numpy as np

from ksim.deploy import summary
from ksim.deploy.runtime import OnnxPolicy, Robot, load_metadata


def evaluate(
    folder: Path,
    episodes: int,
    seconds: float,
    push_velocity: float | None = None,
    seed: int = 0,
    as_trained: bool = True,
    log: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> dict[str, float]:
    """Survival and tracking over `episodes` episodes of up to `seconds`, one after another.

    `log`, if given, receives every step's (observation, carry, action).
    """
    meta = load_metadata(folder)
    model = mujoco.MjModel.from_binary_path(str(folder / "model.mjb"))
    policy = OnnxPolicy(folder, meta)
    robot = Robot(model, meta, np.random.default_rng(seed), as_trained)
    num_steps = math.ceil(seconds / meta["ctrl_dt"])
    names = [t["name"] for t in meta["terminations"]]
    failures = {t["name"] for t in meta["terminations"] if t["kind"] == "failure"}
    done_TE = np.zeros((num_steps, episodes), bool)
    terminated_TE = np.zeros_like(done_TE)
    reasons = {name: np.zeros_like(done_TE) for name in names}
    velocity = meta["commands"].get("velocity", {}).get("kind") == "velocity" and robot.base_dof is not None
    command_TE3 = np.zeros((num_steps, episodes, 3))
    error_TE3 = np.zeros((num_steps, episodes, 3))
    for e in range(episodes):
        episode = robot.reset(policy.initial_carry)
        for t in range(num_steps):
            if velocity:  # the command against the velocity at the start of the step, as action=eval measures
                command_TE3[t, e] = episode.commands["velocity"]
                error_TE3[t, e] = robot.velocity_error(episode.commands["velocity"])
            obs, carry = robot.observe(episode), episode.carry
            action, episode.carry = policy(obs, carry)
            if log is not None:
                log.append((obs, carry, action))
            robot.step(episode, action, push_velocity)
            for name, hit in episode.reasons.items():
                reasons[name][t, e] = hit
            terminated_TE[t, e] = any(episode.reasons[n] for n in failures)
            done_TE[t, e] = any(episode.reasons.values())
            if done_TE[t, e]:
                break
            robot.advance_commands(episode, meta["ctrl_dt"])
        print(f"\repisode {e + 1}/{episodes}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    metrics = summary.survival(done_TE, terminated_TE, reasons, meta["ctrl_dt"])
    if velocity:
        metrics |= summary.tracking(command_TE3, error_TE3, summary.live_steps(done_TE), meta["ctrl_dt"])
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the episodes and print the summary line."""
    parser = argparse.ArgumentParser(prog="python -m ksim.deploy", description=__doc__)
    parser.add_argument("folder", type=Path, help="an export folder (policy.onnx, model.mjb, metadata.json)")
    parser.add_argument("--episodes", type=int, default=16, help="episodes to run (default 16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each episode (s, default 10)")
    parser.add_argument("--push-velocity", type=float, default=None, help="push size (m/s); default: the training's")
    parser.add_argument("--seed", type=int, default=0, help="random seed (resets, commands, pushes)")
    parser.add_argument(
        "--ideal",
        action="store_true",
        help="leave out the noise, latency and randomised masses/friction that training (and action=eval) simulate",
    )
    args = parser.parse_args(argv)
    if args.episodes < 1 or not args.seconds > 0 or (args.push_velocity is not None and args.push_velocity < 0):
        parser.error("--episodes must be >= 1, --seconds > 0 and --push-velocity >= 0")
    try:
        metrics = evaluate(args.folder, args.episodes, args.seconds, args.push_velocity, args.seed, not args.ideal)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"policy=onnx backend=mujoco-cpu {summary.summary_line(metrics)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
