"""``python -m mlops_core``: the command-line interface (see mlops_core/cli)."""
import sys

from mlops_core.cli import main

sys.exit(main())
