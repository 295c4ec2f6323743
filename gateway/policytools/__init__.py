"""Tools for policy authors: explain one decision, test cases, diff two policies.

All three decide offline, from the config and policy files alone, through
`gateway.policytools.offline`; none of them calls the upstream.
"""
