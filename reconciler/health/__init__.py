"""PURE health strategies: state machines ``step(state, observation, *, now) -> state``, each state carrying a
``Verdict`` (available or not, and why).

- ``rise_fall``: HAProxy's active-check rule (``rise`` passes in a row mark a target up, ``fall`` failures down);
- ``consecutive``: N failures in a row within a window ban a member, a cool-down releases it with a fresh count;
- ``latency``: available while the mean latency over a window is at most ``goodEnough``;
- ``outlier``: Envoy's outlier ejection: N failures in a row eject for a time that grows with each ejection (capped),
  never more than ``maxEjectedPercent`` of a set and never the last member standing.

The pool strategies (``consecutive``, ``latency``, ``outlier``) each offer a ``STRATEGY`` with the ``Strategy``
interface (``strategy``: initial state, step, cool-down, failures in a row, state codec); ``registry`` lists them
by ``type``, and the IP pools reach them only through it.

No clock, no I/O: the caller passes ``now`` (seconds on any steady clock, the same for one state's life).
"""
