"""Observers read the world through the ``reconciler.system`` seams and return frozen ``*Facts``.

They decide nothing: a strategy in ``reconciler.health`` or a planner in ``reconciler.planning`` judges what they
saw. Each one is a small function or class over a seam, so tests hand it a fake from ``reconciler.testing``.
"""
