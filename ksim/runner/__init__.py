"""The experiment runner: config and command line, run directories, checkpoints, training, eval and video.

A task file's whole `main` is `run(ConfigClass, make_task, __file__)` (`ksim.runner.main`).
"""

from ksim.runner.main import load_learner, resolve_config, run

__all__ = ["load_learner", "resolve_config", "run"]
