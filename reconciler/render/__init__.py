"""PURE rendering of payloads from plans: what an applier writes or a person reads, as text or bytes.

Plan renderings (text, Markdown, JSON), the node's status as text and CSV, the firewall payloads (ipset /
iptables-restore), the edge networks' zone files and the Nagios check lines live here. No I/O: a renderer returns the
payload, an applier writes it. Golden-file tests (``tests/golden.py``) keep every renderer's output under review.
"""
