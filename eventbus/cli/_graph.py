"""``eventbus graph``: the topology of config files as Mermaid (default) or DOT."""

from __future__ import annotations

import argparse
from typing import Any

from eventbus.cli._console import print_problems


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "graph",
        help="print the topology of config files",
        description=(
            "Prints sources to pipes and buses to rules to targets, as a Mermaid flowchart (default) "
            "or Graphviz DOT. Exit status 1 when a file is not valid."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--format", "-f", choices=("mermaid", "dot"), default="mermaid")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from eventbus.config import ConfigErrors, load_configs
    from eventbus.config.topology import topology

    try:
        # A drawing runs nothing: function modules are found, not imported.
        configs = load_configs(args.files, import_functions=False)
    except ConfigErrors as exc:
        print_problems(exc)
        return 1
    graph = topology(configs)
    print(graph.to_dot() if args.format == "dot" else graph.to_mermaid())
    return 0
