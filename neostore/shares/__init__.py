"""Read-only shares of one sub-folder: the owner's share lists and the
capabilities writers publish to them."""
