"""``python -m sessionsvc``: the same as the ``sessionsvc`` command."""

import sys

from .cli import main

sys.exit(main())
