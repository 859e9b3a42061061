"""The ``neostore`` command (installed as the ``neostore_cli`` package)."""
