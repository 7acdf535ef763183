"""Capabilities: one per kind the agent enforces, each behind the ``Capability`` contract (``base``), all listed in
``registry``, the only module of this package the agent imports."""
