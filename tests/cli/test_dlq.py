"""``eventbus dlq list`` and ``eventbus dlq redrive`` against a real ``eventbus run`` process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import eventbus
from tests.cli.test_run import Running
from tests.cli.test_run_faults import wait_until

FLAKY = """\
import json, os

def ship(event):
    if os.path.exists(os.environ["BROKEN"]):
        raise RuntimeError("the carrier is down")
    with open(os.environ["SHIPPED"], "a", encoding="utf-8") as out:
        out.write(event["id"] + "\\n")

def audit(event):
    with open(os.environ["AUDITED"], "a", encoding="utf-8") as out:
        out.write(event["id"] + "\\n")
"""

CONFIG = """\
runtime: {{python_path: ['.']}}
buses:
  orders:
    rules:
      ship:
        pattern: {{source: [shop]}}
        targets:
          - function: {{function: 'flaky:ship'}}
            id: carrier
            retry_policy: {{MaximumRetryAttempts: 0}}
            dead_letter: {{queue: {{type: sqlite, path: '{dlq}'}}}}
      audit:
        pattern: {{source: [shop]}}
        targets:
          - function: {{function: 'flaky:audit'}}
"""


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def test_dead_letters_are_listed_and_redriven_to_the_target_they_failed_for(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(FLAKY, encoding="utf-8")
    dlq = tmp_path / "dlq.db"
    config = tmp_path / "orders.yaml"
    config.write_text(CONFIG.format(dlq=dlq), encoding="utf-8")
    broken, shipped, audited = tmp_path / "broken", tmp_path / "shipped", tmp_path / "audited"
    broken.touch()
    env = {"BROKEN": str(broken), "SHIPPED": str(shipped), "AUDITED": str(audited)}

    def letters() -> list[dict[str, object]]:
        out = eventbus("dlq", "list", str(dlq))
        return [json.loads(line) for line in out.stdout.splitlines()] if out.returncode == 0 else []

    with Running("--stdin", str(config), env=env) as run:
        run.wait_for("running: orders")
        for n in range(2):
            run.send(json.dumps({"source": "shop", "detail-type": "OrderPlaced", "detail": {"n": n}}))
        wait_until(lambda: len(letters()) == 2, "two dead letters")
        listed = letters()
        assert {(d["bus"], d["rule"], d["target"]) for d in listed} == {("orders", "ship", "carrier")}
        assert {d["error_code"] for d in listed} == {"SDK_CLIENT_ERROR"}
        assert all("the carrier is down" in str(d["error_message"]) for d in listed)
        assert {d["exhausted_retry_condition"] for d in listed} == {"MaximumRetryAttempts"}
        ids = sorted(str(d["event"]["id"]) for d in listed)  # type: ignore[index]
        wait_until(lambda: sorted(lines(audited)) == ids, "both audited")

        broken.unlink()  # the carrier is back
        redriven = eventbus("dlq", "redrive", str(dlq), "-c", str(config), "--limit", "1")
        assert redriven.returncode == 0 and "redriven 1 dead letter(s)" in redriven.stderr
        assert len(letters()) == 1
        rest = eventbus("dlq", "redrive", str(dlq), "-c", str(config))
        assert rest.returncode == 0 and "redriven 1 dead letter(s)" in rest.stderr
        wait_until(lambda: sorted(lines(shipped)) == ids, "both shipped")
        assert letters() == []
        assert sorted(lines(audited)) == ids  # the other rule is not called again
        assert run.stop() == 0


def test_a_dead_letter_for_a_target_the_config_lost_stays(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(FLAKY, encoding="utf-8")
    dlq = tmp_path / "dlq.db"
    config = tmp_path / "orders.yaml"
    config.write_text(CONFIG.format(dlq=dlq), encoding="utf-8")
    broken = tmp_path / "broken"
    broken.touch()
    env = {"BROKEN": str(broken), "SHIPPED": str(tmp_path / "s"), "AUDITED": str(tmp_path / "a")}
    with Running("--stdin", str(config), env=env) as run:
        run.wait_for("running: orders")
        run.send(json.dumps({"source": "shop", "detail-type": "OrderPlaced", "detail": {}}))
        wait_until(lambda: eventbus("dlq", "list", str(dlq)).stdout.count("\n") == 1, "a dead letter")
        assert run.stop() == 0
    config.write_text(CONFIG.format(dlq=dlq).replace("id: carrier", "id: courier"), encoding="utf-8")
    refused = eventbus("dlq", "redrive", str(dlq), "-c", str(config))
    assert refused.returncode == 1 and "has no target carrier on rule ship of bus orders" in refused.stderr
    assert eventbus("dlq", "list", str(dlq)).stdout.count("\n") == 1
    missing = eventbus("dlq", "list", str(tmp_path / "nope.db"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
