"""reconciler: a declarative GitOps reconciler for the network edge.

The package is laid out as docs/architecture.md describes: a pure core (``model``, ``loading``) that turns a
desired-state tree into validated data, ``system`` as the only place that touches files, git and processes,
``agent`` wiring them together, and ``cli`` (with the console's entry point) printing and exiting.
"""

__version__ = "0.1.0"
