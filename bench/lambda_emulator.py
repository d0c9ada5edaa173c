"""A minimal Lambda Runtime API on 127.0.0.1, to run a function's process the way Lambda does.

It serves what a runtime needs for invocations (`GET /2018-06-01/runtime/invocation/next`,
`POST .../invocation/{id}/response` and `.../error`, `POST .../init/error`) and nothing else: no
extensions API, no telemetry. Each `next` hands out one queued event with the headers Lambda
sends; each response is timestamped when its last byte has been read.

Used by run.py for two measurements:

- cold start: spawn the process with one event queued, time from just before the spawn to the
  moment its first response has arrived, then kill it;
- peak memory: serve N events to one process, then read its VmHWM from /proc.
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
        # The session is read when the call arrives: a process killed while waiting here leaves
        # this thread on its own, old queue, never on the next run's.
        session: Session = self.server.session  # type: ignore[attr-defined]
        event = session.events.get()
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
    """The Runtime API on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.session = Session([])  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        """What Lambda sets for a function process (plus `extra`)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_LAMBDA_RUNTIME_API": self.address,
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
        self.server.session = session  # type: ignore[attr-defined]
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            env=self.environment(env),
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
    def _stop(process: subprocess.Popen) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait()

    def cold_start(self, command, env, cwd, event: bytes) -> tuple[float, bytes]:
        """Seconds from just before the spawn to the first response, and that response."""
        session, process, started = self._spawn(command, env, cwd, [event])
        try:
            at, _, body = self._answer(session, process)
            return at - started, body
        finally:
            self._stop(process)

    def serve(self, command, env, cwd, event: bytes, invocations: int) -> dict:
        """Serves `invocations` events to one process; its peak RSS and the throughput."""
        session, process, _ = self._spawn(command, env, cwd, [event] * invocations)
        try:
            first, _, _ = self._answer(session, process)
            last = first
            for _ in range(invocations - 1):
                last, _, _ = self._answer(session, process)
            status = open(f"/proc/{process.pid}/status").read()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            kib = lambda name: int(fields[name].split()[0])  # noqa: E731
            return {
                "invocations": invocations,
                "peak_rss_kib": kib("VmHWM"),
                "rss_kib": kib("VmRSS"),
                "seconds_after_first": last - first,
            }
        finally:
            self._stop(process)


def cold_starts(emulator: Emulator, command, env, cwd, event: bytes, runs: int, warmup: int = 1):
    """`runs` cold starts after `warmup` discarded ones (page cache, bytecode cache)."""
    for _ in range(warmup):
        emulator.cold_start(command, env, cwd, event)
    samples, first_body = [], None
    for _ in range(runs):
        seconds, body = emulator.cold_start(command, env, cwd, event)
        samples.append(seconds)
        first_body = first_body or body
    return {
        "runs": runs,
        "median_ms": statistics.median(samples) * 1000,
        "min_ms": min(samples) * 1000,
        "max_ms": max(samples) * 1000,
        "response": json.loads(first_body),
    }
