"""Run independent experiments in forked worker processes, one torch thread each.

compare's methods share nothing but their inputs, so on a machine with several cores
they run side by side. Workers are forked, so the dataset and the imported torch are
shared copy-on-write instead of pickled or re-imported. Each worker runs on one torch
thread, and so does the sequential path: conv kernels on CPU can round differently
with another thread count, and a result must not depend on how it was scheduled.

Each worker has two pipes of its own, made just before it is forked: one for what it
sends (log points and results, handled in the parent, which owns the run directory and
the progress display), one for the index of its next task, which the parent hands out in
order. No lock is shared between processes, so a worker killed at any moment (the
out-of-memory killer, say) blocks nobody: only the worker holds its sending end, so its
death is an end of file in the parent, even half-way through a message. A stop request
(Ctrl-C, SIGTERM) in the parent sets a shared flag (a plain byte, read without a lock)
that the workers poll between steps; workers ignore the signals themselves, so the
parent decides.

A worker dies with its parent, however the parent ends (kill -9 included): the kernel
kills it when the parent exits (Linux's parent-death signal), and a watchdog thread in
the worker notices within a second where that is not available. Otherwise a worker whose
parent was killed could wait forever to hand a result to a pipe nobody reads, holding
what the parent held (a sweep's lock among them).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .errors import WinitError


class WorkersLost(WinitError):
    """Every worker process has exited (one killed, say) with tasks left unfinished.

    `lost`: the tasks a worker took and never finished (those it died in).
    """

    def __init__(self, message: str, lost: list[int]) -> None:
        super().__init__(message, exit_code=1)
        self.lost = lost

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.lost))


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block on one torch intra-op thread, then restore the previous count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def usable_cores() -> int:
    """The cores this process may run on (its affinity, where the system has one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def one_thread_worker() -> None:
    """Make this worker process compute on one torch thread (one worker, one core; and a
    result must not depend on the thread count)."""
    import torch

    torch.set_num_threads(1)


def default_jobs(tasks: int) -> int:
    """One worker per task when there are several cores (up to 4 per core), else none.

    Single-threaded workers share cores fairly, so 3 methods on 2 cores finish in about
    1.5 method-times as 3 workers, against 2 as 2 workers taking turns.
    """
    cores = usable_cores()
    return 1 if cores < 2 else max(1, min(tasks, 4 * cores))


PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent exits
PARENT_POLL_SECONDS = 0.25  # how often the watchdog looks for the parent


def _kill_me_with_parent() -> bool:
    """Ask Linux for SIGKILL when the parent exits; whether it agreed. (SIGKILL, as the
    workers ignore SIGTERM; they write no files, so nothing is left half-written.)"""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    """End this process as soon as `parent` is no longer its parent, from a thread of its
    own: the main thread may be blocked in a pipe write that waits for a reader that is
    gone."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def die_with_parent(parent: int) -> None:
    """Make this (forked) process end when `parent` does, even if it is blocked."""
    _kill_me_with_parent()
    # also where the kernel agreed: its signal follows the thread that forked us, and a
    # parent that died before the prctl call sent nothing
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


STOP_POLL_SECONDS = 0.1  # how often the parent looks for a stop request
JOIN_SECONDS = 2.0  # how long workers get to leave after the run, before they are killed


@dataclass
class _Worker:
    """A worker process, the parent's ends of its pipes, and the task it is running."""

    process: Any
    messages: Any  # what the worker sends: ("ready" | "log" | "done" | ..., index, payload)
    orders: Any  # what the parent sends: the index of its next task, or None to leave
    task: int | None = None


def _outcome(task: Callable[..., Any], index: int, log: Any, should_stop: Any) -> Any:
    """The pickled message that ends task `index`: its result, its user error or its crash.
    Pickled here, so that a result that cannot be pickled is reported as the bug it is."""
    from multiprocessing.reduction import ForkingPickler

    try:
        message = ("done", index, task(index, log, should_stop))
    except WinitError as err:
        message = ("user_error", index, err)
    except BaseException as err:  # a bug: report it in the parent, with its type
        message = ("crash", index, f"{type(err).__name__}: {err}")
    try:
        return ForkingPickler.dumps(message)
    except Exception as err:  # noqa: BLE001 -- anything pickle raises
        return ForkingPickler.dumps(("crash", index, f"{type(err).__name__}: {err}"))


def _worker(
    task: Callable[..., Any],
    messages: Any,
    orders: Any,
    inherited: list[Any],
    stop: Any,
    parent: int,
) -> None:
    die_with_parent(parent)
    # the parent's ends of our pipes and of earlier workers' (a fork copies them all):
    # while we held a copy, a worker would not see the parent close its orders and leave
    # (the workers' own ends the parent closes as each starts, so none of us has those)
    for connection in inherited:
        connection.close()
    one_thread_worker()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def should_stop() -> bool:
        return bool(stop.value) or os.getppid() != parent

    try:
        messages.send(("ready", None, None))
        while (index := orders.recv()) is not None:
            log = lambda point, i=index: messages.send(("log", i, point))  # noqa: E731
            messages.send_bytes(_outcome(task, index, log, should_stop))
    except (EOFError, OSError):
        pass  # the parent closed our pipes: it wants nothing more


def _start_worker(
    context: Any, task: Callable[..., Any], workers: list[_Worker], stop: Any
) -> _Worker:
    """Fork one more worker, with pipes of its own."""
    messages, messages_end = context.Pipe(duplex=False)  # (the reading end, the writing end)
    orders_end, orders = context.Pipe(duplex=False)
    inherited = [c for w in workers for c in (w.messages, w.orders)] + [messages, orders]
    process = context.Process(
        target=_worker, args=(task, messages_end, orders_end, inherited, stop, os.getpid())
    )
    try:
        process.start()
    finally:  # the worker's ends are its own: its death closes the last copy
        messages_end.close()
        orders_end.close()
    return _Worker(process, messages, orders)


class _Dispatch:
    """The parent's side of a run: hands out task indices in order, keeps the results,
    and notes the tasks of workers that are gone."""

    def __init__(self, count: int, on_log: Any, on_done: Any) -> None:
        self.pending = deque(range(count))  # handed out from the front: in index order
        self.results: list[Any] = [None] * count
        self.finished: set[int] = set()
        self.lost: list[int] = []  # tasks a worker took and never finished
        self.working: list[_Worker] = []  # workers not yet sent away, nor gone
        self.stopping = False
        self.on_log, self.on_done = on_log, on_done

    def gone(self, worker: _Worker) -> None:
        self.working.remove(worker)
        if worker.task is not None:
            self.lost.append(worker.task)

    def hand_out(self, worker: _Worker) -> None:
        """Send `worker` (which waits for it) its next task, or away if there is none."""
        following = self.pending.popleft() if self.pending and not self.stopping else None
        try:
            worker.orders.send(following)
        except OSError:  # it died before it could read it
            if following is not None:
                self.pending.appendleft(following)
            self.gone(worker)
            return
        worker.task = following
        if following is None:
            self.working.remove(worker)

    def receive(self, worker: _Worker) -> None:
        """Handle the next message of `worker`, whose pipe has one (or an end of file)."""
        try:
            kind, index, payload = worker.messages.recv()
        except (EOFError, OSError):  # its end closed: it died, maybe half-way into a message
            self.gone(worker)
            return
        if kind == "log":
            if self.on_log is not None:
                self.on_log(index, payload)
            return
        if kind == "user_error":
            raise payload
        if kind == "crash":
            raise RuntimeError(f"a worker process failed: {payload}")
        if kind == "done":
            self.results[index] = payload
            self.finished.add(index)
            worker.task = None
        self.hand_out(worker)  # before on_done, which may take a while (writing files)
        if kind == "done" and self.on_done is not None:
            self.on_done(index, payload)


def run_parallel(
    task: Callable[[int, Callable[[Any], None], Callable[[], bool]], Any],
    count: int,
    jobs: int,
    on_log: Callable[[int, Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """[task(i, log, stop) for i in range(count)] on `jobs` forked workers, in order;
    `on_done(i, result)` as each finishes.

    A task that was never started because of a stop request gives None. A worker that dies
    (killed, say) loses the task it was running; the others go on with the rest, and
    WorkersLost is raised once they are done.
    """
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("fork")
    stop = context.RawValue("b", 0)  # no lock: a worker killed holding one would block us
    run = _Dispatch(count, on_log, on_done)
    workers: list[_Worker] = []
    try:
        for _ in range(min(jobs, count)):
            workers.append(_start_worker(context, task, workers, stop))
        run.working = list(workers)
        while run.working:
            if not run.stopping and should_stop is not None and should_stop():
                run.stopping = True
                stop.value = 1
            pipes = {w.messages: w for w in run.working}
            exits = {w.process.sentinel: w for w in run.working}
            ready = wait([*pipes, *exits], timeout=STOP_POLL_SECONDS)
            for worker in [pipes[r] for r in ready if r in pipes]:
                run.receive(worker)
            for worker in [exits[r] for r in ready if r in exits]:
                if worker in run.working and worker.messages not in ready:
                    run.gone(worker)  # it exited, and left nothing unread
    finally:
        stop.value = 1
        _stop_and_join(workers)
    if len(run.finished) < count and not run.stopping:
        codes = [w.process.exitcode for w in workers]
        raise WorkersLost(
            f"worker processes exited with {count - len(run.finished)} tasks unfinished "
            f"(exit codes {codes}; -9 is a kill, often for lack of memory)",
            sorted(run.lost),
        )
    return run.results


def _stop_and_join(workers: list[_Worker], timeout: float = JOIN_SECONDS) -> None:
    """Close the parent's ends of the pipes, so that a worker waiting for its next task
    or handing over a result nobody will read leaves at once; give the others (told to
    stop) `timeout` seconds to end their task, then kill them: they write no files."""
    for worker in workers:
        worker.messages.close()
        worker.orders.close()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=5)


def run_sequential(
    task: Callable[[int, Callable[[Any], None], Callable[[], bool]], Any],
    count: int,
    on_log: Callable[[int, Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """The same as run_parallel, in this process, on one torch thread."""
    stop = should_stop or (lambda: False)
    results: list[Any] = [None] * count
    with one_torch_thread():
        for index in range(count):
            if stop():
                break
            log = (lambda point, i=index: on_log(i, point)) if on_log else (lambda point: None)
            results[index] = task(index, log, stop)
            if on_done is not None:
                on_done(index, results[index])
    return results


def run_tasks(
    task: Callable[[int, Callable[[Any], None], Callable[[], bool]], Any],
    count: int,
    jobs: int | None = None,
    on_log: Callable[[int, Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Run `count` tasks on `jobs` workers (default: one per core), or in this process."""
    jobs = default_jobs(count) if jobs is None else jobs
    if jobs > 1 and count > 1:
        return run_parallel(task, count, jobs, on_log, should_stop, on_done)
    return run_sequential(task, count, on_log, should_stop, on_done)


__all__ = [
    "WorkersLost",
    "default_jobs",
    "one_thread_worker",
    "one_torch_thread",
    "run_tasks",
    "usable_cores",
]
