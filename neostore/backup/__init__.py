"""The snapshot pipeline: walking the file system, the files cache and the
worker processes that chunk, encrypt and pack file content."""
