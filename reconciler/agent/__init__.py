"""The agent: wires sources (``system``) and the pure core (``loading``, later ``planning``) together."""
