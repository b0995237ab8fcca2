#!/usr/bin/env python
"""Rewrap the `__all__ = [...]` list nbdev writes into each module to the project's line length.

    python tools/wrap_all.py [PACKAGE_DIR]        (make export runs it after nbdev-export)

nbdev wraps `__all__` at 120 characters; learners read the modules on a page that shows 100.
Only whitespace inside the list changes; the names and their order stay."""

import ast
import sys
import tomllib
from pathlib import Path
from textwrap import TextWrapper

ROOT = Path(__file__).resolve().parent.parent
PREFIX = '__all__ = '


def line_length() -> int:
    "ruff's line length from pyproject.toml."
    return tomllib.loads((ROOT / 'pyproject.toml').read_text())['tool']['ruff']['line-length']


def wrapped_all(names: list, width: int) -> str:
    "`__all__ = [...]` over lines of at most `width` characters (nbdev's layout, narrower)."
    indent = ' ' * (len(PREFIX) + 1)
    tw = TextWrapper(
        width=width, initial_indent=PREFIX, subsequent_indent=indent, break_long_words=False
    )
    return '\n'.join(tw.wrap(str(names)))


def rewrap(path: Path, width: int) -> bool:
    "Rewrap `path`'s `__all__` in place; True when the file changed."
    src = path.read_text()
    for node in ast.parse(src).body:
        targets = getattr(node, 'targets', [])
        if isinstance(node, ast.Assign) and [getattr(t, 'id', '') for t in targets] == ['__all__']:
            lines = src.splitlines(keepends=True)
            start, end = node.lineno - 1, node.end_lineno
            new = wrapped_all(ast.literal_eval(node.value), width) + '\n'
            out = ''.join(lines[:start]) + new + ''.join(lines[end:])
            if out != src:
                path.write_text(out)
            return out != src
    return False


def main(pkg: Path):
    width = line_length()
    changed = [p for p in sorted(pkg.rglob('*.py')) if p.name != '_modidx.py' and rewrap(p, width)]
    print(f'__all__ rewrapped to {width} characters in {len(changed)} module(s)')


if __name__ == '__main__':
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / 'adm_edu')
