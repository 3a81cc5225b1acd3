"""Storage: the capture writer (group commit), reads for lists and details, search, engines."""
