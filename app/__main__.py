"""``python -m app`` runs the Hilum command line."""

import sys

from app.cli import main

sys.exit(main())
