"""Entry point of `tox -e bench`: `python bench/run.py [--quick] [--help]`."""

import signal
import sys
from pathlib import Path

# bench/ is a top-level folder of the checkout, not part of the installed package.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from bench.main import main  # noqa: E402

if __name__ == "__main__":
    # A SIGTERM unwinds like Ctrl-C, so every process the bench started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
