"""The commands of ``neostore``, one module per command or group; each
parses, calls the library and renders (cli/render.py)."""
