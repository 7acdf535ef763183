"""Status: conditions, the documents each agent commits under ``status/<node>/``, and the local state file."""
