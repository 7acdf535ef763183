"""The asyncio TCP proxy shared by TCPProxy apps and IP pools: listeners, balancers, backend sets, health checks.

Only the choice of backend differs between the two users; everything else (connect timeout, retries, half-close,
idle timeout, connection limits, drain) is here once.
"""
