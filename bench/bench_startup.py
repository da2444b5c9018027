"""Start-up time of the command line: the median wall time of ``--runs`` fresh processes.

    uv run python bench/bench_startup.py [--runs 5]

Measured, each from process start to exit:

* ``run_bot.py classify < /dev/null``: parse, settings, the classifier, no input;
* the console started on the embedded defaults (SQLite in a temporary folder, demo members)
  and quit at once (``/quit`` on stdin);
* ``import aiogram`` alone, and ``import aiogram, pywa``: what a command paid before the CLI
  imported each command lazily;
* "before": the same two commands with the old import set loaded first (aiogram, pywa, the
  aiohttp web app and the composition root, which the old ``run_bot.py`` imported at its top
  for every command), then ``run_bot.py`` run as the script.

Two settings of Python's bytecode cache: ``cached`` (compiled modules kept, as in any normal
installation; here under a private ``PYTHONPYCACHEPREFIX`` so the checkout is left as it is)
and ``none`` (``PYTHONDONTWRITEBYTECODE=1``: every module compiled from source at every start).
Each case runs once unmeasured first (it creates and seeds the database and fills the cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CLEARED = ("REDIS_URL", "DATABASE_URL", "BALANCE_SERVICE_URL", "OTP_OUTBOX", "OTP_SECRET",
            "DATA_DIR", "SEED_DEMO_MEMBERS", "LOG_LEVEL")
# What the old run_bot.py imported at its top besides what the console needs now: the channel
# libraries and the web app (the channels' own modules are small beside them).
OLD_IMPORTS = ("import aiogram, aiogram.client.telegram, aiogram.utils.token, pywa, "
               "aiohttp.web, app.compose")
RUN_AS_SCRIPT = ("import runpy, sys; sys.argv = ['run_bot.py', *sys.argv[1:]]; "
                 "runpy.run_path('run_bot.py', run_name='__main__')")


def environment(folder: Path) -> dict[str, str]:
    """The embedded defaults in ``folder``, nothing inherited that would change them."""
    env = {k: v for k, v in os.environ.items()
           if k.upper() not in _CLEARED and not k.upper().startswith(("TELEGRAM_", "WHATSAPP_"))}
    return {**env, "PYTHONPATH": str(ROOT), "DATA_DIR": str(folder / "data"),
            "DATABASE_URL": f"sqlite:///{folder / 'bot.db'}", "SEED_DEMO_MEMBERS": "true"}


def timed(command: list[str], stdin: str, env: dict[str, str]) -> float:
    """Seconds from start to exit of one process; it must succeed."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, input=stdin, capture_output=True, text=True,
                            env=env, check=False, timeout=120)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return elapsed


def with_bytecode(env: dict[str, str], mode: str, folder: Path) -> dict[str, str]:
    """``env`` with the bytecode cache in a private folder (``cached``) or off (``none``)."""
    env = {k: v for k, v in env.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    if mode == "none":
        return {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    return {**env, "PYTHONPYCACHEPREFIX": str(folder / "pycache")}


def main() -> None:
    """Print one line per case: the median and the spread of the runs."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bytecode", choices=("both", "cached", "none"), default="both")
    args = parser.parse_args()
    python = sys.executable
    modes = ("cached", "none") if args.bytecode == "both" else (args.bytecode,)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        cases = [
            ("run_bot.py classify < /dev/null", [python, "run_bot.py", "classify"], ""),
            ("console, started and /quit", [python, "run_bot.py"], "/quit\n"),
            ("import aiogram", [python, "-c", "import aiogram"], ""),
            ("import aiogram, pywa", [python, "-c", "import aiogram, pywa"], ""),
            ("before: classify with the old imports",
             [python, "-c", f"{OLD_IMPORTS}; {RUN_AS_SCRIPT}", "classify"], ""),
            ("before: console with the old imports",
             [python, "-c", f"{OLD_IMPORTS}; {RUN_AS_SCRIPT}"], "/quit\n"),
        ]
        for mode in modes:
            env = with_bytecode(environment(Path(folder)), mode, Path(folder))
            print(f"bytecode {mode}: median of {args.runs} runs (min-max), seconds from "
                  f"process start to exit")
            for label, command, stdin in cases:
                timed(command, stdin, env)  # warm-up: the database, the bytecode cache
                times = [timed(command, stdin, env) for _ in range(args.runs)]
                print(f"  {label:<40} {statistics.median(times):6.2f}  "
                      f"({min(times):.2f}-{max(times):.2f})", flush=True)


if __name__ == "__main__":
    main()
