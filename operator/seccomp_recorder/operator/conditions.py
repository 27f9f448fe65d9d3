"""Setting standard conditions (metav1.Condition) in a status, as Kubernetes controllers do.

A condition keeps its lastTransitionTime while its status stays the same, so the time
shows when the status last changed, not when the operator last looked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from seccomp_recorder.models.meta import Condition, ConditionStatus

# The API server rejects a condition message longer than this (metav1.Condition).
MAX_MESSAGE_LENGTH = 32768


def find_condition(conditions: Sequence[Condition], condition_type: str) -> Condition | None:
    """Return the condition of `condition_type`, or None when there is none."""
    for condition in conditions:
        if condition.type == condition_type:
            return condition
    return None


def set_condition(
    conditions: Sequence[Condition],
    condition_type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    now: datetime,
    generation: int | None,
) -> tuple[Condition, ...]:
    """Return `conditions` with the condition of `condition_type` set to these values.

    The condition replaces the one of the same type in place, or is appended. Its
    lastTransitionTime is `now` when the status changed, else the old one's. A message
    above MAX_MESSAGE_LENGTH is cut and ends in "...".
    """
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 3] + "..."
    old = find_condition(conditions, condition_type)
    transition_time = now if old is None or old.status != status else old.last_transition_time
    new = Condition(
        type=condition_type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition_time,
        observed_generation=generation,
    )
    if old is None:
        return (*conditions, new)
    return tuple(new if condition.type == condition_type else condition for condition in conditions)


def condition_is(
    conditions: Sequence[Condition], condition_type: str, status: ConditionStatus
) -> bool:
    """Return whether the condition of `condition_type` exists with `status`."""
    condition = find_condition(conditions, condition_type)
    return condition is not None and condition.status == status
