"""Routing: the canonical request target and the route it matches."""
