"""Reading snapshots without restoring them: navigating trees, reading
files as streams, and finding, comparing and sizing snapshots."""
