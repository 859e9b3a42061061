"""The on-disk format: pure encoders and decoders (bytes in, bytes out) and
the cryptography they use. Nothing here does I/O or keeps state."""
