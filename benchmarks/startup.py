"""How long the CLI takes to start: ``aekit --help`` and ``aekit train --help``.

Targets (issue 8): ``aekit --help`` under 0.2 s, ``aekit train --help`` under 0.5 s. Each
command runs in a fresh process, as a user would run it; the median of ``--repeat`` runs
is printed, with whether torch was imported on the way.

    python benchmarks/startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {"aekit --help": ["--help"], "aekit train --help": ["train", "--help"]}
TARGETS = {"aekit --help": 0.2, "aekit train --help": 0.5}
PROBE = "import sys, runpy; sys.argv = ['aekit', *sys.argv[1:]]; " \
        "exec('try:\\n runpy.run_module(\"aekit\", run_name=\"__main__\")\\nexcept SystemExit: pass'); " \
        "print('torch' in sys.modules, file=sys.stderr)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print("| command | median s | target s | imports torch |\n|---|---:|---:|---|")
    for name, argv in COMMANDS.items():
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "aekit", *argv], capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        probe = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True)
        torch = probe.stderr.strip().splitlines()[-1]
        print(f"| `{name}` | {statistics.median(times):.3f} | {TARGETS[name]} | {torch.lower()} |")


if __name__ == "__main__":
    main()
