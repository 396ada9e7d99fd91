"""newsfold: watch news feeds and get each story once."""

__version__ = "0.1.0"
__all__ = ["__version__"]
