"""``python -m repmix`` runs the command-line interface."""

from repmix.core.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
