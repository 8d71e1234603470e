"""Headless load tests and benchmarks for gameserver.

``python -m loadtest`` drives bots that speak the real protocol (HTTP matchmaking,
then a WebSocket) against any server; ``python -m loadtest.bench`` starts a server
itself, runs the standard scenarios and writes ``docs/BENCHMARKS.md``.

Modules: :mod:`.options` (what a run is), :mod:`.wsclient` (the raw WebSocket
client the bots and the tests share), :mod:`.bot` (one connection on it),
:mod:`.worker` (a process full of bots), :mod:`.runner` (the parent: phases,
aggregation, the report), :mod:`.stats`, :mod:`.report_html`, :mod:`.cli`,
:mod:`.bench`, :mod:`.spectators` (issue 17: a spectator's cost), :mod:`.stalled`,
:mod:`.tickrate`.
"""

__version__ = "0.1.0"
