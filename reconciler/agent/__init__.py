"""The running agent: ``runner`` (the ``Agent``: HTTP handle, fetch and publish loops, scheduler, state file,
shutdown), ``tick`` (the ``Reconciler``: revisions admitted, one slot per resource, passes, the node's status),
``publishing`` (status commits to the status branch), ``state_store`` (the state file and status snapshot),
``metrics`` and ``backoff``."""
