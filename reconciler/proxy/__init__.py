"""The data plane shared by TCPProxy apps and the IP pools' proxies: our own edge-triggered epoll engine (``engine``),
apps with their listeners and balancers (``app``, ``backends``), run in the agent's loop (``in_process``) or in
worker processes (``workers``) from snapshots (``plane``), and the manager that owns apps, target health checks
(``health``, judged by ``reconciler.health.rise_fall``) and reports what runs as ``ProxyAppFacts`` (``manager``).
"""
