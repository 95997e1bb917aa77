"""``python -m hypotez_providers`` is the ``hypotez`` command."""

import sys

from .cli import main

sys.exit(main())
