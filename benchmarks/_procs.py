"""The benchmark's processes: start them on loopback, wait for them, read their CPU time and memory
from ``/proc``, and describe the machine."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: How long a process may take to start listening (LiteLLM's proxy imports a lot).
START_TIMEOUT_SECONDS = 120
#: How long a process gets to exit after SIGINT (a profiled server writes its stats then).
STOP_TIMEOUT_SECONDS = 30
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(port: int, process: subprocess.Popen[bytes], timeout: float = START_TIMEOUT_SECONDS) -> None:
    """Return once ``port`` accepts connections; raise if ``process`` died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port} after {timeout:.0f} s")


@contextlib.contextmanager
def running(argv: Sequence[str], port: int, *, env: dict[str, str] | None = None,
            log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` (its output to ``log``), wait until it listens on ``port``; SIGINT it on exit."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(list(argv), cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(port, process)
        yield process
    finally:
        stop(process)
        if log:
            out.close()  # type: ignore[union-attr]


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT the process group, then SIGKILL it if it does not exit in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # the name may hold spaces; fields follow ')'


def children(pid: int) -> list[int]:
    """The live direct children of ``pid``."""
    return [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and (fields := _stat_fields(int(entry))) and int(fields[1]) == pid]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def memory_mib(pid: int) -> dict[str, float]:
    """RSS, PSS (shared pages divided among their users) and private memory of ``pid``, in MiB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {"rss": fields.get("Rss", float("nan")), "pss": fields.get("Pss", float("nan")),
            "private": fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0)}


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its live descendants (utime+stime, /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))):
            parents.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if fields := _stat_fields(current):
            total += (int(fields[11]) + int(fields[12])) / _TICKS
        todo += parents.get(current, [])
    return total


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> dict[str, str]:
    """Cores, RAM, CPU model, OS, Python."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        ram = f"{kib / 1024 / 1024:.1f} GiB"
    return {"cores": str(os.cpu_count()), "ram": ram, "cpu": cpu, "load": load_average(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def load_average() -> str:
    """The 1-minute load average (other work on the machine skews every number)."""
    return f"{os.getloadavg()[0]:.2f}"


def versions(names: Sequence[str]) -> dict[str, str]:
    """Installed distribution versions ("-" when absent)."""
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "-"
    return found
