"""Loading config files: the three formats, line numbers, every problem at once, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventbus.config import ConfigErrors, load_config, load_document, parse_document

YAML = """\
buses:
  orders:
    rules:
      big:
        pattern:
          source: [shop]
        targets:
          - id: hook
            http:
              endpoint: "http://127.0.0.1:9/orders"
"""

TOML = """\
[buses.orders.rules.big]
pattern = { source = ["shop"] }

[[buses.orders.rules.big.targets]]
id = "hook"

[buses.orders.rules.big.targets.http]
endpoint = "http://127.0.0.1:9/orders"
"""

JSON = json.dumps(
    {
        "buses": {
            "orders": {
                "rules": {
                    "big": {
                        "pattern": {"source": ["shop"]},
                        "targets": [{"id": "hook", "http": {"endpoint": "http://127.0.0.1:9/orders"}}],
                    }
                }
            }
        }
    },
    indent=2,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(("name", "text"), [("c.yaml", YAML), ("c.toml", TOML), ("c.json", JSON)])
def test_the_three_formats_give_the_same_config(tmp_path: Path, name: str, text: str) -> None:
    reference = load_config(write(tmp_path, "ref.yaml", YAML)).model
    assert load_config(write(tmp_path, name, text)).model == reference


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("orders.yaml", YAML.replace("http://127.0.0.1:9/orders", "ftp://x"), 10),
        ("orders.toml", TOML.replace("http://127.0.0.1:9/orders", "ftp://x"), 8),
        ("orders.json", JSON.replace("http://127.0.0.1:9/orders", "ftp://x"), 15),
    ],
)
def test_errors_name_file_line_and_key_path(tmp_path: Path, name: str, text: str, line: int) -> None:
    path = write(tmp_path, name, text)
    assert problems(path) == [
        f"{path}:{line} buses.orders.rules.big.targets[0].http.endpoint: "
        "not a valid URL (it must start with http:// or https://)"
    ]


def test_unknown_keys_get_a_suggestion_and_all_problems_come_at_once(tmp_path: Path) -> None:
    text = YAML.replace("    rules:", "    setings: {}\n    rules:").replace(
        "          - id: hook", "          - idd: hook"
    )
    text = text.replace("source: [shop]", 'source: "shop"') + "          - lgo: {}\n"
    path = write(tmp_path, "c.yaml", text)
    found = problems(path)
    assert f"{path}:3 buses.orders.setings: unknown key; did you mean 'settings'?" in found
    assert any("rules.big.pattern: Event pattern is not valid. Reason:" in p for p in found)
    assert f"{path}:9 buses.orders.rules.big.targets[0].idd: unknown key; did you mean 'id'?" in found
    assert (
        f"{path}:12 buses.orders.rules.big.targets[1]: unknown target kind 'lgo'; did you mean 'log'?"
        in found
    )
    assert len(found) == 4


def test_a_pattern_error_carries_aws_message(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", YAML.replace("source: [shop]", "source: []"))
    assert problems(path) == [
        f"{path}:5 buses.orders.rules.big.pattern: Event pattern is not valid. Reason: Empty arrays are not allowed"
    ]


def test_input_transformer_errors_carry_aws_message(tmp_path: Path) -> None:
    text = YAML + "            input_transformer:\n              input_template: '{\"a\": <nope>}'\n"
    found = problems(write(tmp_path, "c.yaml", text))
    assert found[0].endswith("InputTemplate for target hook contains invalid placeholder nope.")


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("c.yaml", "buses: [\n", "not valid YAML"),
        ("c.json", '{"buses": {,}}', "not valid JSON"),
        ("c.toml", "buses = [", "not valid TOML"),
        ("c.yaml", "- 1\n- 2\n", "the top level must be a mapping"),
        ("c.yaml", "a: 1\na: 2\n", "duplicate key"),
        ("c.ini", "x", "unknown file type"),
    ],
)
def test_malformed_files_are_one_clear_problem(tmp_path: Path, name: str, text: str, reason: str) -> None:
    found = problems(write(tmp_path, name, text))
    assert len(found) == 1 and reason in found[0]


def test_missing_file(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: file not found"]


SECRET_CONFIG = """\
connections:
  api:
    auth: {type: BASIC, username: bot, password: "${PASSWORD}"}
    invocation_http_parameters:
      header_parameters:
        X-Token: {value: "${file:token.txt}"}
buses:
  orders:
    rules:
      all:
        pattern: {source: [shop]}
        targets:
          - http: {endpoint: "http://127.0.0.1:9/x", connection: api, timeout: 0}
"""


def test_secrets_come_from_the_environment_and_files_and_never_show(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("tok-SECRET-2\n", encoding="utf-8")
    path = write(tmp_path, "c.yaml", SECRET_CONFIG)
    with pytest.raises(ConfigErrors) as caught:
        load_config(path, {"PASSWORD": "pw-SECRET-1"})
    message = str(caught.value)
    assert "timeout: Input should be greater than 0" in message
    assert "SECRET" not in message
    good = load_config(
        write(tmp_path, "g.yaml", SECRET_CONFIG.replace("timeout: 0", "timeout: 1")),
        {"PASSWORD": "pw-SECRET-1"},
    )
    connection = good.model.connections["api"]
    assert connection.auth.password.get_secret_value() == "pw-SECRET-1"
    header = connection.invocation_http_parameters.header_parameters["X-Token"]
    assert header.value.get_secret_value() == "tok-SECRET-2"
    assert "SECRET" not in repr(good.model) and "SECRET" not in str(good.model)


def test_missing_secrets_are_named_not_shown(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "c.yaml", SECRET_CONFIG))
    assert any(
        p.endswith("connections.api.auth.password: environment variable PASSWORD is not set") for p in found
    )
    assert any("secret file not found" in p for p in found)


def test_fallbacks_and_escapes(tmp_path: Path) -> None:
    document = parse_document('a: "${NOPE_X:-fallback}"\nb: "$${LITERAL}"\n', "yaml")
    from eventbus.config.secrets import interpolate

    assert interpolate(document, {}) == []
    assert document.data == {"a": "fallback", "b": "${LITERAL}"}


def test_toml_lines_follow_arrays_of_tables(tmp_path: Path) -> None:
    text = (
        TOML
        + '\n[[buses.orders.rules.big.targets]]\nid = "second"\n\n[buses.orders.rules.big.targets.log]\nlevel = "loud"\n'
    )
    path = write(tmp_path, "c.toml", text)
    found = problems(path)
    assert len(found) == 1
    assert found[0].startswith(f"{path}:14 buses.orders.rules.big.targets[1].log.level: ")


def test_json_lines_of_nested_keys(tmp_path: Path) -> None:
    document = load_document(write(tmp_path, "c.json", JSON))
    assert document.line_of(("buses", "orders", "rules", "big", "targets", 0, "http", "endpoint")) == 15
    assert document.line_of(("buses", "orders", "nothing", "here")) == 3


@pytest.mark.parametrize(
    "place",
    [
        'endpoint: "ftp://${S}"',
        'endpoint: "http://x/?k=${S}", timeout: -1',
        'endpoint: "http://x/", http_method: "${S}"',
        'endpoint: "http://x/", header_parameters: {X-Key: "${S}"}, invocation_rate_limit_per_second: 0',
        'endpoint: "http://x/*", header_parameters: {X-Key: "${S}"}',
    ],
)
def test_a_secret_in_an_invalid_config_never_shows(tmp_path: Path, place: str) -> None:
    text = (
        "buses:\n  b:\n    rules:\n      r:\n        pattern: {source: [a]}\n        targets:\n"
        f"          - http: {{{place}}}\n            input: '${{S}}'\n"
    )
    path = write(tmp_path, "c.yaml", text)
    with pytest.raises(ConfigErrors) as caught:
        load_config(path, {"S": "hunter2-SECRET"})
    assert caught.value.problems
    assert "SECRET" not in str(caught.value)
