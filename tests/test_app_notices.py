"""Tried as an operator would: a ledger of 30 problems for 5 people, the three organisation apps
configured, one sweep. Each platform gets one notice per person, each notice's 去处理 button opens
that person's items in the workspace, and each app's token is fetched once."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import httpx

from tests.app_servers import DingTalkApp, FeishuApp, WeComApp, addressee, button
from tests.peers import LoopbackHTTP, free_port
from tests.test_workspace import workspace

LEDGER = "2026-璧山区科技局"
DEPARTMENTS = ("办公室", "财务室", "法规科", "综合科")
PEOPLE = ("党组书记", *DEPARTMENTS)
IDS = {name: f"user{n}" for n, name in enumerate(PEOPLE)}  # the same id on each platform, for brevity


def _ledger(path: Path) -> dict[str, list[str]]:
    """30 problems: the leader answers for all, each department for its share; refs by person."""
    refs: dict[str, list[str]] = {name: [] for name in PEOPLE}
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["序号", "方面", "问题类别", "具体问题", "整改措施", "责任领导", "责任科室", "整改时限",
                      "整改状态", "单位"])
        for n in range(1, 31):
            department = DEPARTMENTS[n % len(DEPARTMENTS)]
            out.writerow([n, "聚焦全面从严治党方面", "作风建设", f"第{n}项问题整改不到位", f"第{n}项整改措施",
                          "党组书记", department, "2026-12-31", "整改中", "中共重庆市璧山区科学技术局党组"])
            refs["党组书记"].append(str(n))
            refs[department].append(str(n))
    return refs


def _configure(project: Path, port: int, wx: LoopbackHTTP, dt: LoopbackHTTP, fs: LoopbackHTTP) -> None:
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + f"""
[board]
public_url = "http://127.0.0.1:{port}"

[notifications]
jitter_seconds = 0

[channels.wx]
kind = "wecom_app"
base_url = "{wx.url('')}"
corp_id = "{WeComApp.corp_id}"
agent_id = {WeComApp.agent_id}
corp_secret_env = "WX_SECRET"

[channels.dt]
kind = "dingtalk_app"
base_url = "{dt.url('')}"
client_id = "{DingTalkApp.app_key}"
agent_id = {DingTalkApp.agent_id}
client_secret_env = "DT_SECRET"

[channels.fs]
kind = "feishu_app"
base_url = "{fs.url('')}"
app_id = "{FeishuApp.app_id}"
app_secret_env = "FS_SECRET"
""", encoding="utf-8")


SECRETS = {"WX_SECRET": "s3cret", "DT_SECRET": "s3cret", "FS_SECRET": "s3cret"}


def test_one_sweep_sends_one_notice_per_person_on_each_platform(project, cli, tmp_path):
    wecom, dingtalk, feishu = (cls(users=set(IDS.values())) for cls in (WeComApp, DingTalkApp, FeishuApp))
    port = free_port()
    with LoopbackHTTP(wecom) as wx, LoopbackHTTP(dingtalk) as dt, LoopbackHTTP(feishu) as fs:
        _configure(project, port, wx, dt, fs)
        secrets = SECRETS
        people = tmp_path / "people.csv"
        with people.open("w", encoding="utf-8", newline="") as f:
            out = csv.writer(f)
            out.writerow(["name", "display_name", "unit", "email", "phone", "wecom", "dingtalk", "feishu", "roles"])
            for name in PEOPLE:
                role = "leader" if name == "党组书记" else "department"
                out.writerow([name, "", "", "", "", IDS[name], IDS[name], IDS[name], role])
        refs = _ledger(tmp_path / f"{LEDGER}.csv")
        assert cli("init", "--at", "2026-12-01T09:00").code == 0
        imported = cli("ledger", "import", tmp_path / f"{LEDGER}.csv", "--at", "2026-12-01T09:00")
        assert imported.code == 0, imported.err
        assert "accounts made" in imported.out  # with no addresses yet: the admin fills in the IM ids
        assert cli("user", "import", people).code == 2  # they exist already
        filled = cli("user", "import", people, "--update")
        assert filled.code == 0 and "0 user(s) added, 5 updated" in filled.out, filled.out + filled.err
        checked = cli("config", "check", **secrets)  # the shipped escalations name people not set up here
        assert "'admin'" in checked.out and not any(f"'{name}'" in checked.out for name in PEOPLE), checked.out

        swept = cli("sweep", "--at", "2026-12-24T09:30", **secrets)
        assert swept.code == 0, swept.err
        assert "into 15 message(s)" in swept.out and "delivered 15" in swept.out, swept.out

        for platform in (wecom, dingtalk, feishu):
            assert platform.problems == [] and platform.tokens_issued == 1
            assert Counter(addressee(platform, n) for n in platform.notices) == Counter(IDS.values())
        links = {addressee(wecom, n): button(wecom, n) for n in wecom.notices}
        for platform in (dingtalk, feishu):
            for n in platform.notices:  # the same person's button is the same signed link everywhere
                assert button(platform, n) == links[addressee(platform, n)]

    with workspace(project, port):
        for name in PEOPLE:
            link = links[IDS[name]]
            assert link and re.fullmatch(rf"http://127\.0\.0\.1:{port}/w/[\w.\-]+", link), link
            with httpx.Client(follow_redirects=True, timeout=30) as web:
                page = web.get(link)
                assert page.status_code == 200 and "我的待办" in page.text
                if name == "党组书记":
                    continue
                for ref in refs[name]:
                    assert f"{LEDGER}/{ref}<" in page.text or f"{LEDGER}/{ref}\"" in page.text, (name, ref)
                others = {r for other in DEPARTMENTS if other != name for r in refs[other]}
                assert not any(f"{LEDGER}/{r}<" in page.text for r in others), name


def test_notify_test_sends_one_card_and_config_check_names_accounts_without_an_id(project, cli, tmp_path):
    wecom, dingtalk, feishu = (cls(users={"bgs"}) for cls in (WeComApp, DingTalkApp, FeishuApp))
    port = free_port()
    with LoopbackHTTP(wecom) as wx, LoopbackHTTP(dingtalk) as dt, LoopbackHTTP(feishu) as fs:
        _configure(project, port, wx, dt, fs)
        assert cli("init").code == 0
        assert cli("user", "add", "办公室", "--role", "department", "--wecom", "bgs", "--feishu", "bgs").code == 0
        assert cli("user", "add", "财务室", "--role", "department").code == 0
        checked = cli("config", "check", **SECRETS)
        assert "warning: channel 'wx' (wecom_app): 1 account(s) without a wecom id: 财务室" in checked.out
        assert "warning: channel 'dt' (dingtalk_app): 2 account(s) without a dingtalk id: 办公室, 财务室" in checked.out
        assert cli("user", "set", "财务室", "--dingtalk", "cws").out.strip() == "user 财务室: changed dingtalk"
        assert cli("user", "set", "财务室", "--dingtalk", "cws").out.strip() == "user 财务室: no change"
        assert cli("user", "set", "无名", "--dingtalk", "x").code == 2
        checked = cli("config", "check", **SECRETS)
        assert "without a dingtalk id: 办公室\n" in checked.out and "without a wecom id: 财务室" in checked.out
        assert cli("user", "set", "财务室", "--dingtalk", "").out.strip() == "user 财务室: changed dingtalk"

        sent = cli("notify", "test", "wx", "办公室", **SECRETS)
        assert sent.code == 0, sent.err
        assert len(wecom.notices) == 1 and wecom.notices[0]["touser"] == "bgs"
        link = button(wecom, wecom.notices[0])
        assert link and link.startswith(f"http://127.0.0.1:{port}/w/") and link in sent.out
        assert "测试消息" in wecom.notices[0]["textcard"]["title"]

        assert cli("notify", "test", "fs", "办公室", **SECRETS).code == 0 and len(feishu.notices) == 1

        missing = cli("notify", "test", "dt", "办公室", **SECRETS)
        assert missing.code == 2 and "no address on 'dt'" in missing.err and "dingtalk id" in missing.err
        refused = cli("notify", "test", "wx", "财务室", **SECRETS)
        assert refused.code == 2 and dingtalk.notices == []
        # the token fetched by the first test notice is kept in the database: a later process uses it
        assert cli("notify", "test", "wx", "办公室", WX_SECRET="wrong").code == 0 and wecom.tokens_issued == 1
        wecom.expire()  # once it expires, the wrong secret is found out (and not printed)
        wrong = cli("notify", "test", "wx", "办公室", WX_SECRET="wrong")
        assert wrong.code != 0 and "40001" in wrong.err and "wrong" not in wrong.err
