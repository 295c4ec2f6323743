"""Sample customer-chat API that stands in for the real upstream service.

The gateway never imports this package. Tests and local demos run it as a separate
process (``python -m sample_api``) or mount ``create_app()`` in a test client. It
does not authenticate anyone: it trusts the gateway in front of it.
"""
