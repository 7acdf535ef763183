"""The EdgeNetwork capability through fakes (no root, no named): its part of the state file saves back unchanged
after a restore, and forget drops every piece of a network's state."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

from reconciler.capabilities.edge_network import EdgeNetworkCapability
from reconciler.model import DesiredState, EdgeNetwork
from reconciler.testing import FakeClock, FakeCommandRunner, FakeFetcher, FakeResolver


def _network(output: Path) -> EdgeNetwork:
    return EdgeNetwork.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EdgeNetwork",
            "metadata": {"name": "edges"},
            "spec": {
                "edges": ["192.0.2.21", "192.0.2.22", "192.0.2.23"],
                "object": {"url": "http://{host}/edgemanage.txt", "sha256": hashlib.sha256(b"object").hexdigest()},
                "liveCount": 2,
                "rotation": {"maxChanges": 3, "per": "30m"},
                "zones": [{"name": "example.org"}],
                "soa": {"mname": "ns.example.net.", "rname": "hostmaster.example.org."},
                "nameservers": ["ns.example.net."],
                "output": {"dir": str(output), "check": False},
            },
        }
    )


def _capability() -> EdgeNetworkCapability:
    return EdgeNetworkCapability(FakeFetcher(), FakeResolver(), FakeCommandRunner(), FakeClock())


async def _pass(capability: EdgeNetworkCapability, network: EdgeNetwork) -> None:
    observed = await capability.observe(network)
    for target in capability.plan(network, observed.facts, now=time.time()):
        await capability.apply(network, target)


def test_a_restored_state_saves_back_unchanged_and_forget_drops_all_of_it(tmp_path: Path) -> None:
    """The rotation window (30m) was written back as the default 600 s after a restore until the first observation,
    and forget kept it: a restored state is now saved byte for byte as it was read, and forget leaves nothing."""
    network = _network(tmp_path / "zones")
    first = _capability()
    first.use(DesiredState({"EdgeNetwork": {"edges": network}}))
    asyncio.run(_pass(first, network))
    saved = json.dumps(first.saved(), sort_keys=True)
    assert '"per": 1800.0' in saved

    restored = _capability()
    restored.restore(json.loads(saved))
    assert json.dumps(restored.saved(), sort_keys=True) == saved
    assert restored.rotation_windows == {"edges": 1800.0}

    asyncio.run(restored.forget("edges"))
    assert (restored.networks, restored.rotation_windows, restored.live_wanted) == ({}, {}, {})
    assert restored.saved() == {"networks": {}}
