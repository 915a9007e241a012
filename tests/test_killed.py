"""kill -9 of winit itself: its worker processes die with it, and a killed sweep resumes.

Each test starts a real `python -m weightinit_cli` with several workers, kills the main
process with SIGKILL at the worst moment (its workers are handing results over a pipe
that nobody will read again), and looks in /proc for the workers it had: all gone within
about a second. A sweep run again then resumes (its lock is free) and has every trial
exactly once, finished, with no staging directory left.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.sweep.trial import FINISHED

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

# Trials of about a second whose results (a row and a history point per step) are bigger
# than a pipe holds (64 KiB), so that a worker blocks handing one over.
SWEEP = [
    "sweep", "--grid", "init.method=he,xavier,orthogonal", "--steps", "150",
    "--set", "train.log_every=1", "--set", "model.width=16", "--set", "data.samples=256",
    "--jobs", "2",
]  # fmt: skip
GONE_WITHIN = 2.0  # seconds after the kill


def start(args: list[str], runs: Path) -> subprocess.Popen:
    env = {**os.environ, "WINIT_RUNS_DIR": str(runs), "COLUMNS": "100"}
    return subprocess.Popen(
        [sys.executable, "-m", "weightinit_cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None if there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return fields[0], int(fields[1])


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) and stat[1] == pid and stat[0] != "Z":
            found.append(int(entry))
    return found


def running(pids: list[int]) -> list[int]:
    """The processes of `pids` that still run (a zombie has ended: it holds nothing)."""
    return [pid for pid in pids if (stat := _stat(pid)) is not None and stat[0] != "Z"]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def leftovers():
    """Processes a test saw; any still there at the end are killed (by their pid)."""
    pids: list[int] = []
    yield pids
    for pid in running(pids):
        os.kill(pid, signal.SIGKILL)


def blocked_on_a_pipe(pids: list[int]) -> bool:
    """Whether a thread of one of `pids` waits to write to a pipe (handing over a result)."""
    for pid in pids:
        for thread in os.listdir(f"/proc/{pid}/task") if _stat(pid) else ():
            try:
                where = Path(f"/proc/{pid}/task/{thread}/wchan").read_text()
            except OSError:
                continue
            if "pipe_write" in where or "pipe_wait" in where:
                return True
    return False


def kill_with_workers(
    process: subprocess.Popen, workers: int, leftovers: list[int], ready=lambda: True
) -> None:
    """Wait for `workers` workers (and `ready()`), let them run into a full pipe, kill -9
    the main process, and assert that the workers are gone within GONE_WITHIN seconds."""
    wait_for(lambda: len(children(process.pid)) >= workers, 60, "the worker processes")
    pids = children(process.pid)
    leftovers.extend(pids)
    wait_for(ready, 60, "the run to get going")
    os.kill(process.pid, signal.SIGSTOP)  # reads nothing more: the workers' results pile up
    deadline = time.monotonic() + 8  # where wchan says nothing: a trial's time, and more
    while not blocked_on_a_pipe(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    deadline = time.monotonic() + GONE_WITHIN
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running(pids) == [], f"workers outlived their killed parent: {running(pids)}"


def test_a_killed_sweep_takes_its_workers_with_it_and_resumes(tmp_path, leftovers):
    runs = tmp_path / "runs"
    # killed once a trial is written: the next may be half-way into its staging directory
    first = lambda: any(runs.glob("sweep-*/trials/[0-9]*/summary.json"))  # noqa: E731
    kill_with_workers(start(SWEEP, runs), 2, leftovers, first)
    (path,) = runs.glob("sweep-*")
    assert json.loads((path / "meta.json").read_text())["status"] == "running"
    with open(path / ".lock", "a+") as lock:  # nobody holds the sweep any more
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(lock, fcntl.LOCK_UN)

    again = CliRunner().invoke(app, [*SWEEP, "--json", "--runs-dir", str(runs)])
    assert again.exit_code == 0, again.output
    assert "being run by another" not in again.output
    summary = json.loads(again.stdout)
    assert summary["run_dir"] == str(path) and summary["status"] == "completed"
    assert summary["resumed"] >= 1 and summary["ran"] + summary["resumed"] == 3
    assert summary["counts"]["pending"] == summary["counts"]["failed"] == 0  # all finished
    names = sorted(p.name for p in (path / "trials").iterdir())
    assert names == sorted(row["trial"] for row in summary["trials"])  # each exactly once
    assert len(names) == 3 and not [n for n in names if n.startswith(".")]  # no staging dir
    for name in names:
        trial = path / "trials" / name
        assert json.loads((trial / "meta.json").read_text())["status"] in FINISHED
        assert (trial / "summary.json").is_file()
    assert not [p.name for p in path.iterdir() if p.name.startswith(".") and p.name != ".lock"]


def test_a_killed_compare_takes_its_workers_with_it(tmp_path, leftovers):
    """Three methods on two workers, each method's result (its whole history) bigger than
    the pipe: the workers die with the killed compare."""
    args = ["compare", "--methods", "he", "xavier", "orthogonal", "--steps", "1000000"]
    args += ["--depth", "3", "--set", "train.log_every=1", "--jobs", "2"]
    process = start(args, tmp_path)
    kill_with_workers(process, 2, leftovers, lambda: any(tmp_path.glob("*/metrics.csv")))
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((run / "meta.json").read_text())["status"] == "running"


def test_without_the_kernel_s_help_a_worker_notices_within_a_second(tmp_path, leftovers):
    """Where Linux's parent-death signal is not to be had, the worker's own watchdog ends
    it: here a worker asleep in its task, which polls nothing."""
    script = textwrap.dedent(
        """
        import sys, time
        from weightinit_cli import parallel
        parallel._kill_me_with_parent = lambda: False
        def task(index, log, stop):
            log("x" * 200_000)  # more than a pipe holds
            time.sleep(120)
        parallel.run_tasks(task, 2, jobs=2)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    wait_for(lambda: len(children(process.pid)) >= 2, 60, "the worker processes")
    pids = children(process.pid)
    leftovers.extend(pids)
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    deadline = time.monotonic() + 1.5
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running(pids) == []


def _free(lock) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def test_a_forked_worker_does_not_hold_the_sweep_s_lock(tmp_path):
    """A lock belongs to the open file, which a fork shares: workers let go of it, so the
    lock is free as soon as winit itself is gone (here: has left the block)."""
    import multiprocessing

    from weightinit_cli.sweep.outputs import sweep_lock

    with sweep_lock(tmp_path):
        worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
        worker.start()
    try:
        with open(tmp_path / ".lock", "a+") as lock:
            # the worker lets go as it starts, which may be a moment after the fork
            wait_for(lambda: _free(lock), 2, "the worker to let go of the lock")
    finally:
        worker.kill()
        worker.join()


# A worker that kills itself (as the out-of-memory killer would) while the parent is busy
# in on_done, so that its pipe is full: blocked handing over many small log points, or
# half-way into one bigger than the pipe. The other worker then hands over results bigger
# than the pipe. Nothing may wait for the dead one: the run ends, its task lost.
DIES_SENDING = textwrap.dedent(
    """
    import json, os, signal, sys, threading, time
    import torch  # here, so that the forked workers need not import it each
    from weightinit_cli.parallel import WorkersLost, run_parallel

    marker, small = sys.argv[1], sys.argv[2] == "small"

    def task(index, log, stop):
        if index == 0:
            return "zero"
        while not os.path.exists(marker):  # the parent is in on_done: it reads nothing
            time.sleep(0.01)
        if index == 1:
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGKILL)).start()
            for _ in range(5000 if small else 1):
                log("x" * (100 if small else 1_000_000))
            time.sleep(30)
        if index == 2:  # once the dying one is stuck sending
            time.sleep(0.3)
        return "y" * 300_000

    def on_done(index, result):
        if index == 0:
            open(marker, "w").close()
            time.sleep(1.2)
        done.append(index)

    done = []
    try:
        run_parallel(task, 4, 2, on_log=lambda index, point: None, on_done=on_done)
        print(json.dumps({"done": done}))
    except WorkersLost as err:
        print(json.dumps({"done": done, "lost": err.lost, "message": str(err)}))
    """
)


@pytest.mark.parametrize("sending", ["small", "big"], ids=["many-small-logs", "half-a-message"])
def test_a_worker_killed_while_sending_loses_its_task_only(tmp_path, sending):
    process = subprocess.Popen(
        [sys.executable, "-c", DIES_SENDING, str(tmp_path / "marker"), sending],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a hang is killed, workers and all
    )
    try:
        out, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError("run_parallel hung on a worker killed while sending") from None
    assert process.returncode == 0, err
    report = json.loads(out)
    assert report["lost"] == [1], report
    assert sorted(report["done"]) == [0, 2, 3]  # the other worker ran the rest
    assert "exit codes" in report["message"] and "-9" in report["message"]
