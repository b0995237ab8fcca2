#!/usr/bin/env python
"""How readable the library is, in numbers: lines over 100 characters, `;`-joined statements,
the parameters of `sample`, the longest functions (statements and lines) and the lines per module.

    python tools/code_stats.py [PACKAGE_DIR]        (default: adm_edu)

nbdev's own lines (`_modidx.py`, the module docstring) are left out of the line count."""

import ast
import io
import sys
import tokenize
from pathlib import Path

MAX_LINE = 100


def nbdev_lines(tree: ast.Module) -> set:
    "Line numbers of the module docstring, which nbdev copies from the notebook's description."
    lines = set()
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        lines |= set(range(first.lineno, first.end_lineno + 1))
    return lines


def semicolons(src: str) -> int:
    "`;` tokens (outside strings and comments)."
    tokens = tokenize.generate_tokens(io.StringIO(src).readline)
    return sum(1 for t in tokens if t.type == tokenize.OP and t.string == ';')


def functions(tree: ast.Module, module: str) -> list:
    "(statements, lines, name) of every function."
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            statements = sum(1 for s in ast.walk(node) if isinstance(s, ast.stmt)) - 1
            out.append((statements, node.end_lineno - node.lineno + 1, f'{module}.{node.name}'))
    return out


def parameters(tree: ast.Module, name: str) -> int | None:
    "How many parameters the top-level function `name` takes (None: not defined here)."
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            a = node.args
            return len(a.args) + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
    return None


def main(root: Path):
    files = sorted(
        p for p in root.rglob('*.py') if p.name != '_modidx.py' and 'results' not in p.parts
    )
    long_lines = joined = 0
    funcs, sizes = [], {}
    for p in files:
        src = p.read_text()
        tree = ast.parse(src)
        skip = nbdev_lines(tree)
        lines = src.splitlines()
        long_lines += sum(
            1 for i, line in enumerate(lines, 1) if len(line) > MAX_LINE and i not in skip
        )
        joined += semicolons(src)
        sizes[str(p.relative_to(root))] = len(lines)
        funcs += functions(tree, p.stem)
        for name in ('sample', 'sample_cascade', 'generate'):
            n = parameters(tree, name)
            if n is not None and p.stem == 'sampling':
                print(f'parameters of {name}: {n}')
    print(f'lines over {MAX_LINE} characters: {long_lines}; `;` joining statements: {joined}')
    print(
        'longest functions (statements):', [(n, f) for n, _, f in sorted(funcs, reverse=True)[:10]]
    )
    by_lines = sorted(((l, f) for _, l, f in funcs), reverse=True)[:10]
    print('longest functions (lines):', by_lines)
    print(f'lines per module ({sum(sizes.values())} in all):', sizes)


if __name__ == '__main__':
    main(Path(sys.argv[1] if len(sys.argv) > 1 else 'adm_edu'))
