"""Observability: structured logs and the decision record of each request."""
