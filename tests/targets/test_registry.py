from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from eventbus.errors import ConfigError
from eventbus.targets import registry
from eventbus.targets.base import Target, TargetConfig
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.recording import RecordingTarget

BUILTIN = ["bus", "command", "file", "function", "http", "log", "nats", "queue", "recording", "sql"]


@pytest.fixture
def plugin_dist(tmp_path: Path) -> Iterator[Path]:
    """A real (tiny) installed distribution advertising two entry points."""
    (tmp_path / "fake_sms.py").write_text(
        textwrap.dedent(
            """
            from typing import ClassVar
            from eventbus.targets.base import TargetConfig
            from eventbus.targets.recording import RecordingTarget

            class SmsConfig(TargetConfig):
                kind: ClassVar[str] = "sms"
                number: str

                def build(self):
                    return RecordingTarget(self.number)

            class NotAConfig:
                pass
            """
        )
    )
    info = tmp_path / "fake_sms-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-sms\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[eventbus.targets]\nsms = fake_sms:SmsConfig\nbroken = fake_sms:NotAConfig\nmissing = fake_sms_gone:X\n"
    )
    # The registry reads entry points again whenever sys.path changes: this and the removal
    # below are all it takes for the plug-in to appear and go.
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("sms", "broken", "missing"):
            registry._registered.pop(name, None)
        sys.modules.pop("fake_sms", None)


def test_builtin_kinds_resolve_to_their_configs() -> None:
    assert set(BUILTIN) <= set(registry.kinds())
    for kind in BUILTIN:
        assert registry.config_class(kind).kind == kind
    assert registry.config_class("function") is FunctionTargetConfig


def test_unknown_kind_lists_known_ones_and_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        registry.config_class("htpp")
    message = str(info.value)
    assert "Unknown target kind 'htpp'. Did you mean 'http'?" in message
    assert "Known kinds: bus, cloudevents, command, file, function, http" in message


def test_build_target_validates_options() -> None:
    target = registry.build_target("recording", {"name": "reg-test"})
    assert isinstance(target, Target)
    with pytest.raises(ConfigError, match=r"Invalid options for target kind 'recording': colour: Extra inputs"):
        registry.build_target("recording", {"name": "x", "colour": "red"})
    with pytest.raises(ConfigError, match="name: Field required"):
        registry.build_target("recording", {})


def test_register_a_kind_in_code() -> None:
    class EchoConfig(TargetConfig):
        kind: ClassVar[str] = "echo-test"

        def build(self) -> RecordingTarget:
            return RecordingTarget("echo")

    registry.register(EchoConfig)
    try:
        assert "echo-test" in registry.kinds()
        assert isinstance(registry.build_target("echo-test", {}), RecordingTarget)
        with pytest.raises(ConfigError, match="already registered"):
            registry.register(FunctionTargetConfig, kind="echo-test")
        registry.register(FunctionTargetConfig, kind="echo-test", replace=True)
        assert registry.config_class("echo-test") is FunctionTargetConfig
    finally:
        registry._registered.pop("echo-test", None)
    with pytest.raises(ConfigError, match="has no kind"):
        registry.register(TargetConfig)
    with pytest.raises(ConfigError, match="not a TargetConfig subclass"):
        registry.register(dict)  # type: ignore[arg-type]


def test_entry_point_kinds_are_discovered_lazily(plugin_dist: Path) -> None:
    assert {"sms", "broken", "missing"} <= set(registry.kinds())
    assert "fake_sms" not in sys.modules
    target = registry.build_target("sms", {"number": "+100"})
    assert isinstance(target, RecordingTarget) and target.name == "+100"
    with pytest.raises(ConfigError, match="must name a TargetConfig subclass"):
        registry.config_class("broken")
    with pytest.raises(ConfigError, match="failed to load: ModuleNotFoundError"):
        registry.config_class("missing")


def test_registering_a_builtin_class_again_is_a_no_op_used_or_not() -> None:
    from eventbus._plugins import PluginRegistry
    from eventbus.targets.http import HttpTargetConfig

    # A registry of its own, so that no earlier test has looked the kind up already.
    fresh = PluginRegistry(
        "Target", TargetConfig, "eventbus.targets", {"function": "eventbus.targets.function:FunctionTargetConfig"}
    )
    fresh.register(FunctionTargetConfig)  # the kind not used yet
    assert fresh.config_class("function") is FunctionTargetConfig
    fresh.register(FunctionTargetConfig)  # and after its first use
    with pytest.raises(ConfigError, match="Target kind 'function' is already registered; pass replace=True"):
        fresh.register(HttpTargetConfig, kind="function")
