"""The models: every kind accepts its documented shape, every field is described, defaults are sane."""

from __future__ import annotations

import typing
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from reconciler.loading.yaml_reader import read_yaml
from reconciler.model import KINDS, EdgeNetwork, EgressAllowList, HealthStrategy, TCPProxy
from reconciler.model.health_strategy import ConsecutiveSettings
from tests.conftest import EXAMPLE


def _example_documents() -> list[dict[str, Any]]:
    return [d.data for f in sorted(EXAMPLE.rglob("*.yaml")) for d in read_yaml(f.read_text()) if d.data]


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_has_a_valid_example(kind: str) -> None:
    """The bundled example holds at least one document of every kind, and each validates with its model."""
    documents = [d for d in _example_documents() if d["kind"] == kind]
    assert documents
    for document in documents:
        assert KINDS[kind].model_validate(document).metadata.name == document["metadata"]["name"]


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for info in model.model_fields.values():
        stack = [info.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                _models(annotation, seen)
            stack.extend(typing.get_args(annotation))


def test_every_field_has_a_description() -> None:
    """Descriptions become the JSON Schema and the editor hover text, so none may be missing."""
    seen: set[type[BaseModel]] = set()
    for model in KINDS.values():
        _models(model, seen)
    undocumented = [f"{m.__name__}.{n}" for m in seen for n, i in m.model_fields.items() if not i.description]
    assert not undocumented
    assert len(seen) > 20


def test_models_are_frozen() -> None:
    """Desired state is a value: it cannot be changed after loading."""
    strategy = HealthStrategy.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "HealthStrategy",
            "metadata": {"name": "x"},
            "spec": {"type": "latency"},
        }
    )
    with pytest.raises(ValidationError):
        strategy.spec.type = "consecutive"  # type: ignore[misc]


def test_strategy_defaults_apply_when_the_block_is_left_out() -> None:
    """type: consecutive without a block means 3 failures within 5m, 10m cool-down."""
    strategy = HealthStrategy.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "HealthStrategy",
            "metadata": {"name": "x"},
            "spec": {"type": "consecutive"},
        }
    )
    assert strategy.spec.settings == ConsecutiveSettings(
        failures=3, within=timedelta(minutes=5), cooldown=timedelta(minutes=10)
    )


def test_allow_list_entries_know_their_identity() -> None:
    """An entry's identity is its kind of destination and the normalised value."""
    allow = EgressAllowList.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EgressAllowList",
            "metadata": {"name": "x"},
            "spec": {"entries": [{"domain": "API.Example.com."}, {"cidr": "2001:db8::/32"}, {"ip": "203.0.113.7"}]},
        }
    )
    assert [e.destination for e in allow.spec.entries] == [
        "domain:api.example.com",
        "cidr:2001:db8::/32",
        "ip:203.0.113.7",
    ]


def test_tcp_targets_accept_strings_and_weights() -> None:
    """'host:port' has weight 1; {address, weight} sets it."""
    proxy = TCPProxy.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "TCPProxy",
            "metadata": {"name": "x"},
            "spec": {
                "apps": [
                    {
                        "name": "a",
                        "listen": ["0.0.0.0:1"],
                        "targets": ["a.example:1", {"address": "b.example:2", "weight": 3}],
                    }
                ]
            },
        }
    )
    assert [(str(t.address), t.weight) for t in proxy.spec.apps[0].targets] == [("a.example:1", 1), ("b.example:2", 3)]


def test_nodes_select() -> None:
    """'*' selects every node; a list selects only its names."""
    edge = next(d for d in _example_documents() if d["kind"] == "EdgeNetwork")
    network = EdgeNetwork.model_validate(edge)
    assert network.spec.selects("dns-1")
    assert not network.spec.selects("gw-1")
    assert [e.mode for e in network.spec.edge_list][-2:] == ["force", "unavailable"]


def test_models_serialise_back_to_what_operators_write() -> None:
    """JSON output uses the string forms (durations, networks, ports), so it can be validated again."""
    documents = _example_documents()
    for document in documents:
        model = KINDS[document["kind"]]
        again = model.model_validate(model.model_validate(document).model_dump(mode="json", by_alias=True))
        assert again == model.model_validate(document)
