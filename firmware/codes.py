"""Status codes of the kernel, each with its name and the label clause it enforces.

Kept apart from the kernel so the kernel stays in the verifiable subset; the serial
protocol and the host tools print these names and clauses in every error reply.
"""
from . import kernel as k
from . import pump

# code -> (name, clause IDs of LABEL.md, what the operator is told)
STATUS = {
    k.OK: ("OK", "", "accepted"),
    k.E_STATE: ("E_STATE", "L2.5-errors", "command not valid in this state"),
    k.E_INDICATION: ("E_INDICATION", "L1.1/L1.2/L1.3", "indication: must be mrd, rr or consolidation"),
    k.E_WEIGHT: ("E_WEIGHT", "L2-weight-45", "weight_g: outside 500..300000 g"),
    k.E_BSA: ("E_BSA", "L2-dose-28", "bsa_cm2: needed below 45 kg, 500..35000 cm2"),
    k.E_PATIENT: ("E_PATIENT", "L2.5-errors", "patient_id: bag is for another patient"),
    k.E_DURATION: ("E_DURATION", "L2.5-durations", "duration_h: must be 24, 48, 72, 96 or 168"),
    k.E_PRESERVATIVE: ("E_PRESERVATIVE", "L2.5-durations",
                       "preservative: 24/48 h bags are preservative-free, 72/96/168 h bags have preservative"),
    k.E_MIN_WEIGHT: ("E_MIN_WEIGHT", "L2.5-min-weight", "preservative: 72 h, 96 h and 7-day bags need 5.4 kg or more"),
    k.E_DOSE_CAP: ("E_DOSE_CAP", "L2-dose-28/L2.2-step/L2.4-restart-9", "drug_ng: daily rate above the cap in force"),
    k.E_STORAGE: ("E_STORAGE", "L2.6-bag-24-48/L2.6-bag-72-96/L2.6-bag-7d",
                  "room_min/fridge_min: storage limit (storage time includes infusion time)"),
    k.E_VOLUME: ("E_VOLUME", "L2.5-errors", "volume_ul/drug_ng: outside the plausible range"),
    k.E_NO_BAG: ("E_NO_BAG", "L2.5-durations", "no bag loaded"),
    k.E_REINIT: ("E_REINIT", "L2-reinit-4h/L2-premed", "acknowledge premedication and supervision first"),
    k.E_STEP_PREMED: ("E_STEP_PREMED", "L2-premed/L2.2-step", "acknowledge premedication before the step dose"),
    k.E_FREE_INTERVAL: ("E_FREE_INTERVAL", "L2-cycle-42/L2.2-cycle-84", "treatment-free interval"),
    k.E_LOCKED: ("E_LOCKED", "L2.4-crs-4/L2.4-seizure/L2.4-neuro-3/L2.4-neuro-4/L2.4-other-3",
                 "permanently discontinued"),
    k.E_WITHHOLD: ("E_WITHHOLD", "L2.4-neuro-3/L2.4-other-3/L2.4-icans-2/L2.4-restart-9",
                   "withheld: a reaction is open, or a grade 3 neurologic event's 3 days have not passed"),
    k.E_OVERDOSE_12H: ("E_OVERDOSE_12H", "EXT-overdose-12h", "no restart within 12 h of an overdose"),
    k.E_NO_FLUSH: ("E_NO_FLUSH", "EXT-no-flush", "no flush, prime or bolus while a line may be connected"),
    k.E_DECISION: ("E_DECISION", "L2.4-other-4/L2.4-new-cycle",
                   "clinician decision pending (DECIDE after another grade 4 reaction; CYCLE_DECISION after "
                   "more than 7 days off not for a reaction, or off for a time no clock measured)"),
    k.E_COURSE_DONE: ("E_COURSE_DONE", "L2.1-course/L2.2-course/L2.3-course", "course complete"),
    k.E_ARG: ("E_ARG", "L2.5-errors", "an argument is outside its range"),
    k.E_CYCLE_END: ("E_CYCLE_END", "L2-cycle-42", "duration_h: the bag would run past infusion day 28 of the cycle"),
    k.E_FAULT: ("E_FAULT", "L2.5-errors", "record, clock or motor fault: clear it first"),
    k.E_BAG_ID: ("E_BAG_ID", "L2.6-bag-24-48/L2.6-bag-72-96/L2.6-bag-7d/L2.5-errors",
                 "bag_id: that bag was hung already (identities increase per patient); its clocks cannot restart"),
    k.E_RATE: ("E_RATE", "EXT-rates",
               "rate_ul_per_h: not the site's rate for this duration, or rate x duration is more than the bag holds"),
    k.E_SCALE: ("E_SCALE", "L2.4-grading", "scale: grades are CTCAE (1); ICANS may be graded ASTCT (2)"),
    # the board's own (firmware/pump.py): a condition of the pump that only the board sees
    pump.E_LINE_ALARM: ("E_LINE_ALARM", "EXT-pump",
         "an occlusion, air-in-line or door condition is still present: clear it, then START"),
}


def name(code):
    entry = STATUS.get(code)
    return entry[0] if entry else "E_UNKNOWN"


def clause(code):
    entry = STATUS.get(code)
    return entry[1] if entry else ""


def describe(code):
    entry = STATUS.get(code)
    if entry is None:
        return "E_UNKNOWN(%d)" % code
    if code == k.OK:
        return "OK"
    return "%s [%s]: %s" % entry
