"""The pure planning core: (desired, observed, previous state, now) -> Plan; the safety gate; plan renderings.

Nothing here does I/O, reads the clock or logs configuration: every input is an argument.
"""
