"""``python -m nas_prune`` runs the command line."""

from nas_prune.cli import main

main()
