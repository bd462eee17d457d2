"""A stand-in for ``trilemma.cli:command`` that tests/test_jobserver.py runs in job-server workers."""
import json
import os
import signal
import sys
import time


def run(argv):
    what = argv[0]
    if what == "echo":
        print(json.dumps({"argv": argv, "cwd": os.getcwd(), "probe": os.environ.get("JS_PROBE"),
                          "pid": os.getpid(), "ppid": os.getppid(), "sys_path": sys.path[:3]}))
        print("to stderr", file=sys.stderr)
        return 0
    if what == "exit":
        return int(argv[1])
    if what == "raise":
        raise RuntimeError("boom")
    if what == "selfkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if what == "sleep":   # argv[1]: where to write the worker's pid once the SIGTERM handler is set
        def on_term(signum, frame):
            print(f"got signal {signum}", flush=True)
            sys.exit(128 + signum)
        signal.signal(signal.SIGTERM, on_term)
        with open(argv[1] + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.rename(argv[1] + ".tmp", argv[1])
        time.sleep(120)
        return 0
    raise ValueError(what)
