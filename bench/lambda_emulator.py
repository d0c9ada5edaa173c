"""A minimal Lambda Runtime API on 127.0.0.1, to run a function's process the way Lambda does.

It serves what a runtime needs for invocations (`GET /2018-06-01/runtime/invocation/next`,
`POST .../invocation/{id}/response` and `.../error`, `POST .../init/error`) and nothing else: no
extensions API, no telemetry. Each `next` hands out one queued event with the headers Lambda
sends; each response is timestamped when its last byte has been read.

Used by run.py for two measurements:

- cold start: spawn the process with one event queued, time from just before the spawn to the
  moment its first response has arrived, then kill it;
- peak memory: serve N events to one process, then read its VmHWM from /proc.

Each spawned process gets its own server on a fresh port, so nothing from a killed process (a
`next` already in the socket when it died) can reach the next process's events.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import statistics
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:bench"


class Session:
    """The events one process is given and the answers it sent back."""

    def __init__(self, events: list[bytes]):
        self.events: queue.Queue[bytes] = queue.Queue()
        for event in events:
            self.events.put(event)
        self.responses: queue.Queue[tuple[float, int, bytes]] = queue.Queue()
        self.errors: queue.Queue[bytes] = queue.Queue()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the runtime clients expect
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, *_args) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(404)
            return
        # One server per process: this is that process's queue. A killed process's waiting call
        # gets None when its server is closed, and the thread ends.
        session: Session = self.server.session  # type: ignore[attr-defined]
        event = session.events.get()
        if event is None:
            self.close_connection = True
            return
        deadline_ms = int(time.time() * 1000) + 30_000
        self._reply(
            200,
            event,
            {
                "Lambda-Runtime-Aws-Request-Id": str(uuid.uuid4()),
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
            },
        )

    def do_POST(self) -> None:  # noqa: N802
        session: Session = self.server.session  # type: ignore[attr-defined]
        body = self._body()
        if self.path.endswith("/response"):
            session.responses.put((time.perf_counter(), len(body), body))
        elif self.path.endswith("/error"):
            session.errors.put(body)
        else:
            self._reply(404)
            return
        self._reply(202, b'{"status":"OK"}')


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a killed function resets its connections: expected, not worth a traceback


class Emulator:
    """Spawns functions, each against its own Runtime API on a free port of 127.0.0.1."""

    @staticmethod
    def environment(address: str, extra: dict[str, str]) -> dict[str, str]:
        """What Lambda sets for a function process (plus `extra`)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_LAMBDA_RUNTIME_API": address,
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
        env.update(extra)
        return env

    def _spawn(self, command: list[str], env: dict[str, str], cwd: str, events: list[bytes]):
        session = Session(events)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.session = session  # type: ignore[attr-defined]
        session.server = server  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host, port = server.server_address[:2]
        full_env = self.environment(f"{host}:{port}", env)
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            env=full_env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return session, process, started

    @staticmethod
    def _answer(session: Session, process: subprocess.Popen, timeout: float = 30.0):
        limit = time.monotonic() + timeout
        while time.monotonic() < limit:
            try:
                return session.responses.get(timeout=0.05)
            except queue.Empty:
                if not session.errors.empty():
                    raise RuntimeError(f"the function reported an error: {session.errors.get()!r}")
                if process.poll() is not None:
                    raise RuntimeError(f"the function exited with {process.returncode}")
        raise RuntimeError("no response within the timeout")

    @staticmethod
    def _stop(session: Session, process: subprocess.Popen) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait()
        for _ in range(8):  # wakes the calls still waiting for an event
            session.events.put(None)  # type: ignore[arg-type]
        server = session.server  # type: ignore[attr-defined]
        # In the background: shutdown() waits for serve_forever's next poll (up to 0.5 s).
        threading.Thread(
            target=lambda: (server.shutdown(), server.server_close()), daemon=True
        ).start()

    def cold_start(self, command, env, cwd, event: bytes) -> tuple[float, bytes]:
        """Seconds from just before the spawn to the first response, and that response."""
        started, at, body = self.timed_cold_start(command, env, cwd, event)
        return at - started, body

    def timed_cold_start(self, command, env, cwd, event: bytes) -> tuple[float, float, bytes]:
        """The cold start as two `time.perf_counter()` instants (just before the spawn, the
        first response's arrival) and that response."""
        session, process, started = self._spawn(command, env, cwd, [event])
        try:
            at, _, body = self._answer(session, process)
            return started, at, body
        finally:
            self._stop(session, process)

    def serve(self, command, env, cwd, event: bytes, invocations: int) -> dict:
        """Serves `invocations` events to one process; its peak RSS and the throughput."""
        session, process, _ = self._spawn(command, env, cwd, [event] * invocations)
        try:
            first, _, body = self._answer(session, process)
            last = first
            for _ in range(invocations - 1):
                last, _, body = self._answer(session, process)
            status = open(f"/proc/{process.pid}/status").read()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            kib = lambda name: int(fields[name].split()[0])  # noqa: E731
            return {
                "invocations": invocations,
                "peak_rss_kib": kib("VmHWM"),
                "rss_kib": kib("VmRSS"),
                "seconds_after_first": last - first,
                "last_response": json.loads(body),
            }
        finally:
            self._stop(session, process)


def cold_starts(
    emulator: Emulator, command, env, cwd, event: bytes, runs: int, warmup: int = 1, check=None
):
    """`runs` cold starts after `warmup` discarded ones (page cache, bytecode cache). `check`,
    when given, is called with every answer (parsed), the warm-up's included, and raises to
    refuse it."""
    variants = {"only": (command, env, cwd, check)}
    return interleaved_cold_starts(emulator, variants, event, runs, warmup)["only"]


def interleaved_cold_starts(emulator: Emulator, variants: dict, event: bytes, runs: int, warmup: int = 1):
    """Like `cold_starts` for several functions at once, `variants` naming each one's
    `(command, env, cwd, check)`: one round runs each in turn, so a change of load on a shared
    machine weighs on all of them alike. Returns each one's figures by name."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    first: dict[str, bytes] = {}
    for round_ in range(warmup + runs):
        for name, (command, env, cwd, check) in variants.items():
            seconds, body = emulator.cold_start(command, env, cwd, event)
            if check:
                check(json.loads(body))
            if round_ >= warmup:
                samples[name].append(seconds)
                first.setdefault(name, body)
    return {
        name: {
            "runs": runs,
            "median_ms": statistics.median(values) * 1000,
            "min_ms": min(values) * 1000,
            "max_ms": max(values) * 1000,
            "response": json.loads(first[name]),
        }
        for name, values in samples.items()
    }
