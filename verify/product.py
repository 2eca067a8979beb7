"""The product of the kernel and the label observer: one transition system for the engine.

The kernel (firmware/kernel.py) and the observer (model/observer.py) are both in the
verifiable subset and have the same entry points with the same parameters. The product runs
both on the same symbolic inputs (a synchronous observer, as in Lustre and Kind 2): its state
is the kernel's fields, the observer's fields prefixed `o_`, and `o_status`, the observer's
answer to the last input. It quacks like `subset.Kernel` (fields, entries, initial state) and
gives the engine a translator whose invariant candidates are the kernel's, the observer's own
field ranges, and the relational invariant of verify/relation.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import relation
from .subset import Field, Kernel, SubsetError, load_kernel
from .symexec import Result, Translator

OBSERVER = Path(__file__).resolve().parent.parent / "model" / "observer.py"
STATUS_MAX = 27             # the protocol's highest answer code (docs/protocol.md)


class Product(Kernel):
    """Kernel x observer. `kernel` and `observer` are the two parts; `fields` lists both."""

    kernel: Kernel
    observer: Kernel

    def translator(self, track_lines: bool = False) -> "ProductTranslator":
        return ProductTranslator(self, track_lines)

    def observer_part(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {f.name: fields[relation.PREFIX + f.name] for f in self.observer.fields}


def make_product(kernel: Kernel, observer: Kernel) -> Product:
    errors = []
    for e in kernel.entries:
        if e not in observer.entries:
            errors.append((observer.path, 0, "no entry point %s (the kernel has %s)" % (e, e)))
        elif kernel.entry_params(e) != observer.entry_params(e):
            errors.append((observer.path, observer.functions[e].line, "entry point %s takes (%s), the kernel (%s)" % (
                e, ", ".join(observer.entry_params(e)), ", ".join(kernel.entry_params(e)))))
    for e in observer.entries:
        if e not in kernel.entries:
            errors.append((observer.path, observer.functions[e].line, "entry point %s is not the kernel's" % e))
    if errors:
        raise SubsetError(errors)
    fields = list(kernel.fields) + [Field(relation.PREFIX + f.name, f.init, f.lo, f.hi, f.line) for f in observer.fields]
    fields.append(Field(relation.STATUS, 0, 0, STATUS_MAX, 0))
    p = Product(path=kernel.path, abspath=kernel.abspath, source=kernel.source, sha256=kernel.sha256,
                lines=kernel.lines, constants=kernel.constants, constant_lines=kernel.constant_lines,
                fields=fields, functions=kernel.functions, comments=kernel.comments)
    p.kernel = kernel
    p.observer = observer
    return p


def load_product(kernel_path: str | Path, display_path: str | None = None,
                 observer_path: str | Path = OBSERVER) -> Product:
    return make_product(load_kernel(kernel_path, display_path), load_kernel(observer_path, "model/observer.py"))


class ProductTranslator:
    """Runs the kernel's and the observer's translations on the same inputs. track_lines: the
    kernel's lines only (verify/dependencies.py names kernel lines)."""

    def __init__(self, product: Product, track_lines: bool = False):
        self.p = product
        self.kt = Translator(product.kernel, track_lines)
        self.ot = Translator(product.observer)
        self.k = product
        self.obligations: list[Any] = []

    def run(self, entry: str, fields: dict[str, Any], args: dict[str, Any]) -> Result:
        kf = {n: fields[n] for n in self.p.kernel.field_names}
        rk = self.kt.run(entry, kf, args)
        ro = self.ot.run(entry, self.p.observer_part(fields), args)
        out = dict(rk.fields)
        for n, v in ro.fields.items():
            out[relation.PREFIX + n] = v
        out[relation.STATUS] = ro.ret
        return Result(out, rk.ret, rk.obligations + ro.obligations)

    def value(self, fname: str, fields: dict[str, Any], args: dict[str, Any] | None = None) -> Any:
        return self.kt.value(fname, {n: fields[n] for n in self.p.kernel.field_names}, args)

    def invariant_conjuncts(self, fields: dict[str, Any]) -> list[tuple[int, str, Any]]:
        """The kernel's invariant, then the relational invariant (line 0: verify/relation.py)."""
        out = self.kt.invariant_conjuncts({n: fields[n] for n in self.p.kernel.field_names})
        self.obligations = list(self.kt.obligations)
        out += [(line, "observer: " + text, value)
                for line, text, value in self.ot.invariant_conjuncts(self.p.observer_part(fields))]
        self.obligations += self.ot.obligations
        out += [(0, "relation: " + text, value) for text, value in relation.conjuncts(fields)]
        return out
