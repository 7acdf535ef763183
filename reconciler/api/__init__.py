"""The agent's HTTP API: health, readiness, metrics, status, config, plan, and the git webhook."""
