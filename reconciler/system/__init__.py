"""The only place that touches the outside world: files, git, processes, the clock.

Everything else receives data from here (a ``SourceTree``) or calls through the seams defined here.
"""
