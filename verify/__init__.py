"""The Z3 verifier of the safety kernel (issue 4).

- `verify.subset`     parses firmware/kernel.py and checks it is in the verifiable subset;
- `verify.symexec`    translates the subset to Z3 (and interprets it concretely);
- `verify.properties` the safety properties, each with its label clause IDs;
- `verify.engine`     invariant check (Houdini), k-induction, BMC, counterexample traces;
- `verify.replay`     replays a trace on CPython or MicroPython;
- `verify.mutants`    mutation adequacy of the proofs;
- `verify.randomtest` the Hypothesis random-testing campaign the mutants are compared with;
- `verify.report`     the Markdown assurance report and JUnit XML;
- `verify.cli`        `blinpump prove` and `blinpump replay`.
"""
