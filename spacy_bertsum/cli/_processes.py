"""The processes of a batch run: one torch thread each before spaCy forks the
workers of ``nlp.pipe(n_process > 1)``, and SIGINT/SIGTERM handling that
stops the run and its workers within seconds, leaving complete rows in the
output to resume from."""
import multiprocessing
import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator


def stop_workers() -> None:
    """Kill the worker processes of ``nlp.pipe(n_process > 1)`` (our
    children): they hold no output, and spaCy's stream, when it is closed,
    waits for them to drain their queues, which can take minutes or hang."""
    for child in multiprocessing.active_children():
        child.kill()
        child.join(timeout=5)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM kill the workers first and then raise
    KeyboardInterrupt here, so that the run stops within seconds with
    complete rows in the output (``--resume`` continues it). Worker processes
    forked meanwhile inherit the handler: there it just exits."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    parent = os.getpid()

    def interrupt(signum, frame):
        if os.getpid() != parent:  # a worker of nlp.pipe: the parent writes the output
            os._exit(128 + signum)
        stop_workers()
        raise KeyboardInterrupt

    before = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def single_threaded_torch() -> None:
    """With ``n_process > 1`` spaCy forks workers; a fork after multi-threaded
    torch work deadlocks them (the OpenMP pool does not survive a fork). One
    torch thread per process avoids it and matches one process per core."""
    import torch

    torch.set_num_threads(1)
