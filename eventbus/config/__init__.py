"""Declarative configuration: one schema for buses, rules, targets, connections and pipes.

``load_config(path)`` reads a YAML, TOML or JSON file and validates it, raising ``ConfigErrors``
(every problem, each with file, line and key path); ``Runtime(configs)`` builds and runs what it
declares; ``json_schema()`` is the schema editors complete from.
"""

from __future__ import annotations

from eventbus.config.build import Delivered, DeliveryFailed, Runtime, TargetFactory
from eventbus.config.errors import ConfigErrors, Problem, format_path
from eventbus.config.load import Document, load_document, parse_document
from eventbus.config.schema import config_model, json_schema
from eventbus.config.validate import LoadedConfig, dump, load_config, load_configs, validate_document

__all__ = [
    "ConfigErrors",
    "Delivered",
    "DeliveryFailed",
    "Document",
    "LoadedConfig",
    "Problem",
    "Runtime",
    "TargetFactory",
    "config_model",
    "dump",
    "format_path",
    "json_schema",
    "load_config",
    "load_configs",
    "load_document",
    "parse_document",
    "validate_document",
]
