"""Prefect's temporary API server ends with the run that started it, even a run killed with SIGKILL.

With no PREFECT_API_URL, Prefect starts a temporary API server for a flow run (a uvicorn subprocess) and stops
it from an atexit hook. A run killed with SIGKILL (the OOM killer, an operator's kill -9) never gets there: its
server, adopted by init, kept its memory and its port for good, one more each night a run was killed so.

So a run first starts a small watcher process and names itself in its environment, which Prefect hands on to
the server it starts, from whichever thread and at whatever moment. The watcher holds the read end of a pipe
whose write end only the run holds; the kernel closes that when the run ends, however it ends. The watcher
then stops every temporary Prefect server carrying the run's name, as Prefect's own stop() does.

Not PR_SET_PDEATHSIG: only the server could set it on itself, which would take patching how Prefect starts it;
and it fires when the *thread* that started the server ends, while Prefect starts it from whichever thread
first needs the API (the events worker's thread, for one). Nor starting the server here to learn its pid: a
run killed during its ~15 s start-up would still leave it behind.

Fail-safe: where this cannot work (not Linux 5.3+, a Prefect that starts its server differently) the run goes on
as before, unguarded (on Linux, tests/test_kill.py then fails).
"""
from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import subprocess
import sys
import time
import types
import uuid

OWNER = "CALLINTEL_PREFECT_OWNER"  # in the run's environment, so in that of the server Prefect starts for it
# What Prefect puts in its temporary server's environment (prefect/server/api/server.py, _run_uvicorn_command):
# the run's other children (process-pool workers, a Dask cluster) carry OWNER too and are not this module's.
EPHEMERAL = b"PREFECT__SERVER_EPHEMERAL=1"
STOP_GRACE_S = 5  # as Prefect's SubprocessASGIServer.stop(): SIGTERM, then SIGKILL after 5 s

_watching: tuple[subprocess.Popen, int] | None = None  # the watcher and the pipe's write end, open until exit


def guard_temporary_server() -> None:
    """Have the temporary servers Prefect starts for this process's flows end with this process.

    flows.py calls it only when Prefect will start one (no PREFECT_API_URL): with a configured server
    (`callintel serve`, the tests' harness) there is no watcher and no new environment variable."""
    global _watching
    if _watching or not hasattr(os, "pidfd_open") or not os.path.isdir("/proc"):
        return
    token = f"{os.getpid()}-{uuid.uuid4().hex}"  # not a pid alone: a reused one must not match
    read, write = os.pipe()  # not inheritable: the run's other children never hold the write end
    try:
        watcher = subprocess.Popen([sys.executable, "-I", "-S", __file__, token], stdin=read,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)  # a Ctrl-C at the terminal stops the run, not it
    except OSError:
        os.close(write)
        return
    finally:
        os.close(read)
    os.environ[OWNER] = token  # after the watcher started: it is not one of the run's servers
    _watching = (watcher, write)


def in_own_session(server_module) -> None:
    """Have the module that starts Prefect's temporary server (prefect.server.api.server) start it in a session of
    its own. A Ctrl-C at the terminal signals the whole foreground process group: the server died of it at once,
    and the run, which records how it ended through that server, spent minutes retrying it and ended in a
    ConnectError instead of stopping. Only that module's name `subprocess` is rebound; the watcher above still ends
    the server with the run."""
    if not isinstance(server_module.subprocess, types.SimpleNamespace):
        server_module.subprocess = types.SimpleNamespace(
            **{**vars(subprocess), "Popen": functools.partial(subprocess.Popen, start_new_session=True)})


def _servers_of(token: str) -> list[int]:
    """pidfds of the temporary Prefect servers started by the run named token."""
    owner = f"{OWNER}={token}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            pidfd = os.pidfd_open(int(entry))
            # Read after opening: if the pid was reused in between, this is the new process's environment.
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:  # ended meanwhile, or another user's
            continue
        if owner in environ and EPHEMERAL in environ:
            found.append(pidfd)
        else:
            os.close(pidfd)
    return found


def _stop(pidfds: list[int]) -> None:
    for pidfd in pidfds:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    running = pidfds
    while running and (left := deadline - time.monotonic()) > 0:
        ended = select.select(running, [], [], left)[0]  # a pidfd is readable once its process has ended
        running = [fd for fd in running if fd not in ended]
    for pidfd in running:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)


if __name__ == "__main__":  # the watcher
    sys.stdin.buffer.read()  # returns at EOF: the run has ended
    _stop(_servers_of(sys.argv[1]))  # none after a normal exit: Prefect stopped its server itself
