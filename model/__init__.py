"""The BLINCYTO label as data, the course planner, bag-order checks and the safety kernel's limits.

Desktop only (CPython, stdlib only). Every rule cites its clause ID from LABEL.md.
"""
from __future__ import annotations

from .around import AroundThePump
from .errors import ModelError
from .label import DEFAULT_EXT, ExtConfig, label_rows
from .limits import KernelLimits, kernel_limits
from .orders import AcceptedBag, BagOrder, propose_bag, validate_bag
from .patient import Patient, bsa_m2_from_height
from .planner import Course, CourseLength, CyclePlan, DoseRange, PopulationPremed, plan_course

__all__ = [
    "AcceptedBag", "AroundThePump", "BagOrder", "Course", "CourseLength", "CyclePlan", "DEFAULT_EXT", "DoseRange",
    "ExtConfig", "KernelLimits", "ModelError", "Patient", "PopulationPremed", "bsa_m2_from_height", "kernel_limits",
    "label_rows", "plan_course", "propose_bag", "validate_bag",
]
