"""Command line: ``tensorweave backends | demo | show GRAPH.json``.

(``export`` arrives with the ONNX-config layer.)
"""
from __future__ import annotations

import argparse
import sys

from .ir.types import IRError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tensorweave", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("backends", help="list the backends and whether each is installed")
    sub.add_parser("demo", help="run the demo")
    show = sub.add_parser("show", help="print a saved IR graph")
    show.add_argument("path")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "backends":
            from .backends import registry
            chosen = registry.resolve()
            for name in registry.ALL:
                state = "installed" if registry.is_installed(name) else registry.missing_message(name)
                print(f"{name:<11} {state}{'  (default)' if name == chosen else ''}")
            return 0
        if args.cmd == "demo":
            from .demo import main as demo_main
            return demo_main()
        if args.cmd == "show":
            from .ir.serialize import load
            print(load(args.path))
            return 0
    except IRError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
