"""``python -m repmix`` runs the command-line interface."""

from repmix.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
