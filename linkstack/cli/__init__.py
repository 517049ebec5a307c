"""Command-line interface (``linkstack ...``)."""
