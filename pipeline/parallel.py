"""Work spread over processes or a Dask cluster: what the import, the re-score and the pages share.

Light on purpose: a spawned worker imports the module of the function it runs, and a worker that only scores
should not pay for spaCy and scikit-learn.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator

# Tasks sent to a Dask cluster ahead of the one this process waits for: enough to keep the workers busy while it
# commits, few enough that the scheduler never holds a whole night's (or archive's) rows at once.
CLUSTER_IN_FLIGHT = 16
# Python's cycle collector walks every live object each time a generation fills: with a batch of rows
# and the models alive that is most of a batch's objects, every few thousand allocations (18% of the
# stages' time at 100k utterances). Models and loaded input are frozen out of it, and it runs less often.
GC_THRESHOLD = (10_000, 50, 100)


def process_pool(workers: int, initializer: Callable | None = None, initargs: tuple = ()) -> cf.ProcessPoolExecutor:
    # spawn, not fork: the parent holds threads (Prefect, DuckDB) that fork would copy broken
    quit_on_interrupt = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    return cf.ProcessPoolExecutor(workers, mp_context=_SPAWN_DEAF, initializer=_orphan_guard,
                                  initargs=(quit_on_interrupt, initializer, *initargs))


class _DeafProcess(multiprocessing.context.SpawnProcess):
    """A worker started with SIGINT blocked: a Ctrl-C while it starts (importing its models, seconds on a busy
    machine) would otherwise raise KeyboardInterrupt inside an import, and print a traceback of its own over the
    run's one line. The mask, unlike a handler, holds from the fork through the exec; the worker decides what the
    signal means once it is ready (_orphan_guard), and a Ctrl-C that came meanwhile is delivered then."""

    def start(self) -> None:
        before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # this thread's: any thread may start it
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


class _DeafSpawn(multiprocessing.context.SpawnContext):
    Process = _DeafProcess


_SPAWN_DEAF = _DeafSpawn()


def _orphan_guard(quit_on_interrupt: bool, initializer: Callable | None, *initargs) -> None:
    """A worker leaves when its parent is gone. A run killed with SIGKILL (an operator, the OOM killer) cannot
    shut its pool down, and each orphaned worker kept its models: about 1 GB a killed run, for good."""
    # A Ctrl-C at the terminal reaches every process of the run: the run decides what stops; a worker leaves quietly
    # (it printed a traceback of its own, one a worker, over the run's one line). A run that ignores SIGINT (started
    # in the background by a shell, as `cmd &`) passes that on: its workers ignore it too, and stay.
    signal.signal(signal.SIGINT, (lambda *_: os._exit(1)) if quit_on_interrupt else signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked since the fork (_DeafProcess)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True, name="orphan-guard").start()
    if initializer is not None:
        initializer(*initargs)


def _exit_with(sentinel) -> None:
    multiprocessing.connection.wait([sentinel])  # ready when the parent process ends, however it ends
    os._exit(1)


def in_order(submit: Callable, items: Iterable[tuple], in_flight: int) -> Iterator:
    """The results of submit(*item) (a future) for each item, in order, with at most in_flight pending."""
    pending: list = []
    for item in items:
        pending.append(submit(*item))
        if len(pending) >= in_flight:
            yield pending.pop(0).result()
    for future in pending:
        yield future.result()


@contextlib.contextmanager
def few_collections():
    """Fewer, cheaper cycle collections for a batch stage; the previous settings are restored after."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()  # a long-lived process (a served schedule) must collect them again once they are garbage
