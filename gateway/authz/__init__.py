"""Authorization: Casbin policy compiled into an index, and the object scope."""
