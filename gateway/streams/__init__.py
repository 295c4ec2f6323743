"""Streams: long-lived answers that stay authorized while they are open."""
