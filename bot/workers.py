"""CPU work on untrusted input, in worker processes with limits.

Parsing a feed (``bot.parse``) and extracting a page's body
(``bot.extract``) are pure functions, but what they read comes from
servers feedbot does not control, and their cost is not bounded by its
size alone.  On the event loop, one document that costs a minute would stop
everything: the watchdog's pings, SIGTERM, the other feeds, the digests.
So they run here, in a small pool of worker processes (pebble):

- each task has a CPU-time limit: the worker lowers its own ``RLIMIT_CPU``
  to "now + the limit" before the task, and the kernel kills it past that
  (``SIGXCPU``); and a wall-clock limit, after which pebble kills it (a
  generous one: a task waiting on a busy machine is not a hostile one);
- each worker has an address-space limit (``RLIMIT_AS``): a task that
  allocates past it fails with ``MemoryError``, or its worker dies;
- a killed worker is replaced by pebble, and its task becomes a
  ``WorkerError`` with the reason, recorded as that feed's or page's error;
- the event loop awaits the task's future and never runs the task; a task
  whose caller is cancelled (SIGTERM) is cancelled, its worker killed.

Small inputs are the exception.  A task given an ``inline`` variant
(parsing a feed: ``bot.parse.parse_feed_here``) runs in this process when
its input is at most ``INLINE_BYTES`` (libxml2's work on it is bounded by
its size), the shared pool is not up, and the in-process budget allows
(``INLINE_RATE`` of a core, in bursts of ``INLINE_BURST``).  It still has a
limit that stops it: a CPU timer (``ITIMER_PROF``) raises in the task past
``INLINE_CPU_SECONDS``, and the task goes to a worker, as does one whose
variant declines its input (``Declined``: it needs feedparser or charset
detection, which this process does not import).  A cycle where 20 feeds of
200 changed parses them in ~40 ms here instead of starting a fork server
and two workers (~0.3 s of wall time, issue 27); a busy cycle uses up the
budget and starts the pool, on which its other documents are parsed.

Workers start from a fork server, not by forking the service itself
(forking a process with threads, aiohttp's resolver and the scheduler's,
is unsafe).  The fork server imports the parsing stack once, when it
starts (``PARSE_STACK``, and ``EXTRACT_STACK`` when the config fetches
article pages: ``preload``), and every worker is forked from it with those
modules loaded: a worker used to import them itself, ~0.3 s of CPU each,
on every cycle that had something to parse (issue 27).  The limits are
the worker's own, set after the fork, as before.  The pool starts in a
thread of its own (pebble forks its workers on the first task, and waits
for the fork server's imports to do so): the event loop goes on with the
other feeds meanwhile.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import gc
import os
import resource
import signal
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, TimeoutError
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from bot.errors import Declined, WorkerError

if TYPE_CHECKING:
    from pebble import ProcessPool

# pebble, multiprocessing and ctypes are imported when a pool is first
# needed (a poll whose feeds all answer 304 parses nothing: issue 27).

T = TypeVar("T")

CPU_SECONDS = 20.0  # per task: a 10 MB feed parses in a few seconds on a slow machine
WALL_FACTOR = 3.0  # the wall-clock limit, in CPU limits, plus WALL_SLACK
WALL_SLACK = 10.0
MEMORY_BYTES = 768 * 1024 * 1024  # address space of one worker (its imports take ~60 MB)
TRIM_AFTER_BYTES = 256 * 1024  # a task on an input this big gives its heap back after
IDLE_SECONDS = 60.0  # workers with nothing to do for this long are stopped (started again when needed)
INLINE_BYTES = 256 * 1024  # a task's input at most this big may run in this process (``inline``)
INLINE_CPU_SECONDS = 0.2  # the limit of one such task here; past it, it is run again in a worker
FINALIZER_RETRY_SECONDS = 0.005  # the limit's stop met a finalizer (where it cannot raise): again this soon
INLINE_RATE = 0.05  # share of a core the in-process tasks may use, over time …
INLINE_BURST = 0.25  # … in bursts of at most this many CPU seconds (then the pool starts)
# What the fork server imports before it forks any worker: what a parse
# task imports (bot.parse, which imports its fast path, fastfeedparser;
# feedparser only for the few documents that path does not take), and, if asked, what extraction does.
# ``__main__`` as multiprocessing has it by default (a script run as the
# main module is imported there once, not in every worker).
PARSE_STACK = ("__main__", "bot.parse")
EXTRACT_STACK = ("bot.extract", "trafilatura")


def default_processes() -> int:
    """One worker per core, two at least (one busy worker must not hold
    every other feed's parse), four at most."""
    return max(2, min(4, os.cpu_count() or 2))


def _start_worker(memory_bytes: int) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the service
    # stops the pool itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_bytes:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))
    libc = _libc()
    if libc is not None:
        # Allocations of 64 KB and more get pages of their own, given back
        # when freed: a page's parse tree does not stay in the worker.
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)


def _limited(fn: Callable[..., T], cpu_seconds: float, args: tuple[Any, ...]) -> T:
    """Run ``fn`` in the worker under a CPU-time limit counted from now."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime + cpu_seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
    try:
        return fn(*args)
    finally:
        if sum(len(a) for a in args if isinstance(a, bytes)) > TRIM_AFTER_BYTES:
            _give_back_memory()  # a full collection costs milliseconds: only after big inputs


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _libc() -> Any:
    """glibc, for its malloc tuning; None elsewhere (musl, macOS)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def _give_back_memory() -> None:
    """Return the heap a task freed to the system (glibc keeps it otherwise):
    a worker that parsed one big page should not stay its size for ever."""
    libc = _libc()
    if libc is not None:
        gc.collect()
        libc.malloc_trim(0)


class Workers:
    """The pool: ``await workers.run(fn, *args)`` runs ``fn(*args)`` in a
    worker and gives its result or raises its exception; the limits' breaches
    are ``WorkerError``s."""

    def __init__(
        self,
        processes: int | None = None,
        cpu_seconds: float = CPU_SECONDS,
        memory_bytes: int = MEMORY_BYTES,
    ) -> None:
        self.processes = processes or default_processes()
        self.cpu_seconds = cpu_seconds
        self.memory_bytes = memory_bytes
        self._pool: ProcessPool | None = None
        self._single: ProcessPool | None = None
        self._lock = threading.Lock()
        self._active = 0
        self._idle: threading.Timer | None = None
        self._preload: list[str] = list(PARSE_STACK)
        self._start: tuple[ProcessPool, concurrent.futures.Future[None]] | None = None
        self._tokens = INLINE_BURST  # CPU seconds in-process tasks may still use (refilled at INLINE_RATE)
        self._refilled = time.monotonic()

    def preload(self, modules: Sequence[str]) -> None:
        """Have the fork server import ``modules`` too, if it has not started
        yet (it is one per process, started with the first pool); a module
        that cannot be imported there is imported by the task that needs it."""
        with self._lock:
            self._preload += [m for m in modules if m not in self._preload]

    def _get_pool(self, single: bool) -> ProcessPool:
        import multiprocessing

        from pebble import ProcessPool

        with self._lock:
            pool = self._single if single else self._pool
            # pebble's ``active`` starts a pool not started yet (forks its
            # workers, here, on the event loop): not asked of one whose start
            # is under way in its thread (``_started``).
            starting = self._start is not None and self._start[0] is pool and not self._start[1].done()
            if pool is None or not (starting or pool.active):
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(self._preload)  # no effect once the fork server runs
                pool = ProcessPool(
                    max_workers=1 if single else self.processes,
                    max_tasks=1 if single else 0,
                    initializer=_start_worker,
                    initargs=(self.memory_bytes,),
                    context=context,
                )
                if single:
                    self._single = pool
                else:
                    self._pool = pool
            return pool

    async def run(
        self, fn: Callable[..., T], *args: Any, single: bool = False, inline: Callable[..., T] | None = None
    ) -> T:
        """``single``: in a worker of its own that ends with the task, one
        such task at a time (a big page: its memory goes back to the system
        with the process, instead of staying in a long-lived worker).
        ``inline``: a variant of ``fn`` that may run in this process on a
        small input (see the module's notes), or raise ``Declined``."""
        if inline is not None and not single and self._may_inline(args):
            try:
                return self._inline(inline, args)
            except (Declined, _Overrun):
                pass  # to a worker, with its limits
        self._begin()
        try:
            return await self._run(fn, args, single)
        except WorkerError:
            from bot import metrics

            metrics.worker_stopped.inc()
            raise
        finally:
            self._end()

    def _started(self, pool: ProcessPool) -> concurrent.futures.Future[None]:
        """The start of the shared pool, in a thread of its own, once per pool."""
        with self._lock:
            if self._start is not None and self._start[0] is pool:
                return self._start[1]
            started: concurrent.futures.Future[None] = concurrent.futures.Future()
            started.set_running_or_notify_cancel()  # a cancelled waiter does not cancel it for the others
            self._start = (pool, started)

        def start() -> None:
            try:
                pool.schedule(int)  # pebble starts the pool (forks its workers) on its first task
            except BaseException as exc:  # every waiter gets it; the next run tries again
                with self._lock:
                    if self._start is not None and self._start[1] is started:
                        self._start = None
                started.set_exception(exc)
            else:
                started.set_result(None)

        threading.Thread(target=start, name="feedbot-workers-start", daemon=True).start()
        return started

    async def _run(self, fn: Callable[..., T], args: tuple[Any, ...], single: bool) -> T:
        pool = self._get_pool(single)
        from pebble import ProcessExpired  # imported by _get_pool

        def schedule() -> concurrent.futures.Future[T]:
            return pool.schedule(
                _limited,
                args=(fn, self.cpu_seconds, args),
                timeout=self.cpu_seconds * WALL_FACTOR + WALL_SLACK,
            )

        if single:
            # A single-task pool starts with its task (forks its worker, and
            # waits for the fork server's imports when it is the first task
            # of the process: a digest composed before any feed was parsed
            # blocked the loop ~0.5 s, past the watchdog test's margin).
            # So the scheduling too is done in a thread.
            scheduling = asyncio.get_running_loop().run_in_executor(None, schedule)
            try:
                future = await asyncio.shield(scheduling)
            except asyncio.CancelledError:
                scheduling.add_done_callback(_cancel_scheduled)
                raise
        else:
            # Off the event loop: the first start waits for the fork server's
            # imports; once started, scheduling only queues the task.
            await asyncio.wrap_future(self._started(pool))
            future = schedule()
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()  # pebble kills a running task's worker
            raise
        except TimeoutError:
            raise WorkerError(f"stopped: took longer than {self.cpu_seconds * WALL_FACTOR + WALL_SLACK:g}s") from None
        except ProcessExpired as exc:
            raise WorkerError(_expired(exc.exitcode, self.cpu_seconds, self.memory_bytes)) from None
        except MemoryError:
            raise WorkerError(f"stopped: needed more than {self.memory_bytes // 2**20} MB of memory") from None
        except RecursionError:
            raise WorkerError("stopped: nested too deeply") from None
        except CancelledError:  # the pool was stopped under the task
            raise WorkerError("stopped: the worker pool was shut down") from None

    def _may_inline(self, args: tuple[Any, ...]) -> bool:
        if sum(len(a) for a in args if isinstance(a, bytes)) > INLINE_BYTES:
            return False
        if threading.current_thread() is not threading.main_thread() or not _timer_ready():
            return False  # the CPU timer's signal is handled in the main thread only
        with self._lock:
            start = self._start
            if start is not None and start[0] is self._pool and start[1].done() and start[1].exception() is None:
                return False  # the workers are up (``close`` forgets them): they parse on another core
            now = time.monotonic()
            self._tokens = min(INLINE_BURST, self._tokens + (now - self._refilled) * INLINE_RATE)
            self._refilled = now
            low = self._tokens < INLINE_BURST / 2
        if low:
            # A busy cycle: the pool starts now, in its thread, while the
            # budget lasts; the tasks after it go to the workers.
            self._started(self._get_pool(False))
        return self._tokens > 0

    def _inline(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """``fn(*args)`` here, stopped by ``_Overrun`` past ``INLINE_CPU_SECONDS``."""
        global _armed, _armed_since
        used = time.thread_time()
        try:
            try:
                _armed_since = used
                _armed = True
                # Repeated every 50 ms until disarmed: a task that caught the
                # first raise meets the next.
                signal.setitimer(signal.ITIMER_PROF, INLINE_CPU_SECONDS, 0.05)
                return fn(*args)
            finally:
                _armed = False
                signal.setitimer(signal.ITIMER_PROF, 0, 0)
        except _Overrun:  # raised inside the inner ``finally`` before it disarmed: disarm now
            _armed = False
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            raise
        finally:
            with self._lock:
                self._tokens -= time.thread_time() - used

    def _begin(self) -> None:
        with self._lock:
            self._active += 1
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None

    def _end(self) -> None:
        """After the last task, a timer: idle workers are memory for nothing
        (a service whose feeds all answer 304 parses nothing for hours)."""
        with self._lock:
            self._active -= 1
            if self._active == 0 and (self._pool is not None or self._single is not None):
                self._idle = threading.Timer(IDLE_SECONDS, self._close_if_idle)
                self._idle.daemon = True
                self._idle.start()

    def _close_if_idle(self) -> None:
        with self._lock:
            if self._active:
                return
        self.close()

    def close(self) -> None:
        """Stop the workers (tasks still running are killed)."""
        with self._lock:
            pools, self._pool, self._single = (self._pool, self._single), None, None
            self._start = None
        for pool in pools:
            if pool is not None:
                pool.stop()  # type: ignore[no-untyped-call]  # pebble leaves it unannotated
                pool.join(timeout=10)


class _Overrun(BaseException):
    """Raised in an in-process task past its CPU limit.  Not an
    ``Exception``: the task's own ``except Exception`` must not swallow it."""


_armed = False  # an in-process task is running under the CPU timer
_armed_since = 0.0  # the main thread's CPU time when it started
_timer: bool | None = None  # whether SIGPROF is ours (set on first use)
_INLINE_CODE = Workers._inline.__code__  # where a task's frames start
_FINALIZE_CODE = weakref.finalize.__call__.__code__


def _on_timer(signum: int, frame: Any) -> None:
    # ITIMER_PROF counts the CPU of every thread of the process; the limit
    # is the task's own (the handler runs in the main thread, which runs
    # it): another thread's work only makes the check come sooner.
    if _armed and time.thread_time() - _armed_since >= INLINE_CPU_SECONDS:
        if _in_finalizer(frame):
            # What a finalizer raises, Python prints and ignores: the task
            # would go on.  The check comes back soon, outside it.
            signal.setitimer(signal.ITIMER_PROF, FINALIZER_RETRY_SECONDS, 0.05)
            return
        raise _Overrun


def _in_finalizer(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside a finalizer that ran mid-task: a
    ``__del__``, a garbage collector's callback (one of the test suite's
    did), a ``weakref.finalize``.  Seen from the signal's frame up to the
    in-process task's own."""
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        code = frame.f_code
        if code is _INLINE_CODE:
            return False
        if code.co_name == "__del__" or code in callbacks or code is _FINALIZE_CODE:
            return True
        frame = frame.f_back
    return False


def _timer_ready() -> bool:
    """SIGPROF handled by ``_on_timer``: installed once, unless the process
    has a handler of its own for it (a profiler): then nothing runs inline."""
    global _timer
    if _timer is None:
        current = signal.getsignal(signal.SIGPROF)
        _timer = current in (signal.SIG_DFL, signal.SIG_IGN, None)
        if _timer:
            signal.signal(signal.SIGPROF, _on_timer)
    return _timer


def _cancel_scheduled(scheduling: asyncio.Future[concurrent.futures.Future[Any]]) -> None:
    """A task scheduled after its caller was cancelled is cancelled too."""
    if not scheduling.cancelled() and scheduling.exception() is None:
        scheduling.result().cancel()


def _expired(exitcode: int | None, cpu_seconds: float, memory_bytes: int) -> str:
    if exitcode == -signal.SIGXCPU:
        return f"stopped: used more than {cpu_seconds:g}s of CPU time"
    if exitcode == -signal.SIGKILL:
        return f"stopped: killed (out of memory? the limit is {memory_bytes // 2**20} MB)"
    return f"stopped: the worker died (exit code {exitcode})"


_shared: Workers | None = None
_shared_lock = threading.Lock()


def shared() -> Workers:
    """The process's pool, made on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Workers()
            atexit.register(_shared.close)
        return _shared
