"""A warm start for the jobs of one local Snakemake run (issue 21): a server that has imported torch
once forks a worker per ``trilemma <verb>`` job.

Why: a toy job's start-up is the interpreter plus ``import torch``, 1.3 CPU-s on the Intel Xeon and
about 3 s on the AMD EPYC kind, paid by each of the toy's ~290 jobs (a quarter of ``make run``'s CPU;
``bench/toy_budget.py``).  It is not our code and cannot be made lazier from here.  A fork of a
process that has already imported it costs milliseconds.  This is the pattern of Python's own
``multiprocessing`` forkserver (``set_forkserver_preload``), shared across the separate processes
that Snakemake starts.

How:

- The Snakefile's ``onstart`` starts the server (:func:`start`) for local execution only, and
  ``onsuccess``/``onerror`` stop it (:func:`stop`).  The server listens on a Unix socket in a private
  directory (mode 0700; no network port) named by ``$TRILEMMA_JOBSERVER``, which the jobs inherit.
- The server imports the heavy third-party modules (:data:`PRELOAD`) and **never our own**: a worker
  imports ``trilemma`` from disk after the fork, so an edit between runs is seen as in a fresh process.
- ``trilemma <verb>`` (:func:`delegate`, the client, torch-free) sends its arguments, working
  directory, environment and ``sys.path``, and passes its stdin/stdout/stderr (``SCM_RIGHTS``): the
  worker writes straight into the job's log pipe.  It then waits for the exit status and exits with
  it; a worker killed by a signal kills the client with the same signal.
- Signals: SIGTERM/SIGINT/SIGHUP to the client are forwarded to the worker (the training loop's
  checkpoint-on-SIGTERM works as before).  If the client dies (SIGKILL of Snakemake's process group:
  ``tests/faults``), its socket closes and the server SIGKILLs the worker at once, so nothing is
  published after the job is gone.  The server and its workers are in Snakemake's process group too.
- A worker is a fresh job in every way the results can see: the client's environment, working
  directory and ``sys.path``, signal handlers at their defaults.  Settings read once when the
  interpreter, torch or a BLAS library starts (``PYTHONHASHSEED``, ``PYTHONPATH``, the interpreter,
  the thread counts ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``OPENBLAS_*``, ``ATEN_CPU_CAPABILITY``,
  ``LD_*``, ...) must equal the server's (:func:`compat_key`).  The server runs with a one-thread
  job's settings (Snakemake sets ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and four more to a rule's threads;
  numpy's and scipy's OpenBLAS size their thread pools from them when imported), so a job with more
  threads, another start-up environment, no server, or ``TRILEMMA_NO_JOBSERVER=1`` runs the verb
  itself, as before.  DVC and cluster executors run the verbs directly.
- The job's timing line (``trilemma/jobclock.py``) counts the client's start-up and the worker's
  imports as its start-up; the server's one import is its own (printed when it stops).

The server is single-threaded (a ``selectors`` loop over the listening socket, the clients' sockets
and a SIGCHLD wake-up pipe), so forking it is safe.
"""
from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ENV = "TRILEMMA_JOBSERVER"
DISABLE_ENV = "TRILEMMA_NO_JOBSERVER"
PRELOAD = ("torch", "torch._dynamo", "numpy", "scipy.linalg", "scipy.spatial", "scipy.integrate", "scipy.special",
           "safetensors.torch", "yaml", "pydantic", "tqdm", "pandas")   # torch._dynamo: the first optimizer imports it
TARGET = "trilemma.cli:command"   # what a worker runs: ``command(argv)``, which ends the process
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# environment read when the interpreter, torch or its math libraries start: must match the server's
STARTUP_ENV = re.compile(r"^(PYTHON(?!UNBUFFERED$)\w*|LD_\w+|MALLOC_\w+|ATEN_\w+|MKL_\w+|KMP_\w+|OMP_\w+|OPENBLAS_\w+|"
                         r"GOTO_\w+|VECLIB_\w+|NUMEXPR_\w+|ONEDNN_\w+|DNNL_\w+|TORCH_\w+|CUDA_\w+|GOMP_\w+)$")
_REFUSED: set[tuple[str, ...]] = set()   # the differences the server has reported
_HEADER = struct.Struct("!I")
_STATUS = struct.Struct("!i")


def compat_key() -> dict:
    """What a worker inherits from the server rather than from its client; equal, or no delegation.
    The interpreter by its real path: pip writes ``bin/python`` into one console script's first line
    and ``bin/python3`` into another's, links to the same interpreter."""
    import trilemma
    return {"executable": os.path.realpath(sys.executable), "prefix": sys.prefix, "version": sys.version,
            "package": os.path.dirname(os.path.abspath(trilemma.__file__)),
            "env": {k: v for k, v in sorted(os.environ.items()) if STARTUP_ENV.match(k)}}


# ----------------------------------------------------------------------------- client
def delegate(argv: list[str]) -> int | None:
    """Run ``trilemma *argv`` in a worker of the server named by ``$TRILEMMA_JOBSERVER`` and return
    its exit code (a worker killed by a signal kills this process with it).  ``None``: no usable
    server (unset, unreachable, or a different start-up environment); the caller runs the verb."""
    path = os.environ.get(ENV)
    if not path or os.environ.get(DISABLE_ENV):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    request = json.dumps({"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ), "path": sys.path,
                          "key": compat_key(), "origin": _origin()}).encode()
    fds = [fd for fd in (0, 1, 2) if _is_open(fd)]
    try:
        socket.send_fds(sock, [_HEADER.pack(len(request)) + json.dumps(fds).encode().ljust(16)], fds)
        sock.sendall(request)
        verdict = _recv_exact(sock, 1)
    except OSError:
        verdict = b""
    if verdict != b"A":   # refused (another start-up environment) or the server went away: run here
        sock.close()
        return None
    previous = {sig: signal.signal(sig, lambda signum, frame: _send(sock, b"S" + bytes([signum])))
                for sig in FORWARDED}
    try:
        status = _recv_exact(sock, _STATUS.size)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    if len(status) < _STATUS.size:
        print(f"trilemma: the job server ({path}) went away before the job ended", file=sys.stderr)
        return 1
    code = _STATUS.unpack(status)[0]
    if code < 0:   # the worker was killed by a signal: end the same way, as the job's shell expects
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):   # SIGKILL, SIGSTOP: no handler to reset
            pass
        os.kill(os.getpid(), -code)
        time.sleep(1)
        return 128 - code
    return code


def _origin() -> dict:
    """This process's start (boot-time clock) and CPU so far: the job's start-up begins here."""
    from trilemma import jobclock
    return {"boottime": time.clock_gettime(time.CLOCK_BOOTTIME) - jobclock.seconds_since_process_start(),
            "cpu": time.process_time()}


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except InterruptedError:
            continue
        if not chunk:
            break
        data += chunk
    return data


# ----------------------------------------------------------------------------- server
def serve(path: str, parent: int, target: str = TARGET) -> None:
    """Preload, listen on ``path``, and fork a worker per request until SIGTERM or until ``parent``
    (the Snakemake process) is gone."""
    import importlib
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    key = compat_key()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    os.rename(path + ".tmp", path)   # connectable only once everything is imported
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    stopping = []
    signal.signal(signal.SIGCHLD, lambda *a: None)   # a handler (not SIG_IGN): children stay reapable
    signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C reaches the workers; Snakemake stops us after
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    workers: dict[int, socket.socket] = {}   # pid -> its client's connection (until the status is sent)
    served = 0
    while not stopping and os.getppid() == parent:
        for sk, _ in sel.select(timeout=1.0):
            if sk.data == "accept":
                conn, _ = listener.accept()
                pid = _start_worker(conn, key, target, [listener.fileno(), wake_r, wake_w, sel],
                                    list(workers.values()))
                if pid:
                    workers[pid] = conn
                    sel.register(conn, selectors.EVENT_READ, pid)
                    served += 1
                else:
                    conn.close()
            elif sk.data == "wake":
                os.read(wake_r, 4096)
            else:   # a client wrote: a signal to forward, or it has gone (EOF): kill its worker
                pid, conn = sk.data, sk.fileobj
                msg = _recv_safe(conn, 2)
                if len(msg) == 2 and msg[:1] == b"S":
                    _kill(pid, msg[1])
                else:
                    _kill(pid, signal.SIGKILL)
                    sel.unregister(conn)
        while workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = workers.pop(pid, None)
            if conn is not None:
                try:
                    sel.unregister(conn)
                except (KeyError, ValueError):
                    pass
                try:
                    conn.sendall(_STATUS.pack(os.waitstatus_to_exitcode(status)))
                except OSError:
                    pass
                conn.close()
    listener.close()
    try:
        os.unlink(path)
    except OSError:
        pass
    print(f"trilemma job server: served {served} jobs; its own CPU {time.process_time():.2f} s", file=sys.stderr)


def _recv_safe(conn: socket.socket, n: int) -> bytes:
    try:
        return conn.recv(n)
    except OSError:
        return b""


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _start_worker(conn, key, target, server_fds, other_conns) -> int | None:
    """Read one request from ``conn``; refuse it, or fork the worker that runs it (returns its pid)."""
    conn.settimeout(10)
    try:
        head, fds, _, _ = socket.recv_fds(conn, _HEADER.size + 16, 3)
        size = _HEADER.unpack(head[:_HEADER.size])[0]
        order = json.loads(head[_HEADER.size:].decode())
        request = json.loads(_recv_exact(conn, size).decode())
    except (OSError, ValueError, struct.error):
        return None
    conn.settimeout(None)
    if request.get("key") != key:
        theirs = request.get("key") or {}
        differ = sorted(k for k in key if k != "env" and theirs.get(k) != key[k])
        differ += sorted(k for k in set(key["env"]) | set(theirs.get("env", {}))
                         if key["env"].get(k) != theirs.get("env", {}).get(k))
        if tuple(differ) not in _REFUSED:   # once per difference, not once per job
            _REFUSED.add(tuple(differ))
            print(f"trilemma job server: jobs with another start-up environment ({', '.join(differ)}) "
                  "run on their own", file=sys.stderr, flush=True)
        for fd in fds:
            os.close(fd)
        _send(conn, b"R")
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        _send(conn, b"A")
        return pid
    try:   # the worker
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for item in server_fds:
            if isinstance(item, selectors.BaseSelector):
                item.close()
            else:
                os.close(item)
        for other in [*other_conns, conn]:
            other.close()
        devnull = os.open(os.devnull, os.O_RDWR)
        given = dict(zip(order, fds))
        for target_fd in (0, 1, 2):
            os.dup2(given.get(target_fd, devnull), target_fd)
        for fd in [*fds, devnull]:
            if fd > 2:
                os.close(fd)
        _run(request, target)
    except BaseException:   # noqa: BLE001 - a worker never returns into the server's loop
        import traceback
        traceback.print_exc()
    finally:
        os._exit(1)


def _send(conn, data: bytes) -> None:
    try:
        conn.sendall(data)
    except OSError:
        pass


def _run(request: dict, target: str) -> None:
    """In the worker: become the client's job, then run ``target(argv)`` (which ends the process)."""
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.path[:] = request["path"]
    sys.argv = ["trilemma", *request["argv"]]
    if os.environ.get("PYTHONUNBUFFERED"):   # as ``python -u``: the job's log gets each line as written
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(line_buffering=True, write_through=True)
    from trilemma import jobclock
    jobclock.adopt_origin(request["origin"]["boottime"], request["origin"]["cpu"])
    module, _, name = target.partition(":")
    import importlib
    func = getattr(importlib.import_module(module), name)
    try:
        code = func(request["argv"])
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        import traceback
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# ----------------------------------------------------------------------------- lifetime
# what Snakemake's local executor exports for a rule with threads: 1
ONE_THREAD = dict.fromkeys(("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS",
                            "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"), "1")


def start(target: str = TARGET, timeout: float = 60.0, env: dict | None = None) -> subprocess.Popen | None:
    """Start a server for this process's jobs and export ``$TRILEMMA_JOBSERVER``; ``None`` if it
    could not start (the jobs then run as before).  Returns once it accepts connections.  The server
    runs in this process's environment updated with ``env`` (default :data:`ONE_THREAD`); it serves
    the jobs whose start-up environment equals it."""
    if os.environ.get(DISABLE_ENV):
        return None
    directory = tempfile.mkdtemp(prefix="trilemma-jobs-")   # mode 0700: only this user can connect
    path = os.path.join(directory, "socket")
    proc = subprocess.Popen([sys.executable, "-m", "trilemma.jobserver", "--socket", path, "--parent",
                             str(os.getpid()), "--target", target],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            env={**os.environ, **(ONE_THREAD if env is None else env)})
    proc.socket_path = path
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.time() > deadline:
            stop(proc)
            return None
        time.sleep(0.02)
    os.environ[ENV] = path
    return proc


def stop(proc: subprocess.Popen | None) -> None:
    """Stop a server from :func:`start` and remove its directory."""
    if proc is None:
        return
    if os.environ.get(ENV) == proc.socket_path:
        del os.environ[ENV]
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for f in (proc.socket_path, proc.socket_path + ".tmp"):
        try:
            os.unlink(f)
        except OSError:
            pass
    try:
        os.rmdir(os.path.dirname(proc.socket_path))
    except OSError:
        pass


def main() -> None:
    import argparse
    p = argparse.ArgumentParser(prog="python -m trilemma.jobserver", description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", required=True)
    p.add_argument("--parent", type=int, required=True, help="exit when this process is gone")
    p.add_argument("--target", default=TARGET, help="module:function a worker runs with the job's argv")
    args = p.parse_args()
    serve(args.socket, args.parent, args.target)


if __name__ == "__main__":
    main()
