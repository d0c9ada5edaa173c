"""ministack (the local AppConfig, docs/appconfig-emulator.md) for the benchmark: start it on a
free loopback port, deploy the bench flags to it with boto3, time AppConfigData's two cold-start
calls, stop it.

boto3 is only a client here: bench/.venv's boto3 talks to the server in .venv-ministack (which
pins its own botocore). Every request is SigV4-signed with dummy credentials, as ministack routes
on the signing scope.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

APPLICATION = "lockstep"
ENVIRONMENT = "bench"
PROFILE = "flags"  # Lockstep's Freeform document, for the Rust side
POWERTOOLS_PROFILE = "flags-powertools"  # the same flags in Powertools' schema, for Python
REGION = "us-east-1"
STRATEGY = "bench-all-at-once"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client_env(endpoint: str) -> dict[str, str]:
    """What a function (either side) is given to reach ministack: endpoint, dummy credentials,
    region, and no instance metadata probe."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


class Ministack:
    """`with Ministack(executable) as ms:` runs it for the block; `ms.endpoint` is its URL."""

    def __init__(self, executable: Path, log_path: Path):
        if not os.access(executable, os.X_OK):
            raise RuntimeError(f"ministack not found at {executable}: run ./scripts/venv ministack")
        self.executable = executable
        self.log_path = log_path
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Ministack":
        env = dict(
            os.environ,
            GATEWAY_PORT=str(self.port),
            BIND_HOST="127.0.0.1",
            SERVICES="appconfig,appconfigdata",
            LOG_LEVEL="WARNING",
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(self.executable)], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        try:
            self._wait_healthy(timeout=30.0)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def _wait_healthy(self, timeout: float) -> None:
        limit = time.monotonic() + timeout
        url = f"{self.endpoint}/_ministack/health"
        while time.monotonic() < limit:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"ministack exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"ministack not healthy on {url} after {timeout:.0f} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1])


def server_version(endpoint: str) -> str:
    with urllib.request.urlopen(f"{endpoint}/_ministack/health", timeout=5.0) as response:
        return json.loads(response.read()).get("version", "?")


def _client(service: str, endpoint: str):
    import boto3

    return boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION
    ).client(service, endpoint_url=endpoint)


def deploy(endpoint: str, documents: dict[str, dict], timeout: float = 30.0) -> dict[str, str]:
    """Creates the application, the environment, one Freeform profile per document and an
    all-at-once strategy (0 min, no bake), deploys each profile and waits for COMPLETE. Returns
    each profile's deployed version number."""
    appconfig = _client("appconfig", endpoint)
    app = appconfig.create_application(Name=APPLICATION)["Id"]
    env = appconfig.create_environment(ApplicationId=app, Name=ENVIRONMENT)["Id"]
    strategy = appconfig.create_deployment_strategy(
        Name=STRATEGY,
        DeploymentDurationInMinutes=0,
        GrowthFactor=100,
        FinalBakeTimeInMinutes=0,
        ReplicateTo="NONE",
    )["Id"]
    versions = {}
    for name, document in documents.items():
        profile = appconfig.create_configuration_profile(
            ApplicationId=app, Name=name, LocationUri="hosted", Type="AWS.Freeform"
        )["Id"]
        version = appconfig.create_hosted_configuration_version(
            ApplicationId=app,
            ConfigurationProfileId=profile,
            Content=json.dumps(document).encode(),
            ContentType="application/json",
        )["VersionNumber"]
        # One deployment at a time per environment (a second one is a 409 while the first runs).
        number = appconfig.start_deployment(
            ApplicationId=app,
            EnvironmentId=env,
            DeploymentStrategyId=strategy,
            ConfigurationProfileId=profile,
            ConfigurationVersion=str(version),
        )["DeploymentNumber"]
        limit = time.monotonic() + timeout
        while True:
            state = appconfig.get_deployment(
                ApplicationId=app, EnvironmentId=env, DeploymentNumber=number
            )["State"]
            if state == "COMPLETE":
                break
            if time.monotonic() > limit:
                raise RuntimeError(f"deployment {number} of {name} is {state} after {timeout:.0f} s")
            time.sleep(0.1)
        versions[name] = str(version)
    return versions


def _session(data, profile: str) -> str:
    """A new AppConfigData session's first token (the minimum interval, as the functions ask)."""
    return data.start_configuration_session(
        ApplicationIdentifier=APPLICATION,
        EnvironmentIdentifier=ENVIRONMENT,
        ConfigurationProfileIdentifier=profile,
        RequiredMinimumPollIntervalInSeconds=15,
    )["InitialConfigurationToken"]


def read_back(endpoint: str, profile: str) -> dict:
    """The deployed content of `profile`, through AppConfigData (a check that the deployment
    serves what the functions will read)."""
    data = _client("appconfigdata", endpoint)
    token = _session(data, profile)
    body = data.get_latest_configuration(ConfigurationToken=token)["Configuration"].read()
    if not body:
        raise RuntimeError(f"ministack serves an empty body for {profile}: nothing deployed?")
    return json.loads(body)


def call_split(endpoint: str, profile: str, runs: int) -> dict:
    """What a cold start pays AppConfigData for, timed from a boto3 client (medians, ms): a
    fresh session and client, then `StartConfigurationSession` and the first
    `GetLatestConfiguration` as separate round trips on one kept-alive connection. One discarded
    warm-up round first (it imports and loads the service model)."""
    samples: dict[str, list[float]] = {"client": [], "start": [], "get": []}
    for round_ in range(runs + 1):
        t0 = time.perf_counter()
        data = _client("appconfigdata", endpoint)
        t1 = time.perf_counter()
        token = _session(data, profile)
        t2 = time.perf_counter()
        body = data.get_latest_configuration(ConfigurationToken=token)["Configuration"].read()
        t3 = time.perf_counter()
        if not body:
            raise RuntimeError("GetLatestConfiguration returned an empty first body")
        data.close()
        if round_:
            samples["client"].append(t1 - t0)
            samples["start"].append(t2 - t1)
            samples["get"].append(t3 - t2)
    return {
        "runs": runs,
        **{f"{k}_ms": statistics.median(v) * 1000 for k, v in samples.items()},
    }


class TimingProxy:
    """A TCP relay in front of ministack that timestamps what goes through it, to see which
    calls a cold start makes and when (perf_counter, comparable with the emulator's spawn time).
    Used only for the traced runs: it adds a Python hop to every round trip, so the headline
    figures are measured without it."""

    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.events: list[tuple[float, int, str, bytes]] = []
        self._connections = 0
        self._closed = False
        import threading

        self._threading = threading
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            now = time.perf_counter()
            self._connections += 1
            cid = self._connections
            self.events.append((now, cid, "open", b""))
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for src, dst, direction in ((client, server, "request"), (server, client, "response")):
                self._threading.Thread(
                    target=self._pump, args=(src, dst, direction, cid), daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str, cid: int) -> None:
        try:
            while data := src.recv(65536):
                self.events.append((time.perf_counter(), cid, direction, data[:200]))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def calls_since(self, since: float) -> list[dict]:
        """The HTTP calls whose request started after `since`, in order: method, path (query
        cut), status, and ms from `since` to the request's first byte and the answer's first
        byte."""
        calls: list[dict] = []
        current: dict[int, dict] = {}
        for at, cid, direction, data in list(self.events):
            if at < since:
                continue
            if direction == "request":
                line = data.split(b"\r\n", 1)[0].decode("latin-1")
                parts = line.split(" ")
                if len(parts) == 3 and parts[2].startswith("HTTP/"):
                    call = {
                        "connection": cid,
                        "method": parts[0],
                        "path": parts[1].split("?", 1)[0],
                        "sent_ms": (at - since) * 1000,
                        "answered_ms": None,
                        "status": None,
                    }
                    current[cid] = call
                    calls.append(call)
            elif direction == "response" and cid in current and current[cid]["answered_ms"] is None:
                call = current[cid]
                call["answered_ms"] = (at - since) * 1000
                status = data.split(b"\r\n", 1)[0].split(b" ")
                call["status"] = int(status[1]) if len(status) > 1 and status[1].isdigit() else None
        return calls

    def close(self) -> None:
        self._closed = True
        self.listener.close()
