"""PURE rendering of payloads from plans: what an applier writes or a person reads, as text or bytes.

Plans renderings (text, Markdown, JSON) live here today; the firewall (ipset / iptables-restore payloads) and the
zone files of the edge networks are rendered here too. No I/O: a renderer returns the payload, an applier writes
it. Golden-file tests (``tests/golden.py``) keep every renderer's output under review.
"""
