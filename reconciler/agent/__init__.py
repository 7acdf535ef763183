"""The running agent: ``runner`` (the ``Agent``: HTTP handle, fetch and publish loops, scheduler, state file,
shutdown), ``tick`` (the ``Reconciler``: revisions admitted, one slot per resource, passes, the node's status),
``validation`` (the desired-state checks CI and the console share), ``metrics`` and ``backoff``."""
