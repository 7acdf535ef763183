"""What each kind declares for the cross-document checks, read from models and from raw documents alike."""

from __future__ import annotations

from reconciler.model import KINDS, EgressGateway, IPPool
from reconciler.model.common import EACH, values_at


def test_values_at_walks_lists_and_skips_what_is_missing() -> None:
    data = {"spec": {"zones": [{"include": "a.inc"}, {"template": "t"}, {"include": None}]}}
    assert list(values_at(data, ("spec", "zones", EACH, "include"))) == [(("spec", "zones", 0, "include"), "a.inc")]
    assert list(values_at(data, ("spec", "nothing", EACH))) == []
    assert list(values_at({"spec": "text"}, ("spec", "upper"))) == []  # a raw str's methods are no fields


def test_references_are_read_from_a_raw_document_as_from_the_model() -> None:
    raw = {"spec": {"allowLists": ["web", "*", 3, "mail"]}}
    assert list(EgressGateway.references_in(raw)) == [
        (("spec", "allowLists", 0), "EgressAllowList", "web"),
        (("spec", "allowLists", 3), "EgressAllowList", "mail"),
    ]
    pool = IPPool.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "IPPool",
            "metadata": {"name": "p"},
            "spec": {
                "members": {"static": [{"ip": "198.51.100.7", "port": 80}]},
                "accessLog": {"path": "/var/log/nginx/access.log"},
                "strategy": "fast",
            },
        }
    )
    assert list(IPPool.references_in(pool)) == [(("spec", "strategy"), "HealthStrategy", "fast")]


def test_every_declared_reference_names_a_kind_that_exists() -> None:
    for model in KINDS.values():
        for reference in model.REFERENCES:
            assert reference.kind in KINDS, f"{model.KIND} refers to unknown kind {reference.kind}"
