"""Which account an outside identity names (engine.accounts.external), over all assignments of ids.

The rule: an app user id signs in the one enabled account whose ``im`` lists it (``a|b`` lists
two), and nobody when no account or several accounts list it; a sign-on claim names an account by
its login name, or within a unit by ``UNIT/NAME``. Checked by Hypothesis on the real schema, on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.accounts.external import by_app_id, by_claim
from engine.accounts.users import NewUser, add_user
from engine.store import db

NOW = dt.datetime(2026, 12, 6, 9, tzinfo=dt.UTC)
IDS = st.sampled_from(["zhangsan", "lisi", "wangwu", "zhao.liu", "u-07"])
# each of four accounts: the ids it lists on one platform (joined by |), and whether it is disabled
ACCOUNTS = st.lists(st.tuples(st.lists(IDS, max_size=3), st.booleans()), min_size=4, max_size=4)


def test_an_app_id_names_the_one_enabled_account_that_lists_it(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    sessions = db.session_factory(engine)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(accounts=ACCOUNTS, platform=st.sampled_from(["wecom", "dingtalk", "feishu"]), wanted=IDS)
    def check(accounts, platform, wanted):
        with sessions() as session:
            try:
                made = []
                for n, (ids, disabled) in enumerate(accounts):
                    user = add_user(session, NewUser(f"单位/科室{n}", unit="单位", roles=("department:科室",),
                                                     im={platform: " | ".join(ids)}), NOW)
                    user.disabled = disabled
                    made.append(user)
                session.flush()
                holders = [u for u, (ids, disabled) in zip(made, accounts, strict=True)
                           if wanted in ids and not disabled]
                found = by_app_id(session, platform, wanted)
                assert (found.user.id if found.user else None) == (holders[0].id if len(holders) == 1 else None)
                assert found.user is not None or found.reason
                other = next(p for p in ("wecom", "dingtalk", "feishu") if p != platform)
                assert by_app_id(session, other, wanted).user is None  # ids of one platform only
            finally:
                session.rollback()

    check()
    with db.transaction(sessions) as session:
        add_user(session, NewUser("区审计局/办公室", unit="区审计局", roles=("department:办公室",)), NOW)
        add_user(session, NewUser("巡察整改办公室", roles=("reviewer",)), NOW)
    with sessions() as session:
        assert by_claim(session, "办公室", "区审计局").user.name == "区审计局/办公室"
        assert by_claim(session, "巡察整改办公室").user.name == "巡察整改办公室"
        assert by_claim(session, "办公室").user is None  # a bare name is not guessed into a unit
        assert by_claim(session, "办公室", "区统计局").user is None
        assert by_claim(session, "").reason
    engine.dispose()
