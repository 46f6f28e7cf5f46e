"""digitdet: find every digit in a house-number photo and read the whole number."""

__version__ = "0.1.0"
