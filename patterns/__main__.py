"""``python -m patterns``: see :mod:`patterns.cli`."""

import sys


def _run() -> int:
    # Ctrl+C while the imports are still loading must exit 130 without a traceback too.
    try:
        from patterns.cli import main
    except KeyboardInterrupt:
        return 130
    return main()


sys.exit(_run())
