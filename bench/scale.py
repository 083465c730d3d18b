"""Data-parallel scaling: K-Bot standing trained by 1 and by N processes, one CPU core each.

    python -m bench.scale processes=1,2 envs_per_process=256 iterations=12

Each process is pinned to its own core (`taskset`), steps its envs with `nthread=1`, and
joins the others through `jax.distributed` on localhost (gloo collectives). The global
batch grows with the processes (weak scaling): `envs_per_process` envs each. It reports
process 0's training env-steps/s (all processes' envs), median over the iterations after
the first two (compiling, warming), and that per process against the 1-process run.

With `agreement_calls=N` it also times the per-iteration stop agreement (`Cluster.anyone`,
one 1-byte allgather) between two pinned processes: the median of N calls.
"""

import re
import socket
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from ksim.config import opt
from ksim.runner.cli import command_line

RATE = re.compile(r"\| ([\d.]+)(k?)/s \|")


@dataclass(kw_only=True)
class ScaleBenchConfig:
    """What to measure."""

    processes: tuple[int, ...] = opt((1, 2), "process counts to measure, e.g. 1,2", ge=1)
    envs_per_process: int = opt(256, "envs each process steps", ge=1)
    iterations: int = opt(12, "training iterations per run (the first two are not timed)", ge=3)
    agreement_calls: int = opt(0, "also time this many stop agreements between two processes (0: skip)", ge=0)


# each of two processes: join, then time `Cluster.anyone` calls (the first ten warm the collective up)
_AGREEMENT = """
import statistics, sys, time
from ksim.rl.sharding import connect, make_cluster
connect(sys.argv[1], 2, int(sys.argv[2]))
cluster, times = make_cluster(1), []
for _ in range(10 + int(sys.argv[3])):
    start = time.perf_counter()
    cluster.anyone(False)
    times.append(time.perf_counter() - start)
print(statistics.median(times[10:]))
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_pinned(commands: list[list[str]]) -> list[str]:
    """Run `python <command i>` pinned to core i, all at once; their outputs, or raise with process 0's."""
    procs = [
        subprocess.Popen(
            ["taskset", "-c", str(i), sys.executable, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, command in enumerate(commands)
    ]
    outputs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(outputs[0][-2000:])
    return outputs


def measure(processes: int, envs_per_process: int, iterations: int) -> float:
    """Median training env-steps/s (all envs) of one run with `processes` pinned processes."""
    root = tempfile.mkdtemp(prefix="ksim-scale-")
    common = [
        f"num_envs={processes * envs_per_process}",
        "nthread=1",
        f"max_steps={iterations}",
        f"run_root={root}",
        "video_every_iters=0",
        "physics_backend=mujoco",
    ]
    if processes > 1:
        common += [f"coordinator=127.0.0.1:{_port()}", f"num_processes={processes}"]
    outputs = _run_pinned(
        [
            ["-m", "examples.kbot.standing", *common] + ([f"process_id={i}"] if processes > 1 else [])
            for i in range(processes)
        ]
    )
    rates = [float(v) * (1000 if k else 1) for v, k in RATE.findall(outputs[0])]
    return statistics.median(rates[2:])


def agreement_seconds(calls: int) -> float:
    """Median seconds of one stop agreement (`Cluster.anyone`) between two pinned processes."""
    address = f"127.0.0.1:{_port()}"
    outputs = _run_pinned([["-c", _AGREEMENT, address, str(i), str(calls)] for i in range(2)])
    return float(outputs[0].split()[-1])


def main() -> None:
    """Print a markdown table of env-steps/s against the process count."""
    args = command_line(ScaleBenchConfig, sys.argv[1:], "python -m bench.scale")
    print("| processes | envs (total) | env-steps/s total | per process | efficiency |")
    print("|---|---|---|---|---|")
    base = None
    for n in args.processes:
        rate = measure(n, args.envs_per_process, args.iterations)
        base = base or rate / n
        print(f"| {n} | {n * args.envs_per_process} | {rate:,.0f} | {rate / n:,.0f} | {rate / n / base:.0%} |")
    if args.agreement_calls:
        ms = 1000 * agreement_seconds(args.agreement_calls)
        print(f"stop agreement (Cluster.anyone), 2 processes: median {ms:.2f} ms per call over {args.agreement_calls}")


if __name__ == "__main__":
    main()
