"""The pipeline asks the accounts (``People``) once per person per batch and signs each digest's
link once: the items and the app card's 去处理 button carry that one link (issue #21).

The accounts are the real ones (``AccountDirectory`` over the database); the wrapper only counts
what the pipeline asks of them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

from sqlalchemy import select

from engine.accounts.directory import AccountDirectory
from engine.config import load_config
from engine.reminders.sweep import Sweeper
from engine.runtime import Runtime
from engine.store import db
from notifications.message import AppCard
from notifications.people import Contact
from notifications.service import Notifier
from notifications.store import OutboxMessage

from .app_servers import WeComApp
from .conftest import ROOT

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
BASE = "http://127.0.0.1:9"
AT = dt.datetime(2026, 12, 24, 1, 30, tzinfo=dt.UTC)  # 09:30 in Chongqing


class Counting:
    """The accounts' directory, counting the questions asked of it."""

    def __init__(self, directory: AccountDirectory):
        self.directory = directory
        self.contacts: Counter[str] = Counter()
        self.links: Counter[str] = Counter()

    def unit_of(self, session, ledger: str) -> str:
        return self.directory.unit_of(session, ledger)

    def hearers(self, session, unit: str, name: str) -> list[str]:
        return self.directory.hearers(session, unit, name)

    def contact(self, session, person: str) -> Contact | None:
        self.contacts[person] += 1
        return self.directory.contact(session, person)

    def link(self, session, person: str, now: dt.datetime) -> str | None:
        self.links[person] += 1
        return self.directory.link(session, person, now)


def test_one_contact_per_person_and_one_signature_per_digest(project, cli):
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + f"""
[board]
public_url = "{BASE}"

[notifications]
jitter_seconds = 0

[channels.mail]
kind = "email"
host = "127.0.0.1"
port = 9
sender = "duban@example.org"
starttls = false

[channels.wx]
kind = "wecom_app"
base_url = "{BASE}"
corp_id = "{WeComApp.corp_id}"
agent_id = {WeComApp.agent_id}
corp_secret_env = "WX_SECRET"
""", encoding="utf-8")
    assert cli("init", "--at", "2026-12-01T09:00").code == 0
    assert cli("ledger", "import", EXAMPLE, "--at", "2026-12-01T09:00").code == 0
    assert cli("user", "set", "办公室", "--wecom", "bgs", "--email", "bgs@example.org").code == 0

    loaded = load_config(config)
    runtime = Runtime(loaded)
    sessions = db.session_factory(db.make_engine(loaded.database.url))
    assert Sweeper(runtime, sessions).sweep(AT).written > 0
    people = Counting(AccountDirectory(BASE))
    routed = Notifier(runtime, sessions, people=people).pipeline.route_pending(AT)
    assert routed.messages > 0

    with sessions() as s:
        queued = s.scalars(select(OutboxMessage).where(OutboxMessage.channel != "")).all()
    personal = Counter(m.recipient for m in queued)  # e-mail and an app's notice: one reader each
    assert people.links == personal  # one signature per digest, not one for the items and one for the card
    assert set(people.contacts.values()) == {1}  # each person asked once for the whole batch

    [notice] = [m for m in queued if m.channel == "wx"]
    card = AppCard.from_stored(notice.data)
    assert card is not None and card.total >= 1 and card.lines
    assert card.link and re.fullmatch(rf"{re.escape(BASE)}/w/[\w.\-]+", card.link)
    assert f"{card.link}?next=" in notice.text  # the items open through the same signed link
    [letter] = [m for m in queued if m.channel == "mail"]
    assert letter.address == "bgs@example.org" and f"{card.link}?next=" in letter.text
