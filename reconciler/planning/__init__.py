"""The pure planning core: (desired, observed, previous state, now) -> typed target plans, one module per
job (egress and firewall, routes, pools, edges, TCP proxy), and the safety gate (``gate``); ``plan`` holds the
plan types.

Nothing here does I/O, reads the clock or logs configuration: every input is an argument.
"""
