"""``python -m jimu_cli`` runs the ``jimu`` command."""

from jimu_cli.main import main

main()
