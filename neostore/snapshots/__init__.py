"""Snapshots as a reader sees them: listing, lookup and ordering, chain
verification, forget records, a put-only writer's chain head, and a share
key's view."""
