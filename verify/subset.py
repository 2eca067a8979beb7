"""Read the kernel's source and check that it is in the verifiable subset (DESIGN.md).

The subset, exactly as the verifier accepts it (anything else is rejected with the file, the
line and the reason; nothing is skipped):

module level
  - the module docstring;
  - integer constants `NAME = <int literal>` (a leading minus sign is allowed);
  - `class State` with an optional docstring and one method `__init__(self)` whose body is
    `self.field = <int literal>` statements, each with a `# [lo, hi]` range comment;
  - functions `def f(a, b, ...)` with plain positional parameters (no defaults, no *args,
    no annotations, no decorators). Public functions are the entry points, except
    `invariant`, which states the kernel's invariant. Functions named `_x` are helpers,
    inlined by the verifier at their call sites; recursion is rejected. A parameter named
    `s` is the state; entry points take it first.

statements
  a docstring (first statement only), `s.field = expr`, `local = expr`, `if/elif/else`,
  `return expr` (a bare `return` only in helpers whose value is never used), a bare call of
  a kernel helper, `pass`.

expressions
  int and bool literals; names (parameters, assigned locals, module constants); `s.field`;
  `+`, `-`; `*` with at least one constant operand (a product of two non-constant operands
  is REJECTED, not over-approximated); `//` and `%` by a positive constant (one exception:
  in the helpers of ORDER_DIVISION, where a bag order is accepted, `//` by a parameter that the
  callers have checked positive: a bag's concentration, DESIGN.md; Z3 divides exactly, the
  verifier proves the divisor positive at every call); unary `-`, `+`;
  `not`; `and`, `or`; comparisons `== != < <= > >=` (chains too); `a if c else b`;
  `min(a, b)`, `max(a, b)`; `&` and `|` (the verifier proves their operands stay in [0, 255]
  and translates them exactly, bit by bit); calls of helpers. A helper that assigns state
  fields may only be called as a statement (so evaluation order never matters).
"""
from __future__ import annotations

import ast
import hashlib
import io
import os
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

# Helpers where `x // p` by a parameter p is allowed (DESIGN.md: the order's one product of two
# inputs, a bag's concentration times the volume it infuses, is computed once, where the bag is
# accepted). The verifier adds an obligation at each such division that p > 0 on its path.
ORDER_DIVISION = frozenset({"_order_ng_per_day",     # firmware/kernel.py
                            "_drug_per_day"})        # model/observer.py: the label's same quantity

STATE_PARAM = "s"
STATE_CLASS = "State"
INVARIANT = "invariant"
BUILTINS = ("min", "max")

_RANGE = re.compile(r"#\s*\[\s*(-?\d+)\s*,\s*(-?\d+)\s*\]")


class SubsetError(Exception):
    """The kernel is not in the subset. `errors` lists (file, line, reason)."""

    def __init__(self, errors: list[tuple[str, int, str]]):
        self.errors = errors
        super().__init__("\n".join("%s:%d: %s" % e for e in errors))

    def __reduce__(self) -> tuple[type, tuple[list[tuple[str, int, str]]]]:   # from a second process
        return (SubsetError, (self.errors,))


@dataclass
class Field:
    name: str
    init: int
    lo: int
    hi: int
    line: int


@dataclass
class Function:
    name: str
    node: ast.FunctionDef
    params: list[str]
    line: int
    pure: bool = True              # assigns no state field (transitively)
    always_returns_value: bool = False
    has_bare_return: bool = False
    calls: set[str] = field(default_factory=set)

    @property
    def takes_state(self) -> bool:
        return STATE_PARAM in self.params

    @property
    def is_entry(self) -> bool:
        return not self.name.startswith("_") and self.name != INVARIANT


@dataclass
class Kernel:
    path: str                      # as given (relative paths are kept relative)
    abspath: str
    source: str
    sha256: str
    lines: list[str]
    constants: dict[str, int]
    constant_lines: dict[str, int]
    fields: list[Field]
    functions: dict[str, Function]
    comments: dict[int, str]       # line -> comment text (without '#')

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def entries(self) -> list[str]:
        return [f.name for f in self.functions.values() if f.is_entry]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def initial(self) -> dict[str, int]:
        return {f.name: f.init for f in self.fields}

    def entry_params(self, name: str) -> list[str]:
        return [p for p in self.functions[name].params if p != STATE_PARAM]


def sha256_of(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _int_literal(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int):
        return -node.operand.value
    return None


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


_BINOP_NAMES = {ast.Div: "true division '/' (produces a float)", ast.Pow: "power '**'",
                ast.LShift: "shift '<<'", ast.RShift: "shift '>>'", ast.BitXor: "xor '^'",
                ast.MatMult: "'@'"}


class _Checker:
    def __init__(self, path: str, source: str):
        self.path = path
        self.source = source
        self.errors: list[tuple[str, int, str]] = []
        self.constants: dict[str, int] = {}
        self.constant_lines: dict[str, int] = {}
        self.fields: list[Field] = []
        self.functions: dict[str, Function] = {}
        self.lines = source.splitlines()

    def err(self, node: ast.AST | int, reason: str) -> None:
        line = node if isinstance(node, int) else getattr(node, "lineno", 0)
        self.errors.append((self.path, line, reason))

    # ------------------------------------------------------------------ module
    def run(self) -> None:
        try:
            tree = ast.parse(self.source, filename=self.path)
        except SyntaxError as exc:
            self.err(exc.lineno or 0, "syntax error: %s" % exc.msg)
            return
        body = list(tree.body)
        if body and _is_docstring(body[0]):
            body = body[1:]
        for stmt in body:
            if isinstance(stmt, ast.Assign):
                self.module_constant(stmt)
            elif isinstance(stmt, ast.ClassDef):
                self.state_class(stmt)
            elif isinstance(stmt, ast.FunctionDef):
                self.function_header(stmt)
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self.err(stmt, "import is not in the verifiable subset (the kernel is self-contained)")
            elif isinstance(stmt, ast.AnnAssign):
                self.err(stmt, "annotated assignment is not in the subset; write NAME = <int literal>")
            elif _is_docstring(stmt):
                self.err(stmt, "a string expression is only allowed as the module docstring")
            else:
                self.err(stmt, "%s at module level is not in the verifiable subset" % type(stmt).__name__)
        if not any(True for _ in self.fields) and not any(e[2].startswith("class State") for e in self.errors):
            self.err(1, "no class State with fields: the kernel's state is undefined")
        for fn in self.functions.values():
            self.function_body(fn)
        self.purity_and_recursion()
        if not any(f.is_entry for f in self.functions.values()):
            self.err(1, "no public function: the kernel has no entry point")

    def module_constant(self, stmt: ast.Assign) -> None:
        if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
            self.err(stmt, "module-level assignment must be NAME = <int literal>")
            return
        name = stmt.targets[0].id
        value = _int_literal(stmt.value)
        if value is None:
            what = "a float" if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, float) else "not an int literal"
            self.err(stmt, "constant %s = ... is %s (integers only)" % (name, what))
            return
        if name in self.constants:
            self.err(stmt, "constant %s is assigned twice" % name)
            return
        if name == STATE_PARAM or name in BUILTINS:
            self.err(stmt, "constant name %s is reserved" % name)
            return
        self.constants[name] = value
        self.constant_lines[name] = stmt.lineno

    def state_class(self, cls: ast.ClassDef) -> None:
        if cls.name != STATE_CLASS:
            self.err(cls, "class %s: the only class in the subset is State" % cls.name)
            return
        if self.fields:
            self.err(cls, "class State is defined twice")
            return
        if cls.bases or cls.keywords or cls.decorator_list:
            self.err(cls, "class State must have no bases, keywords or decorators")
        body = list(cls.body)
        if body and _is_docstring(body[0]):
            body = body[1:]
        inits = [s for s in body if isinstance(s, ast.FunctionDef) and s.name == "__init__"]
        for s in body:
            if not (isinstance(s, ast.FunctionDef) and s.name == "__init__"):
                self.err(s, "class State may only define __init__(self)")
        if len(inits) != 1:
            self.err(cls, "class State must define __init__(self) exactly once")
            return
        init = inits[0]
        a = init.args
        if (len(a.args) != 1 or a.args[0].arg != "self" or a.vararg or a.kwarg or a.kwonlyargs
                or a.defaults or a.posonlyargs or init.decorator_list):
            self.err(init, "State.__init__ must take exactly (self)")
        seen: set[str] = set()
        stmts = list(init.body)
        if stmts and _is_docstring(stmts[0]):
            stmts = stmts[1:]
        for s in stmts:
            if not (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Attribute)
                    and isinstance(s.targets[0].value, ast.Name) and s.targets[0].value.id == "self"):
                self.err(s, "State.__init__ may only contain self.field = <int literal>")
                continue
            name = s.targets[0].attr
            value = _int_literal(s.value)
            if value is None:
                self.err(s, "field %s must be initialised with an int literal" % name)
                continue
            if name in seen:
                self.err(s, "field %s is declared twice" % name)
                continue
            text = self.lines[s.lineno - 1] if s.lineno - 1 < len(self.lines) else ""
            m = _RANGE.search(text[text.find("#"):] if "#" in text else "")
            if not m:
                self.err(s, "field %s has no '# [lo, hi]' range comment" % name)
                continue
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                self.err(s, "field %s: empty range [%d, %d]" % (name, lo, hi))
                continue
            seen.add(name)
            self.fields.append(Field(name, value, lo, hi, s.lineno))
        if not self.fields:
            self.err(cls, "class State declares no fields")

    def function_header(self, fn: ast.FunctionDef) -> None:
        if fn.name in self.functions:
            self.err(fn, "function %s is defined twice" % fn.name)
            return
        if fn.name in self.constants or fn.name in BUILTINS:
            self.err(fn, "function name %s clashes with a constant or builtin" % fn.name)
            return
        a = fn.args
        if fn.decorator_list:
            self.err(fn, "function %s: decorators are not in the subset" % fn.name)
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            self.err(fn, "function %s: only plain positional parameters are in the subset" % fn.name)
        if a.defaults:
            self.err(fn, "function %s: default parameter values are not in the subset" % fn.name)
        if fn.returns or any(p.annotation for p in a.args):
            self.err(fn, "function %s: annotations are not in the subset" % fn.name)
        params = [p.arg for p in a.args]
        for p in params:
            if p in self.constants:
                self.err(fn, "function %s: parameter %s shadows a module constant" % (fn.name, p))
        if len(set(params)) != len(params):
            self.err(fn, "function %s: duplicate parameter" % fn.name)
        if STATE_PARAM in params and params[0] != STATE_PARAM:
            self.err(fn, "function %s: the state parameter s must come first" % fn.name)
        info = Function(fn.name, fn, params, fn.lineno)
        if (info.is_entry or fn.name == INVARIANT) and (not params or params[0] != STATE_PARAM):
            self.err(fn, "entry point %s must take the state s as its first parameter" % fn.name)
        self.functions[fn.name] = info

    # ------------------------------------------------------------------ bodies
    def function_body(self, fn: Function) -> None:
        body = list(fn.node.body)
        if body and _is_docstring(body[0]):
            body = body[1:]
        if not body:
            self.err(fn.node, "function %s has no statements" % fn.name)
            return
        defined = set(fn.params)
        out = self.block(fn, body, defined)
        fn.always_returns_value = out is None and not fn.has_bare_return
        if (fn.is_entry or fn.name == INVARIANT) and not fn.always_returns_value:
            self.err(fn.node, "%s %s may end without returning a value (every path must return a status)"
                     % ("entry point" if fn.is_entry else "function", fn.name))

    def block(self, fn: Function, stmts: list[ast.stmt], defined: set[str]) -> set[str] | None:
        """Check statements; return the locals definitely assigned after them, or None if
        every path returns."""
        for s in stmts:
            if defined is None:
                self.err(s, "unreachable statement after return")
                return None
            if isinstance(s, ast.Assign):
                if len(s.targets) != 1:
                    self.err(s, "chained assignment is not in the subset")
                    continue
                t = s.targets[0]
                self.expr(fn, s.value, defined)
                if isinstance(t, ast.Attribute):
                    self.state_attr(fn, t)
                    fn.pure = False
                elif isinstance(t, ast.Name):
                    if t.id == STATE_PARAM:
                        self.err(s, "the state parameter s cannot be reassigned")
                    elif t.id in self.constants or t.id in self.functions or t.id in BUILTINS:
                        self.err(s, "assignment to %s, which names a constant, function or builtin" % t.id)
                    else:
                        defined = defined | {t.id}
                else:
                    self.err(s, "assignment target must be s.field or a local name (%s)" % type(t).__name__)
            elif isinstance(s, ast.If):
                self.expr(fn, s.test, defined)
                d1 = self.block(fn, s.body, set(defined))
                d2 = self.block(fn, s.orelse, set(defined)) if s.orelse else set(defined)
                if d1 is None and d2 is None:
                    defined = None  # type: ignore[assignment]
                elif d1 is None:
                    defined = d2  # type: ignore[assignment]
                elif d2 is None:
                    defined = d1
                else:
                    defined = d1 & d2
            elif isinstance(s, ast.Return):
                if s.value is None:
                    fn.has_bare_return = True
                else:
                    self.expr(fn, s.value, defined)
                defined = None  # type: ignore[assignment]
            elif isinstance(s, ast.Expr):
                if _is_docstring(s):
                    self.err(s, "a string expression is only allowed as the first statement (docstring)")
                elif isinstance(s.value, ast.Call) and isinstance(s.value.func, ast.Name) and s.value.func.id.startswith("_"):
                    self.call(fn, s.value, defined, statement=True)
                elif isinstance(s.value, ast.Call):
                    self.call(fn, s.value, defined, statement=True)
                else:
                    self.err(s, "expression statement is not in the subset (only a call of a kernel helper)")
            elif isinstance(s, ast.Pass):
                pass
            elif isinstance(s, (ast.For, ast.While, ast.AsyncFor)):
                self.err(s, "loop (%s) is not in the verifiable subset" % type(s).__name__.lower())
            elif isinstance(s, ast.AugAssign):
                self.err(s, "augmented assignment is not in the subset; write x = x + ...")
            elif isinstance(s, ast.AnnAssign):
                self.err(s, "annotated assignment is not in the subset")
            elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.err(s, "nested definition is not in the subset")
            else:
                self.err(s, "statement %s is not in the verifiable subset" % type(s).__name__)
        return defined

    def state_attr(self, fn: Function, node: ast.Attribute) -> None:
        if not (isinstance(node.value, ast.Name) and node.value.id == STATE_PARAM):
            self.err(node, "attribute access must be s.field")
            return
        if not fn.takes_state:
            self.err(node, "function %s uses s.%s but has no state parameter s" % (fn.name, node.attr))
            return
        if node.attr not in {f.name for f in self.fields}:
            self.err(node, "s.%s is not a field declared in State.__init__" % node.attr)

    def is_const(self, node: ast.expr) -> bool:
        return self.const_value(node) is not None

    def const_value(self, node: ast.expr) -> int | None:
        if isinstance(node, ast.Constant) and type(node.value) in (int, bool):
            return int(node.value)
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.constants[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = self.const_value(node.operand)
            return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)):
            a, b = self.const_value(node.left), self.const_value(node.right)
            if a is None or b is None:
                return None
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if b == 0:
                return None
            return a // b if isinstance(node.op, ast.FloorDiv) else a % b
        return None

    def expr(self, fn: Function, node: ast.expr, defined: set[str]) -> None:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, float):
                self.err(node, "float literal %r: integers only" % node.value)
            elif type(node.value) not in (int, bool):
                self.err(node, "%s literal is not in the subset (integers and booleans only)" % type(node.value).__name__)
        elif isinstance(node, ast.Name):
            if node.id == STATE_PARAM and fn.takes_state:
                self.err(node, "the state s may only be used as s.field or passed to a helper")
            elif node.id in BUILTINS:
                self.err(node, "%s may only be called" % node.id)
            elif node.id not in self.constants and node.id not in defined:
                if node.id in self.functions:
                    self.err(node, "function %s used as a value" % node.id)
                elif node.id in fn.params:
                    pass
                else:
                    self.err(node, "name %s is not a parameter, an assigned local or a module constant"
                                   " (or may be unassigned on some path)" % node.id)
        elif isinstance(node, ast.Attribute):
            self.state_attr(fn, node)
        elif isinstance(node, ast.BinOp):
            op = node.op
            if type(op) in _BINOP_NAMES:
                self.err(node, "%s is not in the subset" % _BINOP_NAMES[type(op)])
            elif isinstance(op, ast.Mult):
                if not (self.is_const(node.left) or self.is_const(node.right)):
                    self.err(node, "product of two non-constant operands is nonlinear: rejected "
                                   "(DESIGN.md: a constant times a variable; precompute it where an order is accepted)")
            elif (isinstance(op, ast.FloorDiv) and fn.name in ORDER_DIVISION and isinstance(node.right, ast.Name)
                  and node.right.id in fn.params):
                pass                        # the order's division (ORDER_DIVISION)
            elif isinstance(op, (ast.FloorDiv, ast.Mod)):
                v = self.const_value(node.right)
                if v is None:
                    self.err(node, "'%s' by a non-constant: only division by a positive constant is in the subset"
                             % ("//" if isinstance(op, ast.FloorDiv) else "%"))
                elif v <= 0:
                    self.err(node, "'%s' by %d: the divisor must be a positive constant"
                             % ("//" if isinstance(op, ast.FloorDiv) else "%", v))
            elif not isinstance(op, (ast.Add, ast.Sub, ast.BitAnd, ast.BitOr)):
                self.err(node, "operator %s is not in the subset" % type(op).__name__)
            self.expr(fn, node.left, defined)
            self.expr(fn, node.right, defined)
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Invert):
                self.err(node, "'~' is not in the subset (use 255 - x on the alarm bits)")
            self.expr(fn, node.operand, defined)
        elif isinstance(node, ast.BoolOp):
            for v in node.values:
                self.expr(fn, v, defined)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if not isinstance(op, (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
                    self.err(node, "comparison %s is not in the subset" % type(op).__name__)
            self.expr(fn, node.left, defined)
            for c in node.comparators:
                self.expr(fn, c, defined)
        elif isinstance(node, ast.IfExp):
            self.expr(fn, node.test, defined)
            self.expr(fn, node.body, defined)
            self.expr(fn, node.orelse, defined)
        elif isinstance(node, ast.Call):
            self.call(fn, node, defined, statement=False)
        else:
            self.err(node, "expression %s is not in the verifiable subset" % type(node).__name__)

    def call(self, fn: Function, node: ast.Call, defined: set[str], statement: bool) -> None:
        if not isinstance(node.func, ast.Name):
            self.err(node, "call of %s: only kernel helpers, min and max can be called" % ast.unparse(node.func))
            return
        name = node.func.id
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            self.err(node, "call of %s: keyword and starred arguments are not in the subset" % name)
            return
        if name in BUILTINS:
            if statement:
                self.err(node, "%s(...) as a statement has no effect" % name)
            if len(node.args) != 2:
                self.err(node, "%s must have exactly two arguments" % name)
            for a in node.args:
                self.expr(fn, a, defined)
            return
        if name not in self.functions:
            self.err(node, "call of unknown function %s (only kernel helpers, min and max)" % name)
            return
        callee = self.functions[name]
        if not name.startswith("_"):
            self.err(node, "call of entry point %s: only _helpers can be called (factor the code into a helper)" % name)
            return
        fn.calls.add(name)
        if len(node.args) != len(callee.params):
            self.err(node, "call of %s with %d arguments, it takes %d" % (name, len(node.args), len(callee.params)))
            return
        for p, a in zip(callee.params, node.args):
            if p == STATE_PARAM:
                if not (isinstance(a, ast.Name) and a.id == STATE_PARAM and fn.takes_state):
                    self.err(node, "call of %s: the state parameter must receive the state s" % name)
            else:
                self.expr(fn, a, defined)
        if not statement:
            node._blinpump_in_expr = True  # type: ignore[attr-defined]

    def purity_and_recursion(self) -> None:
        changed = True
        while changed:
            changed = False
            for f in self.functions.values():
                if f.pure and any(c in self.functions and not self.functions[c].pure for c in f.calls):
                    f.pure = False
                    changed = True
        # helpers called inside expressions must be pure and must return a value on every path
        for f in self.functions.values():
            for node in ast.walk(f.node):
                if isinstance(node, ast.Call) and getattr(node, "_blinpump_in_expr", False):
                    callee = self.functions[node.func.id]  # type: ignore[union-attr]
                    if not callee.pure:
                        self.err(node, "helper %s assigns state fields and is called inside an expression;"
                                       " call it as a statement" % callee.name)
                    elif not callee.always_returns_value or callee.has_bare_return:
                        self.err(node, "helper %s is used for its value but may end without returning one"
                                 % callee.name)
        # recursion: a cycle in the call graph
        state: dict[str, int] = {}

        def visit(name: str, stack: list[str]) -> None:
            state[name] = 1
            for c in sorted(self.functions[name].calls):
                if c not in self.functions:
                    continue
                if state.get(c) == 1:
                    cyc = stack[stack.index(c):] + [c] if c in stack else [name, c]
                    self.err(self._call_line(name, c), "recursion is not in the subset: %s" % " -> ".join(cyc))
                elif state.get(c) is None:
                    visit(c, stack + [c])
            state[name] = 2

        for name in self.functions:
            if name not in state:
                visit(name, [name])

    def _call_line(self, caller: str, callee: str) -> int:
        for node in ast.walk(self.functions[caller].node):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == callee:
                return node.lineno
        return self.functions[caller].line


def _comments(source: str) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def subset_errors(source: str, display_path: str = "kernel.py") -> list[tuple[str, int, str]]:
    """What load_kernel would reject in this source text, (file, line, reason) sorted by line;
    [] when it is in the subset. For checking many edited copies without writing files."""
    ck = _Checker(display_path, source)
    ck.run()
    return sorted(ck.errors, key=lambda e: e[1])


def load_kernel(path: str | os.PathLike[str], display_path: str | None = None) -> Kernel:
    """Parse and check the kernel at `path`. Raises SubsetError listing every violation."""
    p = Path(path)
    shown = display_path or str(path)
    raw = p.read_bytes()
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubsetError([(shown, 0, "not UTF-8: %s" % exc)]) from None
    ck = _Checker(shown, source)
    ck.run()
    if ck.errors:
        ck.errors.sort(key=lambda e: e[1])
        raise SubsetError(ck.errors)
    return Kernel(
        path=shown, abspath=str(p.resolve()), source=source, sha256=hashlib.sha256(raw).hexdigest(),
        lines=source.splitlines(), constants=dict(ck.constants), constant_lines=dict(ck.constant_lines),
        fields=list(ck.fields), functions=dict(ck.functions), comments=_comments(source))
