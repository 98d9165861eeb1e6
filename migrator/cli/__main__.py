"""``python -m migrator.cli``: the same as the ``migrator`` command."""

from migrator.cli import main

main()
