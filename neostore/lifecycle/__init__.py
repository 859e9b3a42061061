"""Keeping a repository over time: forget and retention, prune, check,
repair, rewriting snapshots (tag) and copying them between repositories."""
