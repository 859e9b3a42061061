"""neostore ui: a local web application to back up, browse, search and
restore, served to the user's own browser from the machine that holds the
key (docs/ui.md). It is built on the library's public API (``neostore``)
alone; installed as ``neostore_ui``."""
