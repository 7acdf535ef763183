"""PURE rendering of payloads from plans: what an applier writes or a person reads, as text or bytes.

Plan renderings (text, Markdown, JSON), the node's status as text and the firewall payloads (ipset /
iptables-restore) live here; the zone files of the edge networks will too. No I/O: a renderer returns the
payload, an applier writes it. Golden-file tests (``tests/golden.py``) keep every renderer's output under review.
"""
