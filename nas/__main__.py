"""``python -m nas`` runs the `nas` command."""

import sys

from nas.cli import command

sys.exit(command())
