"""Op families; each module holds forwards and their derivative rules side by side."""
