"""Running an exported policy without JAX: plain `mujoco` steps the model, onnxruntime runs the policy.

`python -m ksim.deploy <export folder>` is the reference for a robot's runtime: it builds the
observations and the joint targets from `metadata.json` alone. Nothing under `ksim.deploy`
imports JAX, and `ksim.deploy.summary` is shared with `action=eval` so both print the same line.
"""
