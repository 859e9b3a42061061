"""Restoring snapshots into a directory, safely against hostile trees."""
