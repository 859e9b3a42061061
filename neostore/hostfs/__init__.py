"""What differs between the platforms' file systems, behind one interface:
extended attributes, the paths a snapshot records, and the file flags,
attributes and creation times that only some platforms have."""
