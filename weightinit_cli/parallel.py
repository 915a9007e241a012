"""Run independent experiments in forked worker processes, one torch thread each.

compare's methods share nothing but their inputs, so on a machine with several cores
they run side by side. Workers are forked, so the dataset and the imported torch are
shared copy-on-write instead of pickled or re-imported. Each worker runs on one torch
thread, and so does the sequential path: conv kernels on CPU can round differently
with another thread count, and a result must not depend on how it was scheduled.

Log points stream back through a queue and are handled in the parent (which owns the
run directory and the progress display). A stop request (Ctrl-C, SIGTERM) in the parent
sets a shared event that the workers poll between steps; workers ignore the signals
themselves, so the parent decides.

A worker dies with its parent, however the parent ends (kill -9 included): the kernel
kills it when the parent exits (Linux's parent-death signal), and a watchdog thread in
the worker notices within a second where that is not available. Otherwise a worker whose
parent was killed could wait forever to hand a result to a pipe nobody reads, holding
what the parent held (a sweep's lock among them).
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def _claim(counter: Any, count: int) -> int | None:
    """The next task index nobody has taken, or None when all are taken."""
    with counter.get_lock():
        index = counter.value
        if index >= count:
            return None
        counter.value = index + 1
        return index


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
    own: the main thread may be blocked in a pipe write, or in the join of the queue's
    feeder thread at exit, both of which wait for a reader that is gone."""
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


def _worker(
    task: Callable[..., Any],
    counter: Any,
    count: int,
    messages: Any,
    stop: Any,
    parent: int,
) -> None:
    die_with_parent(parent)
    one_thread_worker()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def should_stop() -> bool:
        return stop.is_set() or os.getppid() != parent

    while not should_stop() and (index := _claim(counter, count)) is not None:
        try:
            result = task(
                index, lambda point, i=index: messages.put(("log", i, point)), should_stop
            )
            messages.put(("done", index, result))
        except WinitError as err:
            messages.put(("user_error", index, err))
        except BaseException as err:  # a bug: report it in the parent, with its type
            messages.put(("crash", index, f"{type(err).__name__}: {err}"))


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

    A task that was never started because of a stop request gives None.
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")
    # A shared counter, not a queue of indices: a queue's items reach the pipe through a
    # feeder thread, so a fast worker could find it empty and leave before they arrive.
    counter = context.Value("i", 0)
    messages = context.Queue()
    stop = context.Event()
    workers = [
        context.Process(target=_worker, args=(task, counter, count, messages, stop, os.getpid()))
        for _ in range(min(jobs, count))
    ]
    for worker in workers:
        worker.start()
    results: list[Any] = [None] * count
    finished: set[int] = set()
    try:
        while len(finished) < count:
            if should_stop is not None and should_stop():
                stop.set()
            try:
                kind, index, payload = messages.get(timeout=0.1)
            except queue.Empty:
                if any(w.is_alive() for w in workers):
                    continue
                try:  # every worker has exited: what they sent is still in the pipe
                    kind, index, payload = messages.get(timeout=5)
                except queue.Empty:
                    if stop.is_set():
                        break  # the rest were never started: a stop came first
                    codes = [w.exitcode for w in workers]
                    # tasks are taken in index order: those below the counter were taken
                    lost = [i for i in range(counter.value) if i not in finished]
                    raise WorkersLost(
                        f"worker processes exited with {count - len(finished)} tasks unfinished "
                        f"(exit codes {codes}; -9 is a kill, often for lack of memory)",
                        lost,
                    ) from None
            if kind == "log":
                if on_log is not None:
                    on_log(index, payload)
                continue
            if kind == "user_error":
                raise payload
            if kind == "crash":
                raise RuntimeError(f"a worker process failed: {payload}")
            results[index] = payload
            finished.add(index)
            if on_done is not None:
                on_done(index, payload)
    finally:
        stop.set()
        _drain_and_join(workers, messages)
    return results


def _drain_and_join(workers: list[Any], messages: Any, timeout: float = 30) -> None:
    """Wait for the workers to exit, reading what they still send: after an error here
    (a user error in one worker, a second Ctrl-C) a worker can be handing over a result
    too big for the pipe, and would never exit while nobody reads it."""
    deadline = time.monotonic() + timeout
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        try:
            messages.get(timeout=0.05)
        except queue.Empty:
            pass
        except Exception:  # noqa: BLE001 -- a half-sent message from a killed worker
            time.sleep(0.05)
    for worker in workers:
        worker.join(timeout=1)
        if worker.is_alive():
            worker.kill()
            worker.join(timeout=5)


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
