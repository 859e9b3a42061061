"""neostore-server: an HTTPS object store with accounts and grants; it holds
no key and sees only opaque objects."""
