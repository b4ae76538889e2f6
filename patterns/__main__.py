"""``python -m patterns``: see :mod:`patterns.door.cli`."""

import sys


def _run() -> int:
    # Ctrl+C while the imports are still loading must exit 130 without a traceback too.
    try:
        from patterns.door.cli import main
    except KeyboardInterrupt:
        return 130
    return main()


# Guarded: a worker process (anyio's, for processes.in_processes) imports the main module
# of its parent; unguarded, it would run the command line again inside every worker.
if __name__ == "__main__":
    sys.exit(_run())
