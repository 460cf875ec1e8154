"""Sample digests for checking and previewing templates: every kind of item, and folded ones.

``Renderer.check`` and ``Renderer.check_item_template`` render templates with these, so a template
that only fails for some kind of item (a duty has no 序号) is caught when it loads, not at 9:00 in
a reminder.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from notifications.digest import Digest, DigestItem


def sample_items() -> list[DigestItem]:
    """One item of every kind, as the sweep writes them, in the shapes templates must handle."""
    ledger = "bishan-keji-2022"
    return [
        DigestItem("escalation", "escalate-first-responsible", f"{ledger}/7", "财务管理不规范，往来款项长期未清理",
                   ledger, "7", dt.date(2022, 9, 30), 12, 1),
        DigestItem("escalation", "escalate-supervising-group", ledger, "报送整改情况报告",
                   ledger, None, dt.date(2022, 9, 23), 25, 2),
        DigestItem("overdue", "overdue", f"{ledger}/12", "政府采购程序执行不严格", ledger, "12",
                   dt.date(2022, 10, 31), 2, 0),
        DigestItem("overdue", "overdue", "monthly-accounts-clearing", "往来款项清理", None, None,
                   dt.date(2022, 10, 31), 1, 0, period="2022-10"),
        DigestItem("due", "due", f"{ledger}/4", "制定惠企政策思考不深", ledger, "4", dt.date(2022, 11, 1), 0, 0),
        DigestItem("checkin", "before-3", f"{ledger}/1", "中心组学习不够深入", ledger, "1",
                   dt.date(2022, 11, 4), 0, 0),
        DigestItem("checkin", "checkin", f"{ledger}/2", "集体学习有漏项", ledger, "2", dt.date(2022, 11, 1), 0, 0),
        DigestItem("duty", "before-5", "quarterly-supervision-report",
                   "向派驻纪检监察组报送政府采购、工程建设、三公经费等事项明细", None, None,
                   dt.date(2022, 11, 8), 0, 0, period="2022-Q3"),
        DigestItem("duty", "duty", "central-group-study", "党组理论学习中心组集体学习（全年12次）", None, None,
                   dt.date(2022, 11, 1), 0, 0, period="2022-10"),
        DigestItem("before", "before-1", f"{ledger}/9", "科技项目经费监管不到位", ledger, "9",
                   dt.date(2022, 11, 2), 0, 0),
    ]


def sample_digest() -> Digest:
    """A digest with every kind and items folded under a ledger escalation."""
    ledger = "bishan-keji-2022"
    folded = [
        DigestItem("overdue", "overdue", f"{ledger}/15", "三公经费支出审批不严", ledger, "15",
                   dt.date(2022, 10, 28), 3, 0),
        DigestItem("before", "before-3", f"{ledger}/16", "公务接待管理不规范", ledger, "16",
                   dt.date(2022, 11, 4), 0, 0),
    ]
    tz = ZoneInfo("Asia/Shanghai")
    return Digest(recipient="党组书记", channel_kind="email", generated_at=dt.datetime(2022, 11, 1, 9, 0, tzinfo=tz),
                  tz=tz, items=sample_items(), folded={ledger: folded},
                  workspace_url="https://duban.example.org/w/SAMPLE-TOKEN")

