"""The demo (README's first command) runs its whole tour: a smaller directory, the same steps, on
the tests' fixed clock."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from bot.chat.context import FixedClock
from bot.tools.demo import run_demo


async def test_the_demo_tour_runs_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clock: FixedClock
) -> None:
    # Each step waits for the bot's answers in the database, and raises if they do not come.
    assert await run_demo(tmp_path / "demo", size=(400, 200), clock=clock) == 0
    out = capsys.readouterr().out
    assert "draw verify" in out and "→ 一致" in out
    # A Chinese tour: no English summaries, no raw event keys or console markers.
    for raw in ("Import of", "added", "MATCH", "swap:", "result:", "[:1]", "[:b1]", "(HTTP"):
        assert raw not in out, raw
    assert "点击卡片：批准" in out
    assert "【检查结果已记录】" in out and "已批准替换申请" in out
    assert "audit verify → 完整" in out
    # 一公开: the units published on the page this run serves, and the table was written.
    assert "【已登记公开】" in out and "/public/150100/" in out
    table = next((tmp_path / "demo").glob("统计表-150100-*.xlsx"))
    assert openpyxl.load_workbook(table).sheetnames[0].startswith("呼和浩特市")
