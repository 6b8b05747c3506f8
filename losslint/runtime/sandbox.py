"""The worker process that runs slices, and the parent's handle on it.

The worker is a fresh, isolated interpreter (`python -I`) started with a scrubbed
environment in an empty temporary directory. It imports torch once, then, before it
accepts any work, limits itself: address space (RLIMIT_AS), file size zero
(RLIMIT_FSIZE: it cannot write a byte to any file), no core dumps, no new processes
(RLIMIT_NPROC), a CPU-time budget per request (RLIMIT_CPU, whose signal interrupts
the slice) and, where it runs as root, a network namespace of its own. The parent
adds a wall-clock limit per request and kills the worker (by its pid) when it is
exceeded; a worker that dies or is killed is replaced for the next finding.

Requests and answers are JSON lines: the parent never unpickles anything the worker
sends. Programs arrive already checked against the allow-list; the worker checks
them again and runs them with namespaces that hold only the allowed names.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from losslint.runtime.verdict import Confirmation, not_executable

_BOOT = (
    "import sys, json; sys.path[:0] = json.loads(sys.argv[1]); "
    "from losslint.runtime.sandbox import serve; serve(json.loads(sys.argv[2]))"
)


@dataclass(frozen=True)
class Limits:
    cpu_seconds: float = 20.0  # per finding
    wall_seconds: float = 40.0  # per finding, enforced by the parent
    memory_bytes: int = 2 << 30  # address space on top of what the worker uses after importing torch
    startup_seconds: float = 120.0
    lifetime_cpu_seconds: int = 3600  # the hard CPU limit of the whole worker


class SandboxError(RuntimeError):
    """The worker could not be started or could not limit itself."""


def unsupported_reason(platform: str | None = None) -> str | None:
    """Why this platform cannot sandbox the worker (None when it can); --confirm then refuses to run."""
    platform = platform or sys.platform
    if os.name != "posix" or platform.startswith(("win", "cygwin")):
        return (f"--confirm needs POSIX process limits (memory, CPU time, file size), which {platform} does not "
                "provide; it does not run code unsandboxed")
    try:
        import resource
    except ImportError:
        return "--confirm needs the POSIX `resource` module, which this Python does not have"
    missing = [name for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE") if not hasattr(resource, name)]
    if missing:
        return f"--confirm needs POSIX limits {', '.join(missing)}, which {platform} does not provide"
    if not platform.startswith("linux"):
        return f"--confirm enforces its memory limit with RLIMIT_AS, which {platform} does not honour"
    return None


def scrubbed_environment(home: str) -> dict[str, str]:
    """The only variables the worker sees: nothing from the user's environment leaks in."""
    return {
        "PATH": os.defpath,
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }


class Worker:
    """The parent's handle: start lazily, send a plan, wait with a deadline, replace after a crash."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.process: subprocess.Popen | None = None
        self.home: str | None = None
        self._buffer = b""
        self._ready = False
        self._began = 0.0
        self.started = 0
        self.startup_seconds = 0.0

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the worker and wait until it has imported torch and limited itself."""
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Start the worker without waiting (it imports torch while the parent prepares the slices)."""
        reason = unsupported_reason()
        if reason:
            raise SandboxError(reason)
        self._began = time.perf_counter()
        self.home = tempfile.mkdtemp(prefix="losslint-confirm-")
        paths = _import_paths()
        settings = {"memory_bytes": self.limits.memory_bytes, "lifetime_cpu_seconds": self.limits.lifetime_cpu_seconds}
        debug = os.environ.get("LOSSLINT_RUNTIME_DEBUG") == "1"
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, json.dumps(paths), json.dumps(settings)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None if debug else subprocess.DEVNULL,
            cwd=self.home, env=scrubbed_environment(self.home), close_fds=True, start_new_session=True,
        )
        self._buffer = b""
        self.started += 1
        self._ready = False

    def wait_ready(self) -> None:
        if self._ready:
            return
        hello = self._receive(self.limits.startup_seconds)
        if hello is None or not hello.get("ready"):
            detail = (hello or {}).get("error", "it exited or did not answer in time")
            self.close(graceful=False)
            raise SandboxError(f"the --confirm worker could not start: {detail}")
        self._ready = True
        self.startup_seconds = time.perf_counter() - self._began

    def status(self) -> dict[str, Any]:
        """What the worker reports about itself (environment, directory, limits): for tests and diagnostics."""
        return self.request({"kind": "status"}, self.limits.wall_seconds) or {}

    def confirm(self, plan: dict[str, Any]) -> Confirmation:
        started = time.perf_counter()
        answer = self.request({"kind": "confirm", "plan": plan, "cpu_seconds": self.limits.cpu_seconds},
                              self.limits.wall_seconds)
        if answer is None:
            elapsed = time.perf_counter() - started
            if elapsed >= self.limits.wall_seconds:
                reason = f"the slice exceeded the time limit ({self.limits.wall_seconds:g} s) and was stopped"
            else:
                reason = "the worker stopped while running the slice (time or memory limit reached)"
            return not_executable(reason, plan.get("probe"), elapsed)
        return Confirmation.from_dict(answer)

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one request; None when the worker died or missed the deadline (it is then stopped)."""
        if self.process is None or self.process.poll() is not None:
            self.close(graceful=False)
            self.start()
        self.wait_ready()
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close(graceful=False)
            return None
        answer = self._receive(timeout)
        if answer is None:
            self.close(graceful=False)
        return answer

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        stream = self.process.stdout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([stream], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(stream.fileno(), 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            return None

    def close(self, graceful: bool = True) -> None:
        process, self.process = self.process, None
        self._ready = False
        if process is not None:
            try:
                process.stdin.close()  # a healthy worker exits when its input ends
                process.wait(timeout=2 if graceful else 0)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(process.pid, signal.SIGKILL)  # the worker's own session: it and nothing else
                except ProcessLookupError:
                    pass
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None


def _import_paths() -> list[str]:
    """Where the worker finds losslint and torch: the parent's import path, minus the current directory."""
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root]
    for entry in sys.path:
        if entry and entry not in paths and Path(entry).is_absolute() and Path(entry).exists():
            paths.append(entry)
    return paths


# ---------------------------------------------------------------------------
# The worker side
# ---------------------------------------------------------------------------


def serve(settings: dict[str, Any]) -> None:  # pragma: no cover - runs in the worker process
    """The worker's main loop: import torch, limit itself, then answer requests until stdin closes."""
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # nothing the slice or torch prints can corrupt the protocol
    try:
        import math

        import torch

        torch.set_num_threads(1)
        from losslint.runtime import allowlist, probes

        environment = {"__builtins__": allowlist.safe_builtins(),
                       **allowlist.namespaces({"torch": torch, "math": math})}
        applied = _limit_self(settings)
    except Exception as error:  # report why, then give up
        _send(protocol, {"ready": False, "error": f"{type(error).__name__}: {error}"})
        return
    _send(protocol, {"ready": True, "torch": torch.__version__, "limits": applied})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if request.get("kind") == "status":
            _send(protocol, _status(applied))
            continue
        _cpu_budget(request.get("cpu_seconds", 20.0))
        try:
            result = probes.confirm(request["plan"], environment)
        except probes.OutOfTime:
            result = not_executable(f"the slice exceeded the CPU time limit ({request.get('cpu_seconds')} s)",
                                    request["plan"].get("probe"))
        _send(protocol, result.to_dict())


def _send(protocol, message: dict[str, Any]) -> None:
    protocol.write(json.dumps(message).encode() + b"\n")


def _limit_self(settings: dict[str, Any]) -> dict[str, Any]:
    import resource

    from losslint.runtime import probes

    applied: dict[str, Any] = {}
    used = _address_space()
    memory = used + int(settings["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    applied["address_space_bytes"] = memory
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write then fails with EFBIG instead of killing the worker
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    applied["file_size_bytes"] = 0
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    lifetime = int(settings["lifetime_cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (lifetime, lifetime))
    applied["lifetime_cpu_seconds"] = lifetime

    def out_of_time(signum, frame):
        raise probes.OutOfTime()

    signal.signal(signal.SIGXCPU, out_of_time)
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        applied["processes"] = 0
    except (ValueError, OSError):
        applied["processes"] = "unlimited"
    applied["network"] = "own namespace" if _leave_network() else "shared (allow-list only)"
    return applied


def _cpu_budget(seconds: float) -> None:
    """Let the next request use `seconds` more CPU time before SIGXCPU interrupts it."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(spent + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _address_space() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 30


def _leave_network() -> bool:
    """Move into an empty network namespace where that is allowed (root on Linux); best effort."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        clone_newnet = 0x40000000
        return libc.unshare(clone_newnet) == 0
    except (OSError, AttributeError):
        return False


def _status(applied: dict[str, Any]) -> dict[str, Any]:
    import resource

    return {
        "cwd": os.getcwd(),
        "environment": sorted(os.environ),
        "limits": applied,
        "rlimit_as": list(resource.getrlimit(resource.RLIMIT_AS)),
        "rlimit_fsize": list(resource.getrlimit(resource.RLIMIT_FSIZE)),
        "pid": os.getpid(),
    }
