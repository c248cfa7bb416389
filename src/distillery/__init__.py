"""distillery: a declarative, versioned pipeline for distilled reasoning datasets."""

__version__ = "0.1.0"
