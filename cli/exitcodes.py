"""Exit codes of the ``neostore`` command (restic's where one exists)."""

OK = 0
FATAL = 1  # any fatal error, integrity failures included
USAGE = 2  # malformed command line
PARTIAL = 3  # snapshot written, but some source files could not be read
NO_REPOSITORY = 10
LOCKED = 11
WRONG_PASSWORD = 12
PERMISSION = 13  # the key in use lacks the role for this command
INTERRUPTED = 130
