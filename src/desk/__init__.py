"""desk: a keyboard-driven terminal trading desk for Interactive Brokers."""

__version__ = "0.1.0"
