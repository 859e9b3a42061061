"""The repository core: opening and creating a repository, keys and roles,
targets and dedup domains, the index, and reading and writing blobs. It is
the only layer that talks to the store (through backend wrappers), and it
owns how objects are named."""
