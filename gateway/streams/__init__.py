"""Streams: long-lived responses that stay authorized while they are open."""
