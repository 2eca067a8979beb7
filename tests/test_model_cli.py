"""The `plan` and `label` commands, run as a test bench runs them: `python -m blinpump.model ...` in a subprocess."""
from __future__ import annotations

import json

import pytest

from plan_cli import plan_json, run_model

CYCLE_KEYS = {"cycle", "phase", "infusion_days", "treatment_free_days", "doses", "hospitalization_days",
              "premedication"}
run = run_model


def test_L2_2_step_plan_json_contract_rr_bsa() -> None:
    # --age-years 10: premedication is by age (L2-premed); it used to be inferred from the 30 kg weight
    data = plan_json("--indication", "rr", "--weight-kg", "30", "--bsa-m2", "1.0", "--age-years", "10")
    assert {k: data[k] for k in ("indication", "weight_kg", "bsa_m2", "dosing")} == {
        "indication": "rr", "weight_kg": 30.0, "bsa_m2": 1.0, "dosing": "bsa"}
    assert len(data["cycles"]) == 9
    first = data["cycles"][0]
    assert CYCLE_KEYS <= set(first)
    assert {k: first[k] for k in CYCLE_KEYS - {"premedication"}} == {
        "cycle": 1, "phase": "induction", "infusion_days": 28, "treatment_free_days": 14,
        "doses": [{"first_day": 1, "last_day": 7, "mcg_per_day": 5.0},
                  {"first_day": 8, "last_day": 28, "mcg_per_day": 15.0}],
        "hospitalization_days": 9}
    assert [p["day"] for p in first["premedication"]] == [1, 8]
    assert all(p["clause"] == "L2-premed" for p in first["premedication"])
    assert [c["phase"] for c in data["cycles"]] == ["induction"] * 2 + ["consolidation"] * 3 + ["continued"] * 4
    assert [c["treatment_free_days"] for c in data["cycles"]] == [14] * 5 + [56] * 4
    assert all(c["doses"] == [{"first_day": 1, "last_day": 28, "mcg_per_day": 15.0}] for c in data["cycles"][1:])


def test_L2_1_course_plan_json_mrd_fixed_dose_without_bsa() -> None:
    # --age-years 40: adult premedication comes from the age (L2-premed), no longer from the 70 kg weight
    data = plan_json("--indication", "mrd", "--weight-kg", "70", "--age-years", "40")
    assert (data["dosing"], data["bsa_m2"], data["weight_kg"]) == ("fixed", None, 70.0)
    assert [c["cycle"] for c in data["cycles"]] == [1, 2, 3, 4]
    assert [c["phase"] for c in data["cycles"]] == ["induction"] + ["consolidation"] * 3
    assert [c["hospitalization_days"] for c in data["cycles"]] == [3, 2, 0, 0]
    assert all(c["doses"] == [{"first_day": 1, "last_day": 28, "mcg_per_day": 28.0}] for c in data["cycles"])
    assert all(c["premedication"][0]["dose_mg"] == 100.0 for c in data["cycles"])


def test_L2_3_course_plan_json_consolidation_bsa_from_height() -> None:
    data = plan_json("--indication", "consolidation", "--weight-kg", "40", "--height-cm", "150")
    assert (data["dosing"], data["bsa_m2"]) == ("bsa", 1.291)  # Mosteller: sqrt(150 * 40 / 3600)
    assert len(data["cycles"]) == 4 and {c["phase"] for c in data["cycles"]} == {"consolidation"}
    assert data["cycles"][0]["doses"] == [{"first_day": 1, "last_day": 28, "mcg_per_day": 19.36}]
    dubois = plan_json("--indication", "consolidation", "--weight-kg", "40", "--height-cm", "150",
                       "--bsa-formula", "dubois")
    assert dubois["bsa_m2"] == pytest.approx(1.3029, abs=1e-4)


def test_L2_weight_45_boundary_in_the_cli() -> None:
    assert plan_json("--indication", "rr", "--weight-kg", "45", "--cycles", "1")["dosing"] == "fixed"
    below = plan_json("--indication", "rr", "--weight-kg", "44.999", "--bsa-m2", "1.8667", "--cycles", "1")
    assert below["dosing"] == "bsa"
    assert below["cycles"][0]["doses"][1]["mcg_per_day"] == 28.0


def test_L2_2_course_cycles_option_limits_the_plan() -> None:
    data = plan_json("--indication", "rr", "--weight-kg", "80", "--cycles", "2")
    assert [c["cycle"] for c in data["cycles"]] == [1, 2]


@pytest.mark.parametrize("args, field, clause", [
    (["--indication", "all", "--weight-kg", "70"], "indication", "L1"),
    (["--indication", "rr", "--weight-kg", "0"], "weight_kg", "L2-weight-45"),
    (["--indication", "rr", "--weight-kg", "-3"], "weight_kg", "L2-weight-45"),
    (["--indication", "rr", "--weight-kg", "400"], "weight_kg", "L2-weight-45"),
    (["--indication", "rr", "--weight-kg", "0.4", "--bsa-m2", "0.1"], "weight_kg", "L2-weight-45"),
    (["--indication", "rr", "--weight-kg", "heavy"], "weight_kg", "L2-weight-45"),
    (["--indication", "rr", "--weight-kg", "30"], "bsa_m2", "L2-dose-28"),
    (["--indication", "rr", "--weight-kg", "44.999"], "bsa_m2", "L2-dose-28"),
    (["--indication", "rr", "--weight-kg", "30", "--bsa-m2", "9"], "bsa_m2", "L2-dose-28"),
    (["--indication", "rr", "--weight-kg", "30", "--height-cm", "2000"], "height_cm", "L2-dose-28"),
    (["--indication", "rr", "--weight-kg", "70", "--cycles", "10"], "cycles", "L2.2-course"),
    (["--indication", "mrd", "--weight-kg", "70", "--cycles", "0"], "cycles", "L2.1-course"),
    (["--indication", "consolidation", "--weight-kg", "70", "--cycles", "5"], "cycles", "L2.3-course"),
    (["--indication", "mrd", "--weight-kg", "70", "--cycles", "two"], "cycles", "L2.1-course"),
    (["--weight-kg", "70"], "indication", "L1"),
    (["--indication", "mrd"], "weight_kg", "L2-weight-45"),
])
def test_bad_input_exits_2_with_one_line_naming_field_and_clause(args: list[str], field: str, clause: str) -> None:
    for extra in ([], ["--json"]):
        result = run("plan", *args, *extra)
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert "field=%s " % field in lines[0] and "clause=%s:" % clause in lines[0]


def test_plan_text_table_names_the_clauses() -> None:
    result = run("plan", "--indication", "rr", "--weight-kg", "70")
    assert result.returncode == 0
    assert "L2.2-course" in result.stdout and "9.00 (1-7)" in result.stdout and "28.00 (8-28)" in result.stdout
    assert len([line for line in result.stdout.splitlines() if line[:1].isdigit()]) == 9


def test_label_table_and_json() -> None:
    text = run("label")
    assert text.returncode == 0
    assert text.stdout.splitlines()[0].split() == ["clause", "what", "value", "unit"]
    for clause in ("L2-dose-28", "L2.2-step", "L2.6-bag-7d", "EXT-overdose-12h", "L2.4-neuro-3"):
        assert clause in text.stdout
    rows = json.loads(run("label", "--json").stdout)
    assert {"clause", "what", "value", "unit", "source"} == set(rows[0])
    assert {r["value"] for r in rows if r["clause"] == "L2.6-bag-24-48"} == {48, 192}


def test_module_usage_errors_exit_2() -> None:
    assert run().returncode == 2
    assert run("prove").returncode == 2
    assert run("label", "--bogus").returncode == 2
    assert run("--help").returncode == 0


def test_console_script_dispatches_to_model_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from blinpump import cli as blinpump_cli

    assert blinpump_cli.main(["plan", "--indication", "mrd", "--weight-kg", "70", "--json", "--cycles", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"][0]["hospitalization_days"] == 3
    assert blinpump_cli.main(["plan", "--indication", "mrd", "--weight-kg", "7"]) == 2
    assert "field=bsa_m2 clause=L2-dose-28" in capsys.readouterr().err
