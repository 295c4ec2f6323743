"""Values for tests of the gateway's API."""

import itertools

_emails = itertools.count()


def new_email(label: str = "user") -> str:
    """An email address no other test user has."""
    return f"{label}-{next(_emails)}@example.com"
