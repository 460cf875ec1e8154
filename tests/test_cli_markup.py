"""Data is printed as written (issue #18): a ledger cell or a user name reading ``[/]``, ``[bold]``
or ``:ledger:`` is neither rich markup (which crashed the tables) nor an emoji code
(``reviewer:ledger:X`` printed as ``reviewer📒X``)."""

from __future__ import annotations

import pytest

HEADERS = "序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态"
ROW = "1,方面[/],类别[bold],问题[/]与:ledger:和[red]红[/red],措施[/],领导[/],科室[bold],2026-12-31,整改中"
LEDGER = "台账[bold]"
USER = "reviewer:ledger:X[/]"


@pytest.fixture
def odd(cli, project):
    assert cli("init").code == 0
    sheet = project / f"{LEDGER}.csv"
    sheet.write_text(f"{HEADERS}\n{ROW}\n", encoding="utf-8")
    imported = cli("ledger", "import", sheet, "--at", "2026-12-01T09:00")
    assert imported.code == 0 and LEDGER in imported.out and "领导[/], 科室[bold]" in imported.out, imported.err
    added = cli("user", "add", USER, "--role", f"reviewer:ledger:{LEDGER}")
    assert added.code == 0 and added.out.strip() == f"user {USER}: reviewer:ledger:{LEDGER}"
    return cli


@pytest.mark.parametrize(("args", "shown"), [
    (("issue", "list"), (f"{LEDGER}/1", "领导[/]", "科室[bold]", "问题[/]与:ledger:和[red]红[/red]")),
    (("issue", "show", f"{LEDGER}/1"), ("措施[/]", "问题[/]与:ledger:和[red]红[/red]")),
    (("status",), ("方面[/]",)),
    (("user", "list"), (USER, "领导[/]", "科室[bold]", f"reviewer:ledger:{LEDGER}")),
    (("remind", "preview", "--at", "2026-12-20T09:00", "--until", "2026-12-31T10:00"),
     (f"{LEDGER}/1", "领导[/]、科室[bold]", "问题[/]与:ledger:和[red]红[/red]")),
])
def test_cells_and_names_print_literally(odd, args, shown):
    result = odd(*args)
    assert result.code == 0, result.err
    for text in shown:
        assert text in result.out, (text, result.out)
    assert "📒" not in result.out and "Traceback" not in result.err


def test_errors_print_names_literally(odd):
    missing = odd("user", "set", "无名:ledger:[/]", "--email", "x@example.org")
    assert missing.code == 2 and "无名:ledger:[/]" in missing.err and "📒" not in missing.err
