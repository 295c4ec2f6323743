"""Token issuing, kept apart from the code that verifies and decides."""
