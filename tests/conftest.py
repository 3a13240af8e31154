"""Shared test set-up. This folder is on sys.path (pytest's prepend import mode puts the
folder of a rootless conftest there), so test helpers such as ``netfaults`` import by name."""
