"""Forwarding: the authorized request sent upstream, the answer streamed back."""
