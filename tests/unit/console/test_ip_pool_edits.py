"""IPPool edits: a ban or a release touches the banned list only."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from reconciler.console.edits import EditError
from reconciler.console.ip_pool_edits import set_banned
from tests.conftest import EXAMPLE
from tests.unit.console.test_allow_list_edits import changed

POOL = (EXAMPLE / "pools" / "egress-pool.yaml").read_text()

BLOCK_BANNED = """kind: IPPool
metadata: {name: p}
spec:
  strategy: s
  banned:
    - 203.0.113.1   # first
    - 203.0.113.2
  history: 10
"""


def test_bans_and_releases_touch_the_banned_list_only() -> None:
    banned = set_banned(POOL, "egress", "203.0.113.99", True)
    assert changed(POOL, banned) == ["-  banned: [203.0.113.9]", "+  banned: [203.0.113.9, 203.0.113.99]"]
    assert set_banned(banned, "egress", "203.0.113.99", False) == POOL
    with pytest.raises(EditError) as twice:
        set_banned(POOL, "egress", "203.0.113.9", True)
    assert twice.value.status == 409
    block = set_banned(BLOCK_BANNED, "p", "203.0.113.3", True)
    assert changed(BLOCK_BANNED, block) == ["+    - 203.0.113.3"]
    released = set_banned(BLOCK_BANNED, "p", "203.0.113.1", False)
    assert changed(BLOCK_BANNED, released) == ["-    - 203.0.113.1   # first"]
    fresh = set_banned("kind: IPPool\nmetadata: {name: q}\nspec:\n  strategy: s\n", "q", "2001:db8::5", True)
    assert YAML(typ="safe").load(fresh)["spec"]["banned"] == ["2001:db8::5"]
