"""A smoke test with the AWS CLI v1 (from PyPI): ``aws --endpoint-url URL events ...``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .helpers import LiveServer

AWS = Path(sys.executable).with_name("aws")


def aws(live: LiveServer, home: Path, *args: str) -> Any:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "anonymous",
        "AWS_SECRET_ACCESS_KEY": "anonymous",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
    }
    result = subprocess.run(
        [str(AWS), "--endpoint-url", live.url, "--output", "json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.mark.skipif(not AWS.exists(), reason="the AWS CLI (awscli, in the test extra) is not installed")
def test_the_aws_cli_puts_events_and_manages_rules(live: LiveServer, tmp_path: Path) -> None:
    entries = json.dumps([{"Source": "cli", "DetailType": "t", "Detail": '{"from": "aws"}', "EventBusName": "orders"}])
    answer = aws(live, tmp_path, "events", "put-events", "--entries", entries)
    assert answer["FailedEntryCount"] == 0 and len(answer["Entries"]) == 1
    arn = aws(live, tmp_path, "events", "put-rule", "--name", "cli-rule", "--event-pattern", '{"source": ["cli"]}')["RuleArn"]
    assert arn == "arn:aws:events:us-east-1:123456789012:rule/cli-rule"
    rules = aws(live, tmp_path, "events", "list-rules", "--name-prefix", "cli")["Rules"]
    assert [r["Name"] for r in rules] == ["cli-rule"]
    result = aws(live, tmp_path, "events", "test-event-pattern", "--event-pattern", '{"source": ["cli"]}', "--event",
                 json.dumps({"id": "1", "source": "cli", "detail-type": "t", "account": "123456789012", "region": "us-east-1", "time": "2025-01-01T00:00:00Z"}))
    assert result == {"Result": True}
    aws(live, tmp_path, "events", "delete-rule", "--name", "cli-rule")
    assert aws(live, tmp_path, "pipes", "list-pipes", "--name-prefix", "from")["Pipes"][0]["Name"] == "from-config"
