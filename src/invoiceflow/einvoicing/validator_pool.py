"""A sidecar process that runs some of the validator's schematron layers beside the calling process.

Why: Saxon runs one transformation at a time per process (two threads are slower than one), and the two
official schematron layers of a Peppol UBL invoice are the bulk of a validation (EN 16931 about 8 ms, Peppol
about 6 ms for 20 lines). With a second core, the Peppol layer (and the Factur-X profile rules, when they
run) go to this sidecar while the calling process runs the XSD and EN 16931: the latency becomes the longer
of the two instead of their sum. The round trip itself costs about 0.05 ms (the document's text out, a few
findings back, over a socket pair).

How:
* The sidecar is `python -m invoiceflow.einvoicing.validator_pool FD`: a fresh interpreter (never a fork of a
  process that has loaded Saxon's GraalVM runtime, which is unsafe), started lazily on first use or by
  `Validator.warm_up`. It compiles its XSLTs once, says it is ready, then answers one request at a time
  until the socket closes (also when the parent dies: it then reads end-of-file and exits).
* Requests from several threads take turns (a lock spans send and reply). Until the sidecar is ready, and
  whenever it is not usable (it died, stopped answering, or failed a request), the caller runs the layers
  in-process instead, so a validation never fails because of the sidecar. A dead sidecar is reaped at once
  (no zombie) and started again on a later call; repeated failures back off up to a minute.
* Sidecars are stopped at interpreter exit (or by `close`).

The sidecar builds the same Saxon document from the same text with the same compiled rules as the
in-process path, so the findings are identical, byte for byte (tests/einvoicing/test_validator_pool.py).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import site
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invoiceflow.einvoicing.validator import Finding, Layer, Severity

log = logging.getLogger("invoiceflow.einvoicing")

# One schematron run: (path inside the rules folder, layer, what an unflagged successful-report means).
Job = tuple[str, "Layer", "Severity"]

READY_TIMEOUT_SECONDS = 120.0  # starting an interpreter and compiling the XSLTs takes about 2 s
REPLY_TIMEOUT_SECONDS = 120.0  # a request that takes longer means a hung sidecar (10,000 lines take ~3 s)
STOP_TIMEOUT_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 60.0


class SchematronSidecar:
    """One sidecar process for one rules folder; safe to use from several threads."""

    def __init__(self, rules_dir: Path, warm: Sequence[Job] = ()) -> None:
        self.rules_dir = rules_dir
        self.warm = tuple(warm)  # compiled before the sidecar says it is ready
        self.timings: dict[str, float] = {}  # the sidecar's compile times, once ready
        self._lock = threading.Lock()  # one request at a time; guards everything below
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._ready = False
        self._closed = False
        self._failures = 0  # consecutive failures, for the back-off
        self._not_before = 0.0  # monotonic time before which no new sidecar is started
        self.starts = 0  # processes started so far
        self.served = 0  # requests answered so far
        _live.add(self)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    # --- the calling side -----------------------------------------------------------------------------

    def submit(self, text: str, jobs: Sequence[Job]) -> Pending | None:
        """Send a document to the sidecar, or None when it is not ready (the caller then runs `jobs` itself).

        When this returns a `Pending`, the caller holds the sidecar until it calls `Pending.result`, which
        it must do (in a `finally`): other threads wait for their turn meanwhile.
        """
        self._lock.acquire()
        try:
            if not self._usable():
                self._lock.release()
                return None
            assert self._conn is not None
            self._conn.send((text, tuple(jobs)))
        except (OSError, ValueError) as exc:  # the sidecar is gone (EPIPE, closed socket)
            self._failed(f"send failed: {exc!r}")
            self._lock.release()
            return None
        except BaseException:
            self._lock.release()
            raise
        return Pending(self)

    def start(self) -> None:
        """Start the sidecar now if it is not running (without waiting for it to be ready)."""
        with self._lock:
            if not self._closed and self._process is None:
                self._start()

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
        """Start the sidecar if it is not running, and wait until it has compiled its rules.

        The lock is only taken to look: validations from other threads meanwhile run in-process.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            if not self._closed and self._process is None:
                self._start()
        while True:
            with self._lock:
                if self._ready or self._closed or self._process is None or self._conn is None:
                    return self._ready
                if self._conn.poll(0):
                    self._read_ready()
                    continue
                if self._process.poll() is not None:
                    self._failed(f"exited with {self._process.returncode} while starting")
                    return False
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def close(self) -> None:
        """Stop the sidecar (waiting for a request in flight); later calls run in-process."""
        with self._lock:
            self._closed = True
            self._stop(graceful=self._ready)

    def __del__(self) -> None:
        # A sidecar dropped without `close` (a validator that was not kept): stop its process now, so that
        # neither a zombie nor a "subprocess is still running" ResourceWarning is left behind.
        if self._process is not None:
            self._stop(graceful=False)

    # --- internals (called with the lock held) -----------------------------------------------------------

    def _usable(self) -> bool:
        if self._closed:
            return False
        if self._process is None:
            if time.monotonic() >= self._not_before:
                self._start()
            return False  # compiling takes seconds: this call runs in-process
        if not self._ready and self._conn is not None and self._conn.poll(0):
            self._read_ready()
        return self._ready

    def _start(self) -> None:
        parent_end, child_end = socket.socketpair()
        env = dict(os.environ)
        # The sidecar imports invoiceflow from wherever this process did: a source tree this process found on
        # a path of its own is added (never site-packages, which would then shadow the standard library).
        source_root = str(Path(__file__).resolve().parents[2])
        if source_root not in {*site.getsitepackages(), site.getusersitepackages()}:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), source_root) if p)
        try:
            self._process = subprocess.Popen(  # noqa: S603  # our own interpreter and module, no input
                [sys.executable, "-m", "invoiceflow.einvoicing.validator_pool", str(child_end.fileno())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        except (OSError, ValueError) as exc:  # ValueError: no pass_fds (not POSIX)
            parent_end.close()
            self._failed(f"could not start: {exc!r}")
            return
        finally:
            child_end.close()
        self.starts += 1
        self._conn = Connection(parent_end.detach())
        self._ready = False
        try:
            self._conn.send((str(self.rules_dir), self.warm))
        except (OSError, ValueError) as exc:
            self._failed(f"could not be configured: {exc!r}")
            return
        log.info("started the validation sidecar (pid %s)", self._process.pid)

    def _read_ready(self) -> None:
        assert self._conn is not None
        try:
            kind, payload = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._failed(f"died while starting: {exc!r}")
            return
        if kind != "ready":
            self._failed(f"could not start: {payload}")
            return
        self._ready = True
        self.timings = dict(payload)
        log.info("validation sidecar ready: compiled %s in %.2f s", ", ".join(self.timings), sum(self.timings.values()))

    def _reply(self) -> list[list[Finding]] | None:
        assert self._conn is not None
        try:
            if not self._conn.poll(REPLY_TIMEOUT_SECONDS):
                self._failed(f"no answer in {REPLY_TIMEOUT_SECONDS:.0f} s")
                return None
            kind, payload = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._failed(f"died: {exc!r}")
            return None
        if kind != "ok":
            # The rules failed in the sidecar (a missing Factur-X file, say): the in-process run reports it.
            log.warning("validation sidecar could not run the rules: %s", payload)
            return None
        self._failures = 0
        self.served += 1
        findings: list[list[Finding]] = payload
        return findings

    def _failed(self, why: str) -> None:
        self._failures += 1
        backoff = 0.0 if self._failures <= 1 else min(MAX_BACKOFF_SECONDS, 2.0 ** (self._failures - 2))
        self._not_before = time.monotonic() + backoff
        log.warning("validation sidecar %s; validating in-process (next start in %.0f s)", why, backoff)
        self._stop(graceful=False)

    def _stop(self, *, graceful: bool) -> None:
        """Close the socket and reap the process, so that no zombie remains."""
        process, conn = self._process, self._conn
        self._process, self._conn, self._ready = None, None, False
        if conn is not None:
            conn.close()  # an idle sidecar reads end-of-file and exits
        if process is None:
            return
        if graceful:
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
                return
            except subprocess.TimeoutExpired:
                pass
        process.kill()
        process.wait()


class Pending:
    """A request the sidecar is working on; `result` must be called exactly once (it frees the sidecar)."""

    def __init__(self, sidecar: SchematronSidecar) -> None:
        self._sidecar: SchematronSidecar | None = sidecar

    def result(self) -> list[list[Finding]] | None:
        """The findings of each job in order, or None when the caller must run the jobs itself."""
        sidecar, self._sidecar = self._sidecar, None
        if sidecar is None:
            raise RuntimeError("Pending.result() called twice")
        try:
            return sidecar._reply()
        finally:
            sidecar._lock.release()


_live: weakref.WeakSet[SchematronSidecar] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for sidecar in list(_live):
        sidecar.close()


# --- the sidecar side --------------------------------------------------------------------------------


def serve(conn: Connection) -> None:
    """The sidecar's loop: compile, say ready, then answer requests until end-of-file."""
    from invoiceflow.einvoicing.validator import _saxon, _Schematron

    rules_dir, warm = conn.recv()
    schematrons: dict[Job, _Schematron] = {}

    def schematron(job: Job) -> _Schematron:
        found = schematrons.get(job)
        if found is None:
            found = schematrons[job] = _Schematron(Path(rules_dir), *job)
        return found

    timings: dict[str, float] = {}
    try:
        for job in warm:
            started = time.perf_counter()
            schematron(job).load()
            timings[job[0]] = time.perf_counter() - started
        processor = _saxon()
    except Exception as exc:  # noqa: BLE001  # reported to the parent, which validates in-process
        conn.send(("failed", repr(exc)))
        return
    conn.send(("ready", timings))
    while True:
        try:
            request: tuple[str, tuple[Job, ...]] = conn.recv()
        except EOFError:
            return
        text, jobs = request
        try:
            document = processor.parse_xml(xml_text=text, encoding="UTF-8") if jobs else None
            reply: tuple[str, Any] = ("ok", [schematron(job).findings(document) for job in jobs])
        except Exception as exc:  # noqa: BLE001  # the parent runs the jobs itself and reports the error
            reply = ("error", repr(exc))
        conn.send(reply)


def main(argv: Sequence[str]) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when the sidecar stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent logs what matters (it sees every finding); a second copy on stderr would only be noise.
    quiet = logging.getLogger("invoiceflow")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    conn = Connection(int(argv[0]))
    try:
        serve(conn)
    finally:
        conn.close()


if __name__ == "__main__":
    main(sys.argv[1:])
