"""A worktree whose query hook's common case runs in C: what a compiled hook would save.

    python3 benchmarks/overhead/variants/c_hook.py /tmp/c-hook [--commit HEAD]
    BENCH_PERFMONITOR_TREE=/tmp/c-hook python3 benchmarks/overhead/paired.py ...

Diagnostics only, not part of perfmonitor. It checks out ``--commit`` into a new
git worktree, compiles ``c_hook.c`` there as ``perfmonitor/capture/_pmhook`` for the
benchmark venv's Python (needs gcc and the interpreter's headers) and makes
``query_hook.query_timer`` the compiled function. The C function does what the
Python one does inside a request (one ContextVar read, the clock around the query,
the interned statement appended to the context's list below its cap) and hands
everything else (outside requests, suppressed, failures, past the cap, odd
statements) to the Python code. Compare it with a worktree of the same commit at a
path of the same length (``git worktree add /tmp/p-hook HEAD`` beside ``/tmp/c-hook``):
where the files are moves a build's layout (README).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
VENV_PYTHON = HERE.parent / ".venv" / "bin" / "python"
HOOK = '''from perfmonitor.capture import _pmhook  # noqa: E402  (benchmarks/overhead/variants)

_pmhook.configure(current, SUPPRESSED, _interned, _py_query_timer, _record, MAX_INTERNED_SQL)
query_timer = _pmhook.query_timer


def install(connection'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--commit", default="HEAD")
    args = parser.parse_args()
    python = str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(args.tree),
                    args.commit], check=True)
    info = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['include']); print(sysconfig.get_config_var('EXT_SUFFIX'))"],
                          check=True, capture_output=True, text=True).stdout.split()
    capture = args.tree / "perfmonitor" / "capture"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", f"-I{info[0]}", str(HERE / "c_hook.c"),
                    "-o", str(capture / f"_pmhook{info[1]}")], check=True)
    hook = capture / "query_hook.py"
    source = hook.read_text()
    timer = "def query_timer(execute: Any, sql: Any, params: Any, many: bool, context: Any)"
    if timer not in source or "def install(connection" not in source:
        sys.exit(f"{hook}: not the query hook this variant knows how to patch")
    source = source.replace(timer, timer.replace("query_timer", "_py_query_timer"))
    hook.write_text(source.replace("def install(connection", HOOK, 1))
    print(f"{args.tree}: query_timer compiled ({capture / ('_pmhook' + info[1])})")


if __name__ == "__main__":
    main()
