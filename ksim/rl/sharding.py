"""Data-parallel training: the env axis split over devices and processes with `jax.sharding`.

A `Cluster` is a 1-D mesh over the training devices of every process, with one axis, `envs`.
Env-batched state (the rollout) is split along it; the learner is replicated.

- **mjx:** the train step stays one jitted program. Its inputs are sharded, so XLA partitions
  the vmapped physics by env and turns every mean of the update (the loss over a minibatch,
  hence the gradients, and the observation statistics) into a cross-device reduction. The
  update is therefore the one-device update on the same global batch, up to float summation
  order.
- **mujoco:** the physics are host callbacks into a process's own `mujoco.batch`, which must
  only ever see that process's envs. The rollout half runs under `jax.shard_map` on an Env
  built for the local envs (one device per process); its results are global arrays again,
  and the update is the same SPMD program as on mjx.

Processes meet through `jax.distributed.initialize`; on CPUs their collectives go over gloo.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

ENVS = "envs"
# How long a process waits for a silent peer before the distributed runtime ends it: a dead
# process must not leave the others hanging in a collective.
HEARTBEAT_SECONDS = 10

T = TypeVar("T")


# launchers whose processes JAX's `initialize()` can find each other from alone
_LAUNCHER_SIZES = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


def launched_together() -> bool:
    """Whether a cluster launcher (SLURM, Open MPI) started several processes of this program."""
    return any(int(os.environ.get(name, "1") or 1) > 1 for name in _LAUNCHER_SIZES)


def connect(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Join a multi-process run (once per process, before any JAX computation).

    With no `coordinator`, JAX detects the cluster from its environment (e.g. SLURM) where it
    can; a lone process needs no call at all.
    """
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        heartbeat_timeout_seconds=HEARTBEAT_SECONDS,
    )


@dataclass(frozen=True)
class Cluster:
    """The devices that train together, as a mesh with one axis (`envs`)."""

    mesh: Mesh

    @property
    def num_devices(self) -> int:
        """Devices over all processes."""
        return int(self.mesh.devices.size)

    @property
    def num_processes(self) -> int:
        """Processes taking part."""
        return jax.process_count()

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run directory (process 0)."""
        return jax.process_index() == 0

    def anyone(self, flag: bool) -> bool:
        """Whether `flag` is set on any process (every process must call this at the same point).

        A stop that one process alone acts on leaves the others waiting in the next step's
        collectives (over a minute, measured, when it exits cleanly); agreeing first stops all.
        """
        if self.num_processes == 1:
            return flag
        return bool(np.any(multihost_utils.process_allgather(np.array(flag))))

    @property
    def envs(self) -> NamedSharding:
        """Split along the leading (env) axis."""
        return NamedSharding(self.mesh, P(ENVS))

    @property
    def replicated(self) -> NamedSharding:
        """A full copy on every device."""
        return NamedSharding(self.mesh, P())


def make_cluster(devices: int) -> Cluster:
    """The first `devices` local devices of every process (0: all of them), in process order."""
    per_process: dict[int, list[jax.Device]] = {}
    for d in jax.devices():
        per_process.setdefault(d.process_index, []).append(d)
    chosen = [d for p in sorted(per_process) for d in (per_process[p] if devices == 0 else per_process[p][:devices])]
    return Cluster(Mesh(np.array(chosen), (ENVS,)))


def _global(x: Any, sharding: NamedSharding) -> Any:
    # every process holds the same full value (a replicated tree) or computes it identically
    if not isinstance(x, jax.Array | np.ndarray):
        return x
    host = np.asarray(jax.random.key_data(x)) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else np.asarray(x)
    placed = jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(placed, impl=jax.random.key_impl(x))
    return placed


def replicate(cluster: Cluster, tree: T) -> T:
    """`tree` (the same on every process) as arrays copied onto every device of the cluster."""
    return jax.tree.map(lambda x: _global(x, cluster.replicated), tree)


def to_local(tree: T) -> T:
    """A replicated tree as this process's own single-device arrays (to save or to read on the host)."""
    return jax.tree.map(lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x, tree)


def sharded_init(cluster: Cluster, init: Callable[..., T], per_process: bool) -> Callable[..., T]:
    """`init(*replicated_args, rng)` building env-batched state, jitted to give it split over the cluster.

    `per_process`: `init` builds only this process's envs (the native backend), so it runs
    under `shard_map`, each device drawing its own randomness; else it builds them all and
    XLA places each device's share.
    """
    if not per_process:
        return jax.jit(init, out_shardings=cluster.envs)

    def local(*args: Any) -> T:
        *rest, rng = args
        return init(*rest, jax.random.fold_in(rng, jax.lax.axis_index(ENVS)))

    return jax.jit(jax.shard_map(local, mesh=cluster.mesh, in_specs=P(), out_specs=P(ENVS), check_vma=False))


def describe(cluster: Cluster, num_envs: int) -> str:
    """One line on how the envs are spread."""
    return (
        f"data-parallel: {num_envs} envs over {cluster.num_devices} devices in {cluster.num_processes} "
        f"process(es), {num_envs // cluster.num_devices} per device"
    )
