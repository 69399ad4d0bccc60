"""``python -m mtopt`` (also ``torchrun ... -m mtopt``) runs the command-line interface."""

from mtopt.cli import main

if __name__ == "__main__":
    main()
