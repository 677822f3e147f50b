"""``python -m hftcore`` is the ``hftcore`` command."""
import sys

from .cli import main

sys.exit(main())
