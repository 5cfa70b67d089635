"""``python -m aekit``: the command line."""

import sys

try:
    from aekit.cli.main import main
except KeyboardInterrupt:  # Ctrl-C while the command line was still loading
    sys.stderr.write("aekit: interrupted\n")
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
