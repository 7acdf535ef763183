"""The running agent, in parts that ``runner.Agent`` composes and owns the lifecycle of (run, stop, bounded
shutdown):

- ``composition``: ``compose()``, the one place every seam, default, capability and collector is built;
- ``admission``: a fetched revision admitted or refused (signature, path, files, validation, "removes
  everything");
- ``tick``: the ``Reconciler``, one pass over every resource of the admitted desired state;
- ``resource_pass``: one resource's ``Slot`` and its ``ResourcePass`` (observe with a timeout, plan, approval
  gate, apply), its ``PassOutcome``;
- ``resource_states``: the per-resource capability states the slots hold, and their read-only view;
- ``node_view``: the node's summary and status document;
- ``fetching`` (the fetch loop), ``clocks`` (the scheduler's jobs), ``handle`` (the agent's HTTP API),
  ``publishing`` (status commits), ``state_store`` (the state file and status snapshot), ``metrics``,
  ``backoff``.
"""
