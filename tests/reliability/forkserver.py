"""A fork server for the reliability suite: each CLI case still runs as its own process, but
without paying Python's, torch's and scikit-learn's start-up (~3 s) every time.

The server is one ``python`` process that imports mtopt and the heavy libraries once and does
no computation (so no thread pool exists when it forks). For each request it forks a child
that chdirs, sets the environment, umask and file-size limit, points stdout/stderr at files and
runs ``mtopt.cli.main()`` with the request's arguments, exactly as ``python -m mtopt`` does; the
child's exit status is the command's exit code. The server waits with a timeout (a hang is
reported, and the child killed) and answers with the code and both streams.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import tempfile
import time


def _child(req: dict, out_path: str, err_path: str) -> None:
    code = 1
    try:
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        if req.get("umask") is not None:
            os.umask(int(req["umask"]))
        if req.get("fsize") is not None:
            lim = int(req["fsize"])
            resource.setrlimit(resource.RLIMIT_FSIZE, (lim, lim))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        out = os.open(out_path, os.O_WRONLY | os.O_TRUNC)
        err = os.open(err_path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.argv = ["mtopt", *req["args"]]
        from mtopt.cli import main

        try:
            main()
            code = 0
        except SystemExit as exc:
            c = exc.code
            code = c if isinstance(c, int) else (0 if c is None else 1)
            if not isinstance(c, int) and c is not None:
                print(c, file=sys.stderr)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _serve_one(req: dict) -> dict:
    fd_out, out_path = tempfile.mkstemp(prefix="mtopt-fs-out-")
    fd_err, err_path = tempfile.mkstemp(prefix="mtopt-fs-err-")
    os.close(fd_out)
    os.close(fd_err)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        _child(req, out_path, err_path)
    deadline = time.monotonic() + float(req.get("timeout", 60))
    status, timed_out = None, False
    while status is None:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
        elif time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            timed_out = True
        else:
            time.sleep(0.005)
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
    else:
        code = -os.WTERMSIG(status)
    with open(out_path, encoding="utf-8", errors="replace") as fh:
        out = fh.read()
    with open(err_path, encoding="utf-8", errors="replace") as fh:
        err = fh.read()
    os.unlink(out_path)
    os.unlink(err_path)
    return {"code": code, "out": out, "err": err, "timeout": timed_out}


def main() -> None:
    # what every CLI run imports, loaded once (imports only: no thread pool is started)
    import sklearn.metrics  # noqa: F401
    import torch
    import torch._dynamo  # noqa: F401  (torch.optim's first param group imports it)

    import mtopt.cli  # noqa: F401
    import mtopt.train.trainer  # noqa: F401

    del torch
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        print(json.dumps(_serve_one(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
