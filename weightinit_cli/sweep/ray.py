"""`winit sweep --backend ray`: the trials as Ray tasks, on a cluster or a local Ray.

Ray is an optional extra (`pip install 'weightinit-cli[ray]'`). `ray.init(address)`
joins a running cluster (the address, or $RAY_ADDRESS); with neither it starts a Ray
instance on this machine, with one CPU per job. The package itself travels with the
job (Ray's py_modules), so cluster nodes need only winit's dependencies.

At most one trial per CPU of the cluster (or `--jobs`) is in flight: what is submitted
is what runs, which makes "running" in the progress display true and lets a stop
request cancel the few running trials instead of a queue of thousands.

A driver killed with kill -9 takes a local instance with it: Ray ties the processes that
ray.init started to the driver (its trial workers end at once, its two agents within a
minute or two, once they miss their raylet), and the trials that were running are run
again on resume, as after any kill.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import WinitError

if TYPE_CHECKING:
    from .trial import TrialOutcome, TrialTask

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
    """A trial inside a Ray worker (a process that runs only trials), on one thread as
    local workers run them."""
    from ..parallel import one_thread_worker
    from .trial import run_trial

    one_thread_worker()
    return run_trial(task)


# An HTTP/2 client's connection preface and an empty SETTINGS frame (RFC 9113, 3.4):
# Ray's services speak gRPC, which answers with a SETTINGS frame of its own.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _check_reachable(address: str, option: str) -> None:
    """Fail fast where no Ray cluster can be: nothing listening, or something that does
    not speak gRPC (a web server, say). Ray itself retries either for minutes."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as conn:
            conn.sendall(HTTP2_PREFACE)
            conn.settimeout(5)
            reply = conn.recv(9)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise WinitError(f"{option} {address}: no Ray cluster answers there ({reason})") from None
    if len(reply) < 4 or reply[3] != 4:  # not a SETTINGS frame
        raise WinitError(
            f"{option} {address}: something answers there, but not a Ray cluster (it does "
            "not speak gRPC); give the address `ray start --head` printed"
        )


def _connect(ray: Any, address: str | None, jobs: int | None) -> None:
    """Join the cluster at `address` (or $RAY_ADDRESS), else start one on this machine."""
    import logging

    import weightinit_cli

    option = "--address"
    if address is None and os.environ.get("RAY_ADDRESS"):
        address, option = os.environ["RAY_ADDRESS"], "$RAY_ADDRESS"
    if address is not None:
        _check_reachable(address, option)
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
        from ..parallel import usable_cores

        options["num_cpus"] = jobs or usable_cores()
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address} ({option})" if address else "a local Ray instance"
        reason = " ".join(str(err).split())
        if address and not os.environ.get("RAY_AUTH_MODE"):
            # recent Ray (2.60) authenticates drivers by token; one given an address does not
            # look for one unless told to
            reason += "; if the cluster uses token authentication, set RAY_AUTH_MODE=token"
        raise WinitError(f"--backend ray: cannot start or join {where}: {reason}") from None


@contextmanager
def ray_cluster(address: str | None, jobs: int | None) -> Iterator[Any]:
    """Ray, connected (a local instance started if need be, and stopped at the end); one
    the caller has connected already (ray.init in Python) is used as it is, and left."""
    ray = import_ray()
    joined = ray.is_initialized()  # by the caller: theirs to end
    try:
        if not joined:
            _connect(ray, address, jobs)
        yield ray
    finally:
        if not joined:
            # also after a Ctrl-C halfway through starting a local instance, whose
            # processes would outlive winit otherwise; on a cluster, only disconnects
            ray.shutdown()


def check_cluster_gpus(ray: Any) -> None:
    """device: cuda trials each take a GPU; on a cluster without one they would wait
    forever."""
    if not ray.cluster_resources().get("GPU"):
        raise WinitError(
            "device: cuda was asked for, but the Ray cluster has no GPUs; use cpu or auto"
        )


def run_on_ray(
    ray: Any,
    tasks: Sequence[TrialTask],
    jobs: int | None,
    on_start: Callable[[int], None],
    on_done: Callable[[TrialOutcome], None],
    should_stop: Callable[[], bool],
) -> None:
    """Run the trials as Ray tasks, `on_done` for each as it finishes, in any order."""
    from .trial import failed_outcome

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
        if should_stop():
            # a terminal's Ctrl-C reaches local Ray workers too, and fails their trials:
            # those are interrupted, to run again, not failures
            continue
        for ref in ready:
            task = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as err:  # noqa: BLE001 -- a lost worker fails one trial
                outcome = failed_outcome(task, f"{type(err).__name__}: {err}")
            on_done(outcome)


__all__ = ["check_cluster_gpus", "import_ray", "ray_cluster", "run_on_ray"]
