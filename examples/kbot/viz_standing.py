"""Interactive viewer of the K-Bot standing task (SPEC §2).

    python -m examples.kbot.viz_standing                          # MJX physics, shipped policy
    python -m examples.kbot.viz_standing --physics-backend mujoco pretrained=<run dir>
    python -m examples.kbot.viz_standing policy=zero              # hold the stance, no policy

Keys: Space pause · S suspend the base · Up/Down x · Right/Left y · P/L z · N one step · R reset.
On macOS start it with `mjpython` instead of `python`.
"""

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.kbot.standing import StandingConfig, make_task
from ksim.config import opt
from ksim.engine.env import Env
from ksim.engine.rollout import Policy
from ksim.runner.cli import command_line
from ksim.runner.main import module_name, policy_for, resolve_config
from ksim.utils.interactive.base import InteractiveVisualizerConfig
from ksim.utils.interactive.mujoco import MujocoInteractiveVisualizer

PRETRAINED = str(Path(__file__).parent / "pretrained" / "standing")


@dataclass(kw_only=True)
class StandingViewerConfig(InteractiveVisualizerConfig):
    """The K-Bot standing task in MuJoCo's viewer, driven by a policy or by zero actions."""

    pretrained: str | None = opt(PRETRAINED)


def main(argv: list[str] | None = None) -> None:
    """Parse `key=value` settings and open the viewer."""
    viz = command_line(
        StandingViewerConfig, sys.argv[1:] if argv is None else argv, f"python -m {module_name(__file__)}"
    )
    trained = viz.policy == "trained" and bool(viz.pretrained)
    overrides = [f"pretrained={viz.pretrained}"] if trained else []
    overrides += [f"checkpoint_num={viz.checkpoint_num}"] if trained and viz.checkpoint_num is not None else []
    cfg = resolve_config(StandingConfig, [*overrides, f"physics_backend={viz.physics_backend}"])
    cfg.policy = "trained" if trained else "zero"

    def make_policy(env: Env) -> tuple[Policy, Any]:
        policy, params, name = policy_for(env, cfg)
        print(f"policy: {name}")
        return policy, params

    MujocoInteractiveVisualizer(viz, make_task(cfg), make_policy).run()


if __name__ == "__main__":
    main()
