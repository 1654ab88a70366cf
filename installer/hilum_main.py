"""Entry point of the frozen Hilum executable (PyInstaller analyses this file).

It is the same command line as the ``hilum`` console script (``app.cli:main``): the GUI when
started without a sub-command, the headless commands, ``--version`` and ``--self-test``.
"""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    # a frozen app must let multiprocessing's child processes start (no-op elsewhere)
    multiprocessing.freeze_support()
    sys.exit(main())
