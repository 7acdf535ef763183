"""An IP pool in front of a real nginx: six server blocks on their own ports, each leaving through its own
loopback address (proxy_bind) towards a target that refuses two of those addresses (502, 403). Traffic through
the pool proxy makes nginx log every request in our log_format; the pool bans the failing members, sends the next
1,000 connections only to the others (round-robin within one of each other, checked in nginx's own log), takes
them back after the cool-down, holds a manual ban, and counts garbage in the log without failing."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

from reconciler.capabilities.ip_pool import IPPoolCapability
from reconciler.health.consecutive import ConsecutiveState
from reconciler.model import DesiredState, HealthStrategy, IPPool
from reconciler.proxy.manager import ProxyManager
from reconciler.system.clock import SystemClock
from reconciler.testing import Driven
from tests.integration.agents import free_ports
from tests.integration.nginx_server import nginx

FORMAT = '$remote_addr - [$time_local] "$request" $status $server_port $upstream_addr $request_time'
MEMBERS = [f"127.0.0.{n}" for n in range(11, 17)]
FAILING = {"127.0.0.12": 502, "127.0.0.13": 403}

STRATEGY = HealthStrategy.model_validate(
    {
        "apiVersion": "reconciler/v1",
        "kind": "HealthStrategy",
        "metadata": {"name": "three-in-a-row"},
        "spec": {"type": "consecutive", "consecutive": {"failures": 3, "within": "1m", "cooldown": "2s"}},
    }
)


def _pool(conf: Path, log: Path, listen: int, banned: tuple[str, ...] = ()) -> IPPool:
    return IPPool.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "IPPool",
            "metadata": {"name": "egress"},
            "spec": {
                "members": {"nginxConf": str(conf)},
                "accessLog": {"path": str(log), "format": FORMAT, "from": "start"},
                "failure": {"statuses": ["4xx", "5xx"]},
                "strategy": "three-in-a-row",
                "banned": list(banned),
                "proxy": {"listen": f"127.0.0.1:{listen}", "balance": "round-robin", "emptyPool": "http-502"},
            },
        }
    )


async def _through(port: int, count: int) -> list[bytes]:
    answers = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.0\r\nHost: target\r\n\r\n")
        answers.append(await asyncio.wait_for(reader.read(), 5))
        writer.close()
    return answers


async def _pass(capability: Driven[IPPoolCapability], pool: IPPool) -> dict[str, Any]:
    observed = await capability.observe(pool)
    for target in capability.plan(pool, observed.facts, now=0.0):
        if target.changes:
            await capability.apply(pool, target)
    return {m["ip"]: (m["available"], m["reason"]) for m in observed.summary["members"]}


def test_a_pool_in_front_of_a_real_nginx(tmp_path: Path) -> None:
    target, listen, *member_ports = free_ports(len(MEMBERS) + 2)  # distinct: a shared port mixes members up
    ports = dict(zip(MEMBERS, member_ports, strict=True))
    log = tmp_path / "logs" / "pool.log"
    members_conf = tmp_path / "members.conf"
    members_conf.write_text(
        "".join(
            f"server {{\n  listen 127.0.0.1:{port};\n  proxy_bind {ip};\n  access_log {log} pool;\n"
            f"  location / {{ proxy_pass http://127.0.0.1:{target}; }}\n}}\n"
            for ip, port in ports.items()
        )
    )
    refusals = "".join(f"    if ($remote_addr = {ip}) {{ return {status}; }}\n" for ip, status in FAILING.items())
    http_block = (
        f"log_format pool '{FORMAT}';\ninclude {members_conf};\n"
        f"server {{\n  listen 127.0.0.1:{target};\n  access_log off;\n  location / {{\n{refusals}"
        f'    return 200 "ok $remote_addr\\n";\n  }}\n}}'
    )
    port_of = {str(port): ip for ip, port in ports.items()}

    async def scenario() -> None:
        capability = Driven(IPPoolCapability(ProxyManager(workers=0), SystemClock()))
        try:
            pool = _pool(members_conf, log, listen)
            capability.capability.use(
                DesiredState({"HealthStrategy": {"three-in-a-row": STRATEGY}, "IPPool": {"egress": pool}})
            )
            verdicts = await _pass(capability, pool)
            assert sorted(verdicts) == MEMBERS
            assert all(available for available, _ in verdicts.values())

            await _through(listen, 60)  # round-robin: ten each
            verdicts = await _pass(capability, pool)
            assert {ip for ip, (available, _) in verdicts.items() if not available} == set(FAILING)
            assert "3 failures in a row" in verdicts["127.0.0.12"][1]

            before = len(log.read_text().splitlines())
            answers = await _through(listen, 1000)
            assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
            served = Counter(port_of[line.split()[8]] for line in log.read_text().splitlines()[before:])
            assert set(served) == set(MEMBERS) - set(FAILING)  # nginx's own log: only available members
            assert max(served.values()) - min(served.values()) <= 1
            assert sum(served.values()) == 1000

            await asyncio.sleep(2.2)  # the cool-down
            verdicts = await _pass(capability, pool)
            assert all(available for available, _ in verdicts.values())
            assert capability.state("egress").health["127.0.0.12"].state == ConsecutiveState()  # a fresh count

            with log.open("ab") as out:
                out.write(b"garbage\n\x00\xff binary\n" + b"127.0.0.1 - [truncated\n")
            banned = _pool(members_conf, log, listen, banned=("127.0.0.14",))
            verdicts = await _pass(capability, banned)
            assert verdicts["127.0.0.14"] == (False, "Banned: listed in spec.banned")
            assert capability.state("egress").counts.unparsable == 3
            answers = await _through(listen, 40)
            reached = {m.decode() for a in answers for m in re.findall(rb"ok (\S+)", a)}
            assert reached == set(MEMBERS) - {"127.0.0.12", "127.0.0.13", "127.0.0.14"}  # the others answer ok
            assert "127.0.0.14" not in reached
        finally:  # a failed assertion must not leave the proxy's listener to the garbage collector
            await capability.capability.close(asyncio.get_running_loop().time() + 5)

    with nginx(tmp_path, http_block):
        asyncio.run(scenario())
