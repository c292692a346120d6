"""The web console of ``eventbus serve``, at ``/console``.

Pages for the topology with live counters, a live tail of events with the rules they matched and
their delivery outcomes, rules (enable, disable, why recent events did or did not match), dead
letters and their redrive, archives and replays, and a sandbox for patterns and input
transformers. Rendered on the server (Jinja2, autoescaped) with one small script of its own, no
CDN; the same credentials as the API; CSRF tokens on every action; a strict Content-Security-Policy.

The modules: ``app`` (``Console``, ``mount_console``) over ``pages/`` (one module a page) over
``site`` (the gate every request passes, rendering, headers), ``tail`` (the WebSocket tail),
``graph`` (the topology, laid out), ``sandbox``, ``watch`` (what it keeps of each bus),
``dead_letters`` (the SQLite dead-letter queues), ``services`` (what the dead-letter pages drive),
``security`` (sessions, CSRF, CSP) and ``text``; ``templates/`` and ``static/`` ship in the package.
"""

from __future__ import annotations

from eventbus.console.app import Console, mount_console
from eventbus.console.services import DeadLetter, DeadLetterQueueInfo, DeadLetterService, Redriven

__all__ = ["Console", "DeadLetter", "DeadLetterQueueInfo", "DeadLetterService", "Redriven", "mount_console"]
