"""``python -m linkstack`` runs the command-line interface."""

from linkstack.cli.main import main

main()
