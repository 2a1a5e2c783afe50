"""``python -m workers``: run the revocation worker."""

import sys

from .app import main

sys.exit(main())
