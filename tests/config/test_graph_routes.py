"""``eventbus graph`` draws invocation routes: each route to the target it runs, with its guards,
and never a key."""

from __future__ import annotations

from pathlib import Path

from eventbus.config import load_config
from eventbus.config.topology import topology

CONFIG = """
targets:
  model: {function: {function: "json:dumps"}}
invoke:
  routes:
    chat:
      target: {ref: model}
      jobs: false
      api_keys: ["sk-very-secret-one", "sk-very-secret-two"]
      rate_limit: {per_second: 2.5, burst: 5}
      cache: {ttl: 300}
      max_concurrency: 4
    lookup:
      target: {http: {endpoint: "http://127.0.0.1:9/lookup"}}
"""


def test_routes_are_drawn_to_their_targets_with_their_guards(tmp_path: Path) -> None:
    path = tmp_path / "front.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    graph = topology([load_config(path, import_functions=False)])
    mermaid, dot = graph.to_mermaid(), graph.to_dot()

    assert 'route_chat>"route: chat<br/>POST /invoke/chat"]' in mermaid
    assert "route_chat -->|2 key(s), rate 2.5/s, cache 300 s, 4 at once| target_named_model" in mermaid
    assert 'route_lookup>"route: lookup<br/>POST /invoke/lookup<br/>POST /jobs/lookup"]' in mermaid
    assert "route_lookup -->|64 at once| target_route_lookup_target" in mermaid
    assert 'target_route_lookup_target["http: http://127.0.0.1:9/lookup"]' in mermaid
    assert 'route_chat [label="route: chat\\nPOST /invoke/chat", shape=cds];' in dot
    assert "secret" not in mermaid + dot
