"""Browsing snapshots as folders: ``neostore mount`` (FUSE)."""
