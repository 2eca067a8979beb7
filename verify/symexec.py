"""Translate the kernel subset to Z3: symbolic execution of an entry point.

`Translator.run(entry, fields, args)` executes the entry point's source on a state whose fields
are Z3 integer terms (or Python ints), with inputs that are Z3 terms (or ints), and returns the
state after the entry point and its return value as terms. Values that are known at translation
time stay Python ints, so the same code is also an interpreter of the subset: with a concrete
state and concrete inputs it computes exactly what CPython computes (tests check this).

Translation, construct by construct (Python semantics, exactly):
- ints are unbounded Z3 Ints; booleans are Z3 Bools, converted to 0/1 where Python would use
  them as ints (True + 1, storing a comparison in a field);
- `a // c` and `a % c` with a constant c > 0 are SMT-LIB `div`/`mod`, which floor like Python
  for a positive divisor; `*` has a constant operand (the subset checker enforces it);
- `and`/`or` are Z3 And/Or when every operand is boolean; otherwise they return an operand,
  like Python (`a or b` is `a if a else b`);
- `min(a, b)` is `b if b < a else a` (Python returns the first of equal values);
- `&` and `|` are translated bit by bit over 8 bits: bit i of x is (x div 2^i) mod 2. That is
  exact for operands in [0, 255]; each use records a proof obligation (guarded by its path
  condition) that its operands are in [0, 255]; the verifier proves every obligation
  (property `translation-exact`) and reports nothing as proved if one fails;
- `if` forks the state and merges it with Z3 If on the branch condition; `return` records
  (path condition, value) and makes the rest of the function dead; a helper call is inlined
  with its own path condition, and its value is the chain of its recorded returns.

Line tracking (`Translator(kernel, track_lines=True)`, used by verify/dependencies.py only): every
statement an entry point executes (an assignment, the condition of an if/elif, a return value)
gets a tracking Boolean `line_L`; its value becomes `If(line_L, value, havoc)` with a fresh
unconstrained havoc (an unconstrained Bool for a condition). Assuming every `line_L` gives the
ordinary translation; an unsat core over them names the lines a proof needs.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Union

import z3

from .subset import INVARIANT, ORDER_DIVISION, STATE_PARAM, Kernel, _is_docstring

Val = Union[int, bool, z3.ExprRef]

BIT_WIDTH = 8
BIT_MAX = (1 << BIT_WIDTH) - 1


def is_sym(v: Any) -> bool:
    return isinstance(v, z3.ExprRef)


def is_boolish(v: Any) -> bool:
    return isinstance(v, bool) or (is_sym(v) and z3.is_bool(v))


def as_int(v: Val) -> Val:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if z3.is_bool(v):
        return z3.If(v, z3.IntVal(1), z3.IntVal(0))
    return v


def as_bool(v: Val) -> Val:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v != 0
    if z3.is_bool(v):
        return v
    return v != 0


def zint(v: Val) -> z3.ArithRef:
    v = as_int(v)
    return z3.IntVal(v) if isinstance(v, int) else v


def zbool(v: Val) -> z3.BoolRef:
    v = as_bool(v)
    return z3.BoolVal(v) if isinstance(v, bool) else v


def conj(a: Val, b: Val) -> Val:
    if a is True:
        return b
    if b is True:
        return a
    if a is False or b is False:
        return False
    return z3.And(zbool(a), zbool(b))


def neg(a: Val) -> Val:
    if isinstance(a, bool):
        return not a
    return z3.Not(zbool(a))


# ---- bit-level view of small values -------------------------------------------------------
# A term built from `&`/`|` results (or from a state field in [0, 255] decomposed into bits)
# is registered with its 8 bits, so that later bit operations and the properties' bit tests
# reason propositionally instead of through div/mod. Unregistered terms fall back to the
# exact arithmetic definition bit_i(x) = (x div 2^i) mod 2.
_BITS: dict[int, tuple[z3.ExprRef, tuple[Any, ...]]] = {}


def clear_bits() -> None:
    _BITS.clear()


def bits_of(x: Val) -> tuple[Any, ...] | None:
    """The 8 bits (Python bools or Z3 Bools) of x, if x is known to be in [0, 255] bitwise."""
    if not is_sym(x):
        v = as_int(x)
        if 0 <= v <= BIT_MAX:  # type: ignore[operator]
            return tuple(bool(v >> i & 1) for i in range(BIT_WIDTH))  # type: ignore[operator]
        return None
    e = _BITS.get(x.get_id())
    if e is not None and e[0].eq(x):
        return e[1]
    return None


def value_of_bits(bits: tuple[Any, ...] | list[Any]) -> Val:
    """The integer whose bits are `bits`, registered with them."""
    if all(isinstance(b, bool) for b in bits):
        return sum(1 << i for i, b in enumerate(bits) if b)
    terms = [z3.If(b, z3.IntVal(1 << i), z3.IntVal(0)) for i, b in enumerate(bits) if not isinstance(b, bool)]
    const = sum(1 << i for i, b in enumerate(bits) if b is True)
    v = z3.Sum(terms) + const if const else (z3.Sum(terms) if len(terms) > 1 else terms[0])
    _BITS[v.get_id()] = (v, tuple(bits))
    return v


def bit_of(x: Val, i: int) -> Val:
    """Bit i of x >= 0 as a boolean (exact for any x >= 0)."""
    b = bits_of(x)
    if b is not None and i < BIT_WIDTH:
        return b[i]
    if not is_sym(x):
        return bool(as_int(x) >> i & 1)  # type: ignore[operator]
    return _bit(zint(x), i) == 1


def _bit_ite(c: Val, a: Any, b: Any) -> Any:
    if isinstance(a, bool) and isinstance(b, bool) and a == b:
        return a
    if is_sym(a) and is_sym(b) and a.eq(b):
        return a
    return z3.If(c, zbool(a), zbool(b))


def ite(c: Val, a: Val, b: Val) -> Val:
    """Python `a if c else b`, folding what is known."""
    c = as_bool(c)
    if isinstance(c, bool):
        return a if c else b
    if a is b:
        return a
    if not is_sym(a) and not is_sym(b) and type(a) is type(b) and a == b:
        return a
    if is_sym(a) and is_sym(b) and a.eq(b):
        return a
    if is_boolish(a) and is_boolish(b):
        return z3.If(c, zbool(a), zbool(b))
    r = z3.If(c, zint(a), zint(b))
    if (is_sym(a) and a.get_id() in _BITS) or (is_sym(b) and b.get_id() in _BITS):
        ba, bb = bits_of(a), bits_of(b)
        if ba is not None and bb is not None:
            _BITS[r.get_id()] = (r, tuple(_bit_ite(c, x, y) for x, y in zip(ba, bb)))
    return r


@dataclass
class Obligation:
    line: int
    what: str
    cond: Val       # must be valid (true in every state satisfying the strengthening)


class _Ctx:
    """Execution context of one function invocation."""

    __slots__ = ("fields", "locals", "live", "pc", "rets", "outer")

    def __init__(self, fields: dict[str, Val], local: dict[str, Val], live: Val, pc: Val, outer: Val):
        self.fields = fields
        self.locals = local
        self.live = live           # not yet returned (from this function or any caller)
        self.pc = pc               # branch conditions inside this function
        self.rets: list[tuple[Val, Val]] = []
        self.outer = outer         # path condition of the call site (for obligations)

    def guard(self, extra: Val = True) -> Val:
        return conj(conj(conj(self.outer, self.pc), self.live), extra)

    def fork(self, c: Val) -> "_Ctx":
        k = _Ctx(dict(self.fields), dict(self.locals), self.live, conj(self.pc, c), self.outer)
        k.rets = list(self.rets)
        return k


class TranslationError(Exception):
    pass


@dataclass
class Result:
    fields: dict[str, Val]
    ret: Val
    obligations: list[Obligation] = field(default_factory=list)


class Translator:
    def __init__(self, kernel: Kernel, track_lines: bool = False):
        self.k = kernel
        self.consts = kernel.constants
        self.fnodes = {n: f.node for n, f in kernel.functions.items()}
        self.obligations: list[Obligation] = []
        self._fn_stack: list[str] = []
        self.track_lines = track_lines
        self.lines_run: set[int] = set()    # the tracked lines the last `run` executed
        self._tracking = False              # on inside `run` only: the invariant is never havocked
        self._havocs = 0

    # ---------------------------------------------------------------- public API
    def run(self, entry: str, fields: dict[str, Val], args: dict[str, Val]) -> Result:
        """Execute entry point `entry` on `fields` with inputs `args` (by parameter name)."""
        self.obligations = []
        self.lines_run = set()
        fn = self.k.functions[entry]
        params = {p: args[p] for p in fn.params if p != STATE_PARAM}
        self._tracking = self.track_lines
        try:
            out_fields, ret = self._invoke(entry, dict(fields), params, True, True)
        finally:
            self._tracking = False
        return Result(out_fields, ret, self.obligations)

    def _track(self, line: int, v: Val) -> Val:
        """In line-tracking mode, the statement's value while `line_L` holds, else a havoc."""
        if not self._tracking:
            return v
        self.lines_run.add(line)
        self._havocs += 1
        name = "havoc.%d.%d" % (line, self._havocs)    # numbered here, not by Z3: the same run, the same names
        if is_boolish(v):
            other: Val = z3.Bool(name)
        elif is_sym(v) and bits_of(v) is not None:
            # an 8-bit word keeps its bits, or `&`/`|` after it would fall back to div/mod
            other = value_of_bits([z3.Bool("%s.bit%d" % (name, i)) for i in range(BIT_WIDTH)])
        else:
            other = z3.Int(name)
        return ite(z3.Bool("line_%d" % line), v, other)

    def value(self, fname: str, fields: dict[str, Val], args: dict[str, Val] | None = None) -> Val:
        """The value a pure function (e.g. invariant) returns."""
        self.obligations = []
        fn = self.k.functions[fname]
        params = {p: (args or {})[p] for p in fn.params if p != STATE_PARAM}
        _, ret = self._invoke(fname, dict(fields), params, True, True)
        return ret

    def invariant_conjuncts(self, fields: dict[str, Val]) -> list[tuple[int, str, Val]]:
        """(line, source text, value) of each top-level conjunct of `invariant(s)`."""
        self.obligations = []
        if INVARIANT not in self.k.functions:
            return []
        node = self.fnodes[INVARIANT]
        body = [s for s in node.body if not _is_docstring(s)]
        if (len(body) == 1 and isinstance(body[0], ast.Return) and isinstance(body[0].value, ast.BoolOp)
                and isinstance(body[0].value.op, ast.And)):
            out = []
            for v in body[0].value.values:
                ctx = _Ctx(dict(fields), {}, True, True, True)
                val = as_bool(self._eval(v, ctx, True))
                out.append((v.lineno, " ".join(ast.unparse(v).split()), val))
            return out
        _, ret = self._invoke(INVARIANT, dict(fields), {}, True, True)
        return [(node.lineno, "invariant(s)", as_bool(ret))]

    # ---------------------------------------------------------------- execution
    def _invoke(self, fname: str, fields: dict[str, Val], params: dict[str, Val], live: Val,
                outer: Val) -> tuple[dict[str, Val], Val]:
        node = self.fnodes[fname]
        ctx = _Ctx(fields, dict(params), live, True, outer)
        body = node.body[1:] if node.body and _is_docstring(node.body[0]) else node.body
        self._fn_stack.append(fname)
        try:
            self._block(body, ctx)
        finally:
            self._fn_stack.pop()
        ret: Val = None  # type: ignore[assignment]
        if ctx.rets and all(v is not None for _, v in ctx.rets):
            # the recorded conditions are disjoint; the last return is the default
            ret = ctx.rets[-1][1]
            for c, v in reversed(ctx.rets[:-1]):
                ret = ite(c, v, ret)
        return ctx.fields, ret

    def _block(self, stmts: list[ast.stmt], ctx: _Ctx) -> None:
        for s in stmts:
            if ctx.live is False:
                return
            self._stmt(s, ctx)

    def _stmt(self, s: ast.stmt, ctx: _Ctx) -> None:
        if isinstance(s, ast.Assign):
            t = s.targets[0]
            v = self._track(s.lineno, self._eval(s.value, ctx, True))
            if isinstance(t, ast.Attribute):
                ctx.fields[t.attr] = ite(ctx.live, as_int(v), ctx.fields[t.attr])
            else:
                assert isinstance(t, ast.Name)
                # a local is only read while the function is live: no guard needed
                ctx.locals[t.id] = v
        elif isinstance(s, ast.If):
            c = as_bool(self._track(s.lineno, as_bool(self._eval(s.test, ctx, True))))
            if isinstance(c, bool):
                self._block(s.body if c else s.orelse, ctx)
                return
            a = ctx.fork(c)
            b = ctx.fork(neg(c))
            self._block(s.body, a)
            self._block(s.orelse, b)
            n0 = len(ctx.rets)
            ctx.rets = ctx.rets + a.rets[n0:] + b.rets[n0:]
            for f in ctx.fields:
                ctx.fields[f] = ite(c, a.fields[f], b.fields[f])
            ctx.locals = {n: ite(c, a.locals[n], b.locals[n]) for n in a.locals if n in b.locals}
            ctx.live = ite(c, a.live, b.live)
        elif isinstance(s, ast.Return):
            v = self._track(s.lineno, self._eval(s.value, ctx, True)) if s.value is not None else None
            ctx.rets.append((conj(ctx.pc, ctx.live), v))
            ctx.live = False
        elif isinstance(s, ast.Expr):
            self._call(s.value, ctx, True)  # type: ignore[arg-type]
        elif isinstance(s, ast.Pass):
            pass
        else:  # the subset checker rejects everything else
            raise TranslationError("line %d: %s" % (s.lineno, type(s).__name__))

    def _call(self, node: ast.Call, ctx: _Ctx, g: Val) -> Val:
        name = node.func.id  # type: ignore[attr-defined]
        if name in ("min", "max"):
            a = self._eval(node.args[0], ctx, g)
            b = self._eval(node.args[1], ctx, g)
            if not is_sym(a) and not is_sym(b):
                return min(a, b) if name == "min" else max(a, b)
            # min(a, b): b if b < a else a;  max(a, b): b if b > a else a
            return ite(zint(b) < zint(a) if name == "min" else zint(b) > zint(a), as_int(b), as_int(a))
        fn = self.k.functions[name]
        params: dict[str, Val] = {}
        for p, a in zip(fn.params, node.args):
            if p != STATE_PARAM:
                params[p] = self._eval(a, ctx, g)
        fields, ret = self._invoke(name, ctx.fields, params, ctx.live, ctx.guard(g))
        if fn.pure:
            # a pure helper cannot change fields; keep the caller's terms
            pass
        else:
            ctx.fields = fields
        return ret

    # ---------------------------------------------------------------- expressions
    def _eval(self, node: ast.expr, ctx: _Ctx, g: Val) -> Val:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in ctx.locals:
                return ctx.locals[node.id]
            return self.consts[node.id]
        if isinstance(node, ast.Attribute):
            return ctx.fields[node.attr]
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, ctx, g)
            if isinstance(node.op, ast.Not):
                return neg(as_bool(v))
            if isinstance(node.op, ast.USub):
                v = as_int(v)
                return -v
            return as_int(v)
        if isinstance(node, ast.BinOp):
            a = self._eval(node.left, ctx, g)
            b = self._eval(node.right, ctx, g)
            return self._binop(node, a, b, ctx, g)
        if isinstance(node, ast.BoolOp):
            return self._boolop(node, ctx, g)
        if isinstance(node, ast.Compare):
            return self._compare(node, ctx, g)
        if isinstance(node, ast.IfExp):
            c = as_bool(self._eval(node.test, ctx, g))
            if isinstance(c, bool):
                return self._eval(node.body if c else node.orelse, ctx, g)
            a = self._eval(node.body, ctx, conj(g, c))
            b = self._eval(node.orelse, ctx, conj(g, neg(c)))
            return ite(c, a, b)
        if isinstance(node, ast.Call):
            return self._call(node, ctx, g)
        raise TranslationError("line %d: %s" % (node.lineno, type(node).__name__))

    def _binop(self, node: ast.BinOp, a: Val, b: Val, ctx: _Ctx, g: Val) -> Val:
        op = node.op
        if isinstance(op, (ast.BitAnd, ast.BitOr)):
            return self._bitop(node, a, b, ctx, g)
        a, b = as_int(a), as_int(b)
        if isinstance(op, ast.Add):
            return a + b
        if isinstance(op, ast.Sub):
            if not is_sym(a) and a == BIT_MAX and is_sym(b):
                return _complement(b)
            return a - b
        if isinstance(op, ast.Mult):
            if is_sym(a) and is_sym(b):
                raise TranslationError("line %d: product of two non-constant operands" % node.lineno)
            return a * b
        if isinstance(op, ast.FloorDiv) and is_sym(b) and self._fn_stack and self._fn_stack[-1] in ORDER_DIVISION:
            # the order's division by a positive input (subset.ORDER_DIVISION): exact in Z3 for a
            # positive divisor, which every path that reaches it must show
            self.obligations.append(Obligation(node.lineno, "divisor of '//' > 0",
                                               z3.Implies(zbool(ctx.guard(g)), zint(b) > 0)))
            return a / b
        if isinstance(op, (ast.FloorDiv, ast.Mod)):
            if is_sym(b) or b <= 0:  # type: ignore[operator]
                raise TranslationError("line %d: divisor is not a positive constant" % node.lineno)
            if not is_sym(a):
                return a // b if isinstance(op, ast.FloorDiv) else a % b  # type: ignore[operator]
            # SMT-LIB div/mod floor for a positive divisor, like Python
            return a / b if isinstance(op, ast.FloorDiv) else a % b
        raise TranslationError("line %d: operator %s" % (node.lineno, type(op).__name__))

    def _bitop(self, node: ast.BinOp, a: Val, b: Val, ctx: _Ctx, g: Val) -> Val:
        a, b = as_int(a), as_int(b)
        is_and = isinstance(node.op, ast.BitAnd)
        what = "operands of '%s' in [0, %d]" % ("&" if is_and else "|", BIT_MAX)
        for v in (a, b):
            if is_sym(v):
                self.obligations.append(Obligation(node.lineno, what, z3.Implies(zbool(ctx.guard(g)),
                                                                                  z3.And(v >= 0, v <= BIT_MAX))))
            elif not (0 <= v <= BIT_MAX):  # type: ignore[operator]
                guard = ctx.guard(g)
                self.obligations.append(Obligation(node.lineno, what, neg(guard) if guard is not True else False))
        if not is_sym(a) and not is_sym(b):
            return (a & b) if is_and else (a | b)  # type: ignore[operator]
        bits = []
        for i in range(BIT_WIDTH):
            x, y = bit_of(a, i), bit_of(b, i)
            if is_and:
                bits.append(x and y if isinstance(x, bool) and isinstance(y, bool)
                            else (False if x is False or y is False else (y if x is True else (x if y is True else z3.And(x, y)))))
            else:
                bits.append(x or y if isinstance(x, bool) and isinstance(y, bool)
                            else (True if x is True or y is True else (y if x is False else (x if y is False else z3.Or(x, y)))))
        return value_of_bits(bits)

    def _boolop(self, node: ast.BoolOp, ctx: _Ctx, g: Val) -> Val:
        is_and = isinstance(node.op, ast.And)
        vals: list[Val] = []
        guard = g
        for v in node.values:
            x = self._eval(v, ctx, guard)
            vals.append(x)
            xb = as_bool(x)
            # later operands are evaluated only if this one did not decide the result
            guard = conj(guard, xb if is_and else neg(xb))
            if isinstance(xb, bool) and xb is (not is_and):
                break
        if all(is_boolish(x) for x in vals):
            known = [x for x in vals if not isinstance(x, bool)]
            if any(isinstance(x, bool) and x is (not is_and) for x in vals):
                return not is_and
            if not known:
                return is_and
            if len(known) == 1:
                return known[0]
            return z3.And(*known) if is_and else z3.Or(*known)
        out = as_int(vals[-1])
        for x in reversed(vals[:-1]):
            out = ite(as_bool(x), out, as_int(x)) if is_and else ite(as_bool(x), as_int(x), out)
        return out

    def _compare(self, node: ast.Compare, ctx: _Ctx, g: Val) -> Val:
        left = self._eval(node.left, ctx, g)
        result: Val = True
        for op, comp in zip(node.ops, node.comparators):
            right = self._eval(comp, ctx, conj(g, result))
            result = conj(result, _cmp(op, left, right))
            if result is False:
                break
            left = right
        return result


def _complement(b: z3.ArithRef) -> Val:
    """255 - b (a mask of the bits not in b, as in `s.alarm & (255 - bits)`), registered with its
    bits: for b in [0, 255] each is the negation of b's, so the solver does not have to find
    that itself; outside that range, the exact bit of 255 - b (never a different number)."""
    r = BIT_MAX - b
    in_range = z3.And(b >= 0, b <= BIT_MAX)
    bits = tuple(z3.If(in_range, z3.Not(zbool(bit_of(b, i))), _bit(r, i) == 1) for i in range(BIT_WIDTH))
    _BITS[r.get_id()] = (r, bits)
    return r


def _bit(x: z3.ArithRef, i: int) -> z3.ArithRef:
    return (x / (1 << i)) % 2 if i else x % 2


def _cmp(op: ast.cmpop, a: Val, b: Val) -> Val:
    if is_boolish(a) and is_boolish(b) and isinstance(op, (ast.Eq, ast.NotEq)):
        if not is_sym(a) and not is_sym(b):
            return (a == b) if isinstance(op, ast.Eq) else (a != b)
        return zbool(a) == zbool(b) if isinstance(op, ast.Eq) else zbool(a) != zbool(b)
    a, b = as_int(a), as_int(b)
    if not is_sym(a) and not is_sym(b):
        if isinstance(op, ast.Eq):
            return a == b
        if isinstance(op, ast.NotEq):
            return a != b
        if isinstance(op, ast.Lt):
            return a < b  # type: ignore[operator]
        if isinstance(op, ast.LtE):
            return a <= b  # type: ignore[operator]
        if isinstance(op, ast.Gt):
            return a > b  # type: ignore[operator]
        return a >= b  # type: ignore[operator]
    a, b = zint(a), zint(b)
    if isinstance(op, ast.Eq):
        return a == b
    if isinstance(op, ast.NotEq):
        return a != b
    if isinstance(op, ast.Lt):
        return a < b
    if isinstance(op, ast.LtE):
        return a <= b
    if isinstance(op, ast.Gt):
        return a > b
    return a >= b


def state_vars(kernel: Kernel, prefix: str, bitfields: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """Fresh Z3 terms for a state. Fields in `bitfields` are represented by their 8 bits
    (value = sum of 2^i * bit_i): only valid where the field's range [lo, hi] within [0, 255]
    is known to hold (the engine uses it only when that range conjunct is in the proven
    invariant, so the representation covers exactly the states the query ranges over)."""
    out: dict[str, Any] = {}
    for f in kernel.fields:
        if f.name in bitfields:
            out[f.name] = value_of_bits([z3.Bool("%s%s.bit%d" % (prefix, f.name, i)) for i in range(BIT_WIDTH)])
        else:
            out[f.name] = z3.Int("%s%s" % (prefix, f.name))
    return out


def bit_fields(kernel: Kernel) -> set[str]:
    """Fields with a range within [0, 255] that are operands of `&` or `|` somewhere."""
    small = {f.name for f in kernel.fields if f.lo >= 0 and f.hi <= BIT_MAX}
    used: set[str] = set()
    for fn in kernel.functions.values():
        for node in ast.walk(fn.node):
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
                for side in (node.left, node.right):
                    for sub in ast.walk(side):
                        if isinstance(sub, ast.Attribute) and sub.attr in small:
                            used.add(sub.attr)
    return used


def input_vars(kernel: Kernel, entry: str, prefix: str) -> dict[str, z3.ArithRef]:
    return {p: z3.Int("%s%s.%s" % (prefix, entry, p)) for p in kernel.entry_params(entry)}


def range_conjuncts(kernel: Kernel, fields: dict[str, Val]) -> list[tuple[int, str, Val]]:
    out = []
    for f in kernel.fields:
        v = fields[f.name]
        if is_sym(v):
            c: Val = z3.And(v >= f.lo, v <= f.hi)
        else:
            c = f.lo <= as_int(v) <= f.hi  # type: ignore[operator]
        out.append((f.line, "%d <= s.%s <= %d" % (f.lo, f.name, f.hi), c))
    return out
