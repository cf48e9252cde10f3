"""CLI commands of the demo domain."""
from __future__ import annotations


def add_commands(sub, common) -> None:
    """Add this domain's sub-commands to the parser."""
