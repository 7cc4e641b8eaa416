"""`python -m contacts.cli`."""

import sys

from contacts.cli import app

sys.exit(app())
