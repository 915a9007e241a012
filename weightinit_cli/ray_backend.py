"""`winit sweep --backend ray`: the trials as Ray tasks, on a cluster or a local Ray.

Ray is an optional extra (`pip install 'weightinit-cli[ray]'`). `ray.init(address)`
joins a running cluster (the address, or $RAY_ADDRESS); with neither it starts a Ray
instance on this machine, with one CPU per job. The package itself travels with the
job (Ray's py_modules), so cluster nodes need only winit's dependencies.

At most one trial per CPU of the cluster (or `--jobs`) is in flight: what is submitted
is what runs, which makes "running" in the progress display true and lets a stop
request cancel the few running trials instead of a queue of thousands.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WinitError

if TYPE_CHECKING:
    from .sweep import TrialOutcome, TrialTask

INSTALL_HINT = "pip install 'weightinit-cli[ray]'"


def import_ray() -> Any:
    """The ray module, or a WinitError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise WinitError(
            f"--backend ray needs Ray, an optional extra: {INSTALL_HINT} (in a checkout: "
            "pip install -e '.[ray]'), or use --backend local"
        ) from None
    return ray


def _trial_on_one_thread(task: TrialTask) -> TrialOutcome:
    """A trial inside a Ray worker: one torch thread and one fill thread, as locally."""
    os.environ["WINIT_INIT_THREADS"] = "1"
    from .parallel import one_torch_thread
    from .sweep import run_trial

    with one_torch_thread():
        return run_trial(task)


def _check_reachable(address: str) -> None:
    """Fail fast on an address nothing answers at (Ray itself retries for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise WinitError(f"--address {address}: no Ray cluster answers there ({reason})") from None


def _connect(ray: Any, address: str | None, jobs: int | None) -> bool:
    """Join the cluster at `address` (or $RAY_ADDRESS), else start one; True if started."""
    import logging

    import weightinit_cli

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        _check_reachable(address)
    options: dict[str, Any] = {
        "address": address,
        "include_dashboard": False,
        "log_to_driver": False,
        # a local instance's start-up warnings (its auth token, its /dev/shm) are about a
        # cluster nobody else uses; a real cluster's are worth seeing
        "logging_level": logging.ERROR if address is None else logging.WARNING,
        "runtime_env": {"py_modules": [str(Path(weightinit_cli.__file__).parent)]},
    }
    if address is None:
        from .parallel import usable_cores

        options["num_cpus"] = jobs or usable_cores()
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        reason = " ".join(str(err).split())
        raise WinitError(f"--backend ray: cannot start or join {where}: {reason}") from None
    return address is None


@contextmanager
def ray_cluster(address: str | None, jobs: int | None) -> Iterator[Any]:
    """Ray, connected (a local instance started if need be, and stopped at the end)."""
    ray = import_ray()
    started = _connect(ray, address, jobs)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def run_on_ray(
    ray: Any,
    tasks: Sequence[TrialTask],
    jobs: int | None,
    on_start: Callable[[int], None],
    on_done: Callable[[TrialOutcome], None],
    should_stop: Callable[[], bool],
) -> None:
    """Run the trials as Ray tasks, `on_done` for each as it finishes, in any order."""
    from .sweep import failed_outcome

    gpus = 1 if any(t.config.device == "cuda" for t in tasks) else 0
    remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_trial_on_one_thread)
    capacity = jobs or max(1, int(ray.cluster_resources().get("CPU", 1)))
    pending: dict[Any, TrialTask] = {}
    queue = list(tasks)
    while queue or pending:
        if should_stop():
            for ref in pending:
                ray.cancel(ref)
            return
        while queue and len(pending) < capacity:
            task = queue.pop(0)
            pending[remote.remote(task)] = task
            on_start(task.index)
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.25)
        for ref in ready:
            task = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as err:  # noqa: BLE001 -- a lost worker fails one trial
                outcome = failed_outcome(task, f"{type(err).__name__}: {err}")
            on_done(outcome)


__all__ = ["import_ray", "ray_cluster", "run_on_ray"]
