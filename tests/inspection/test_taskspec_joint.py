"""Internal joint tasks (Art. 19, 21, 23): whose inspectors their teams are drawn from."""

from __future__ import annotations

from inspection.taskspec import checking_departments, joint_departments


def test_art21_art23_a_joint_tasks_teams_come_from_its_own_departments() -> None:
    assert joint_departments("ZF", ("HP", "JC", "ZF")) == ("ZF", "HP", "JC")
    assert checking_departments((), "ZF", ("HP", "JC")) == ("ZF", "HP", "JC")
    # Named checking departments win (the spec refuses any outside the joint ones).
    assert checking_departments(("HP",), "ZF", ("HP", "JC")) == ("HP",)
    # Not a joint task: every department, unless some are named.
    assert checking_departments((), "", ()) == ()
