"""The EdgeNetwork's console edits: an edge's mode and the comment that says why; ``expected_mode`` is the
network the loader must read after."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.console.edits import (
    EditError,
    block_end,
    find_document,
    invalid,
    item_start,
    keeps_line_endings,
    refuse_bidi_controls,
    scalar,
    with_spec,
)
from reconciler.model import EdgeNetwork
from reconciler.model.edge_network import Edge

EDGE_MODES = ("available", "force", "blindforce", "unavailable")


@keeps_line_endings
def set_edge_mode(text: str, network: str, host: str, mode: str, comment: str) -> str:
    """The edge's ``mode`` with its ``comment`` (required for every mode but available)."""
    if mode not in EDGE_MODES:
        raise EditError(f"mode must be one of {', '.join(EDGE_MODES)}", 422)
    if mode != "available" and not comment.strip():
        raise EditError(f"say why {host} is {mode}: the comment is required", 422)
    refuse_bidi_controls(comment, "the comment")
    try:
        Edge(host=host, mode=mode, comment=comment.strip())
    except ValidationError as exc:
        raise invalid(f"the mode of {host}", exc) from None
    document = find_document(text, "EdgeNetwork", network)
    spec = document.get("spec")
    edges = spec.get("edges") if isinstance(spec, CommentedMap) else None
    if not isinstance(edges, CommentedSeq) or edges.fa.flow_style():
        raise EditError(f"EdgeNetwork {network} writes spec.edges in a way the console cannot edit", 422)
    for index, item in enumerate(edges):
        name = str(item.get("host", "")) if isinstance(item, Mapping) else str(item)
        if name != host:
            continue
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        start, dash = item_start(lines, edges, index)
        end = block_end(lines, start, dash)
        if mode == "available" and not comment.strip():
            written = f"{' ' * dash}- {scalar(host, in_flow=True)}\n"
        else:
            written_comment = scalar(comment.strip(), in_flow=True)
            fields = f"host: {scalar(host, in_flow=True)}, mode: {mode}, comment: {written_comment}"
            written = f"{' ' * dash}- {{{fields}}}\n"
        return "".join([*lines[:start], written, *lines[end:]])
    raise EditError(f"{host} is not an edge of EdgeNetwork {network}", 404)


def expected_mode(resource: EdgeNetwork, host: str, mode: str, comment: str) -> EdgeNetwork:
    comment = comment.strip()
    written: str | Edge = host if mode == "available" and not comment else Edge(host=host, mode=mode, comment=comment)
    edges = tuple(written if (e.host if isinstance(e, Edge) else e) == host else e for e in resource.spec.edges)
    result: EdgeNetwork = with_spec(resource, edges=edges)
    return result
