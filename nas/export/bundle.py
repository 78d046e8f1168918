"""Cutting a standalone module out of the framework's own source files.

An exported model has to run without this package, yet every op keeps one definition. So its
module is written as ordinary code that imports what it needs from this package (`main`), and
`standalone` replaces those imports by the definitions themselves: every top-level definition
(class, function, constant) that `main` reaches in the given source files, with the statements
that finish them (``f.defvjp(...)``), in file order, and the imports they use. Any other import
must be jax, flax, optax or the standard library. A name that `main` defines replaces the
same-named definition of the source files. Type annotations bring in the imports they name but
no definitions: the module starts with ``from __future__ import annotations``, so a type it
does not hold stays an unevaluated string.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import sys
import textwrap
from pathlib import Path

ALLOWED = ("jax", "flax", "optax")
_INTERNAL = ("nas", "search_spaces")


@dataclasses.dataclass
class _Statement:
    """One top-level statement of a source file, with the global names it defines and reads."""

    start: int  # the index of its first line, the comments right above it included
    source: str
    defines: tuple[str, ...]
    uses: set[str]
    annotations: set[str]  # the names its type annotations read


@dataclasses.dataclass
class _Source:
    """One parsed source file: its docstring, statements, the names they define, its imports."""

    module: str
    docstring: str
    statements: list[_Statement]
    definitions: set[str]
    imports: dict[str, tuple[str, str | None, str]]  # bound name -> (module, attribute, alias)


def standalone(main: str, modules) -> str:
    """The source of a module: `main`, with its imports from `modules` inlined before its code.

    Args:
      main: Python source with a docstring; it imports what it uses from `modules` and
        otherwise only from jax, flax, optax and the standard library.
      modules: dotted names of the source files to inline from, in the order they are emitted.

    Raises:
      ValueError: a name that none of `modules` defines, a name defined in two of them, or an
        import of a package other than jax, flax, optax and the standard library.
    """
    top = _parse("__main__", main)
    sources = [
        _parse(m, Path(importlib.import_module(m).__file__).read_text("utf-8")) for m in modules
    ]
    owners: dict[str, _Source] = {}
    for source in sources:
        for name in source.definitions:
            if name in owners:
                raise ValueError(
                    f"bundle: {name!r} is defined in {owners[name].module} and {source.module}"
                )
            owners[name] = source
    chosen: set[int] = set()
    imports: set[tuple[str, str | None, str]] = set()
    pending = [(top, name, False) for statement in top.statements for name in statement.uses]
    pending += [(top, name, False) for name in top.imports]  # what `main` imports is its API
    while pending:
        source, name, annotation = pending.pop()
        if name in source.imports:
            module, attribute, alias = source.imports[name]
            if module.split(".")[0] not in _INTERNAL:
                _check_allowed(module, source.module)
                imports.add((module, attribute, alias))
                continue
            if annotation:
                continue  # a type of this package that the module does not need
            name = attribute or name
        elif annotation or name not in source.definitions:
            continue  # a builtin, a local name, or a type the module does not need
        if name in top.definitions:
            continue
        if name not in owners:
            raise ValueError(f"bundle: {name!r} is not defined in any of {', '.join(modules)}")
        owner = owners[name]
        for statement in owner.statements:
            if name in statement.defines and id(statement) not in chosen:
                chosen.add(id(statement))
                pending += [(owner, used, False) for used in statement.uses]
                pending += [(owner, used, True) for used in statement.annotations]
    sections = []
    for source in sources:
        picked = [s.source for s in source.statements if id(s) in chosen]
        if picked:
            sections.append("\n\n\n".join([_title(source), *picked]))
    head = [f'"""{top.docstring}"""', "from __future__ import annotations", _import_lines(imports)]
    sections.append("\n".join(main.splitlines()[top.statements[0].start :]))
    return "\n\n".join(head) + "\n\n" + "\n\n\n".join(sections) + "\n"


def _parse(module: str, text: str) -> _Source:
    lines = text.splitlines()
    tree = ast.parse(text, filename=module)
    docstring = ast.get_docstring(tree, clean=False) or ""
    source = _Source(module, docstring, [], set(), {})
    for node in tree.body[1:] if docstring else tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                source.imports[bound] = (alias.name, None, alias.asname or "")
            continue
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name
                source.imports[bound] = (node.module, alias.name, alias.asname or "")
            continue
        defines = _defined(node)
        if not defines:  # a statement finishing an earlier definition, e.g. f.defvjp(...)
            named = [n for n in ast.walk(node) if isinstance(n, ast.Name)]
            named.sort(key=lambda n: (n.lineno, n.col_offset))
            owner = next((n.id for n in named if n.id in source.definitions), None)
            if owner is None:
                raise ValueError(f"bundle: {module}, line {node.lineno}: belongs to no definition")
            defines = (owner,)
        start = _start(lines, node)
        segment = "\n".join(lines[start : node.end_lineno])
        uses, annotations = _used_names(node)
        source.statements.append(_Statement(start, segment, defines, uses, annotations))
        source.definitions.update(defines)
    return source


def _title(source: _Source) -> str:
    summary = source.docstring.strip().split("\n\n")[0].replace("\n", " ")
    return textwrap.fill(
        f"{source.module}: {summary}", 99, initial_indent="# -- ", subsequent_indent="# "
    )


def _defined(node: ast.stmt) -> tuple[str, ...]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return (node.name,)
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return tuple(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return ()


def _start(lines: list[str], node: ast.stmt) -> int:
    """The index of the statement's first line: its decorators and the comments right above it."""
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    return start


def _used_names(node: ast.AST) -> tuple[set[str], set[str]]:
    """The names the statement reads: outside type annotations, and inside them."""
    names: tuple[set[str], set[str]] = (set(), set())

    def visit(n: ast.AST, annotation: bool) -> None:
        if isinstance(n, ast.Name):
            names[annotation].add(n.id)
        for field, value in ast.iter_fields(n):
            inside = annotation or field in ("annotation", "returns")
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    visit(child, inside)

    visit(node, False)
    return names


def _check_allowed(module: str, where: str) -> None:
    top = module.split(".")[0]
    if top not in ALLOWED and top not in sys.stdlib_module_names:
        raise ValueError(
            f"bundle: {where} imports {module}; a standalone module may import only "
            f"{', '.join(ALLOWED)} and the standard library"
        )


def _import_lines(imports) -> str:
    """Import statements in isort's order: the standard library, then the rest."""
    plain, named = set(), {}
    for module, attribute, alias in imports:
        bound = f" as {alias}" if alias else ""
        if attribute is None:
            plain.add((module, f"import {module}{bound}"))
        else:
            named.setdefault(module, set()).add(f"{attribute}{bound}")
    froms = {(m, f"from {m} import {', '.join(sorted(a))}") for m, a in named.items()}
    groups = ([], [])
    for kind in (plain, froms):
        for module, line in sorted(kind):
            groups[module.split(".")[0] not in sys.stdlib_module_names].append(line)
    return "\n\n".join("\n".join(g) for g in groups if g)
