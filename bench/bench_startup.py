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

The first console run creates and seeds the database; it is a warm-up and not counted.
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


def main() -> None:
    """Print one line per case: the median and the spread of the runs."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        env = environment(Path(folder))
        timed([python, "run_bot.py"], "/quit\n", env)  # warm-up: creates and seeds the db
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
        print(f"median of {args.runs} runs (min-max), seconds from process start to exit")
        for label, command, stdin in cases:
            times = [timed(command, stdin, env) for _ in range(args.runs)]
            print(f"  {label:<40} {statistics.median(times):6.2f}  "
                  f"({min(times):.2f}-{max(times):.2f})", flush=True)


if __name__ == "__main__":
    main()
