"""Interactive viewer of the K-Bot standing task (SPEC §2).

    python -m examples.kbot.viz_standing                          # MJX physics, shipped policy
    python -m examples.kbot.viz_standing --physics-backend mujoco --pretrained <run dir>
    python -m examples.kbot.viz_standing --zero                   # hold the stance, no policy

Keys: Space pause · S suspend the base · Up/Down x · Right/Left y · P/L z · N one step · R reset.
On macOS start it with `mjpython` instead of `python`.
"""

import argparse
from pathlib import Path

import jax

from examples.kbot.standing import StandingConfig, make_task
from ksim.engine.env import Env
from ksim.runner import load_learner, resolve_config
from ksim.runner.evaluate import policy_act_fn
from ksim.utils.interactive.base import InteractiveVisualizerConfig
from ksim.utils.interactive.mujoco import MujocoInteractiveVisualizer

PRETRAINED = Path(__file__).parent / "pretrained" / "standing"


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and open the viewer."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--physics-backend", choices=("mjx", "mujoco"), default="mjx")
    parser.add_argument("--pretrained", default=str(PRETRAINED) if PRETRAINED.exists() else None)
    parser.add_argument("--checkpoint-num", type=int, default=None)
    parser.add_argument("--zero", action="store_true", help="zero actions (hold the stance) instead of a policy")
    parser.add_argument("--plot-path", default=InteractiveVisualizerConfig.plot_path)
    parser.add_argument("--status-path", default=None, help="write a JSON status snapshot every frame here")
    parser.add_argument("--max-seconds", type=float, default=None, help="close after this many seconds")
    args = parser.parse_args(argv)

    pretrained = None if args.zero else args.pretrained
    overrides = [f"pretrained={pretrained}"] if pretrained else []
    if pretrained and args.checkpoint_num is not None:
        overrides.append(f"checkpoint_num={args.checkpoint_num}")
    cfg = resolve_config(StandingConfig, [*overrides, f"physics_backend={args.physics_backend}"])
    viz_cfg = InteractiveVisualizerConfig(
        physics_backend=args.physics_backend,
        plot_path=args.plot_path,
        status_path=args.status_path,
        max_seconds=args.max_seconds,
    )

    def make_act(env: Env):
        if pretrained is None:
            return None
        learner, path = load_learner(env, cfg)
        print(f"policy: {path}")
        act_fn, carry0 = policy_act_fn(learner, True, env.model.nu)
        return jax.jit(lambda obs, rng: act_fn(obs, carry0[None], rng)[0])

    MujocoInteractiveVisualizer(viz_cfg, make_task(cfg), make_act).run()


if __name__ == "__main__":
    main()
