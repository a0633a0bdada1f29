"""The rule tables of the static gate (``gate.py``): import allowlist, forbidden names and
attributes, and which string constants in an annotation typing would evaluate as code.

Data and one pure AST helper only; ``gate.py`` applies them and words the findings.
"""

from __future__ import annotations

import ast
import re

MAX_SOURCE_BYTES = 100_000
MAX_REPORTED = 25
ALLOWED_IMPORTS = frozenset(
    "math statistics numpy polars pydantic dataclasses typing collections functools itertools "
    "datetime zoneinfo __future__ trading_brain.engine.indicators".split()
)
FORBIDDEN_NAMES = frozenset(
    "eval exec compile open __import__ getattr setattr delattr globals locals vars type object "
    "breakpoint input memoryview help exit quit dir get_type_hints ForwardRef create_model "
    "get_annotations".split()
)
ALLOWED_DUNDER_ATTRS = frozenset({"__init__", "__post_init__", "__name__"})
FORBIDDEN_ATTRS = frozenset(
    # reaching the interpreter
    "sys os modules builtins ctypes ctypeslib subprocess system popen environ load_module "
    "exec_module mro format format_map "
    # evaluating annotations (strings in them are code)
    "get_type_hints ForwardRef evaluate_forward_ref get_annotations create_model "
    # numpy I/O and native access
    "load save savez savez_compressed savetxt loadtxt genfromtxt fromfile tofile fromregex memmap "
    "open_memmap lib testing f2py distutils DataSource mrecords openfile fromtextfile "
    "recfromtxt recfromcsv ndfromtxt mafromtxt show_config "
    # polars I/O, SQL, plugins, remote catalogs
    "sql SQLContext sql_expr plugins io serialize deserialize register_plugin_function dump dumps "
    "load_from_file save_to_file show_graph Catalog "
    # pydantic (v1 API) and zoneinfo file readers
    "parse_file parse_file_as schema_json_of reset_tzpath from_file".split()
)
FORBIDDEN_ATTR_PREFIXES = (
    "read_",
    "scan_",
    "write_",
    "sink_",
    "f_",
    "gi_",
    "cr_",
    "ag_",
    "tb_",
    "co_",
    "Credential",
)
ANNOTATION_EVALUATORS = frozenset(
    "get_type_hints ForwardRef evaluate_forward_ref get_annotations create_model".split()
)
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def is_named(node: ast.expr, name: str) -> bool:
    return (isinstance(node, ast.Name) and node.id == name) or (
        isinstance(node, ast.Attribute) and node.attr == name)


def string_annotations(node: ast.expr | None) -> list[ast.Constant]:
    """The string constants of an annotation that typing would evaluate as forward references
    (not ``Literal`` values, not ``Annotated`` metadata, not arguments of calls)."""
    if node is None:
        return []
    if isinstance(node, ast.Constant):
        return [node] if isinstance(node.value, str) else []
    if isinstance(node, ast.Subscript):
        if is_named(node.value, "Literal"):
            return []
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if is_named(node.value, "Annotated"):
            args = args[:1]
        return [c for a in args for c in string_annotations(a)]
    if isinstance(node, ast.BinOp):
        return string_annotations(node.left) + string_annotations(node.right)
    if isinstance(node, ast.Tuple | ast.List):
        return [c for e in node.elts for c in string_annotations(e)]
    return []
