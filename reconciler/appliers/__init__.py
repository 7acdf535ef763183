"""Appliers write the world through the ``reconciler.system`` seams: each takes rendered payloads or plan values
and makes the machine match them, idempotently, touching nothing that is not ours."""
