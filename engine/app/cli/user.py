"""``duban user``: accounts, roles, passwords, API tokens and the links reminders carry."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ...accounts import credentials
from ...accounts import users as accounts
from ...accounts.links import SKEW, make_link_token, site_secret, takes_links
from ...accounts.policy import ACCOUNT_ROLES
from ...errors import BadInput, Refused
from ...i18n import _
from .context import App, at_option, json_option, pass_app
from .language import Group
from .output import err, out, print_json, say, warn

PASSWORD_ENV = "DUBAN_NEW_PASSWORD"


@click.group("user", cls=Group)
def user_group() -> None:
    """Accounts of the people who act, their roles, passwords and links."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE[:SCOPE]",
              help=f"Repeatable. Roles: {', '.join(ACCOUNT_ROLES)}; e.g. department:办公室, reviewer:ledger:NAME.")
@click.option("--display-name", default="")
@click.option("--unit", default="", help="Bind the user to one unit (被巡察单位): they see only its ledgers.")
@click.option("--email", default="")
@click.option("--phone", default="")
@click.option("--wecom", default="", help="WeCom user id.")
@click.option("--dingtalk", default="", help="DingTalk user id.")
@click.option("--feishu", default="", help="Feishu open id.")
@click.option("--password-stdin", is_flag=True, help=f"Read a password from stdin (or set {PASSWORD_ENV}).")
@at_option
@pass_app
def add(app: App, name: str, roles: tuple[str, ...], display_name: str, unit: str, email: str, phone: str,
        wecom: str, dingtalk: str, feishu: str, password_stdin: bool, at: str | None) -> None:
    """Add a user with one or more roles."""
    password = _password(password_stdin, required=False)
    with app.transaction() as session:
        user = accounts.add_user(session, accounts.NewUser(name, display_name, unit, email, phone,
                                                           {"wecom": wecom, "dingtalk": dingtalk, "feishu": feishu},
                                                           roles), app.now(at), password=password)
        say(f"user {user.name}: {', '.join(_grant(g.role, g.scope) for g in user.grants)}")


@user_group.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--update", is_flag=True, help="Fill in the contacts of accounts that exist already.")
@at_option
@pass_app
def import_(app: App, file: Path, update: bool, at: str | None) -> None:
    """Add the users of a CSV (name, display_name, unit, email, phone, wecom, dingtalk, feishu, roles;
    roles separated by ';'). All rows or none. With --update, rows naming existing accounts fill in
    their contacts (e-mail, phone, IM ids) instead of being refused."""
    with app.transaction() as session:
        added, updated = accounts.import_users(session, file, app.now(at), update=update)
    if update:
        say(f"{file}: {len(added)} user(s) added, {len(updated)} updated")
    else:
        say(f"{file}: {len(added)} user(s) added")


@user_group.command("set")
@click.argument("name")
@click.option("--display-name", default=None)
@click.option("--email", default=None)
@click.option("--phone", default=None)
@click.option("--wecom", default=None, help="WeCom userid ('' clears it).")
@click.option("--dingtalk", default=None, help="DingTalk userid.")
@click.option("--feishu", default=None, help="Feishu user id (or the channel's id_type).")
@at_option
@pass_app
def set_(app: App, name: str, at: str | None, **fields: str | None) -> None:
    """Fill in or change NAME's contacts: where reminders reach them."""
    changes = {k: v for k, v in fields.items() if v is not None}
    if not changes:
        raise BadInput("nothing to change", hint="give --email, --phone, --wecom, --dingtalk, --feishu or --display-name")
    with app.transaction() as session:
        changed = accounts.set_contacts(session, name, changes, app.now(at))
    if changed:
        say(f"user {name}: changed {', '.join(changed)}")
    else:
        say(f"user {name}: no change")


@user_group.command("list")
@json_option
@pass_app
def list_(app: App, as_json: bool) -> None:
    """Every user with their roles (never a password)."""
    with app.reading() as session:
        rows: list[dict[str, Any]] = [{"name": u.name, "display_name": u.display_name, "unit": u.unit, "email": u.email,
                 "phone": u.phone, "im": u.im, "roles": [_grant(g.role, g.scope) for g in u.grants],
                 "password": u.password_hash is not None, "disabled": u.disabled}
                for u in accounts.list_users(session, limit=100_000)]
    if as_json:
        print_json(rows)
        return
    table = Table(_("name"), _("display"), _("unit"), _("roles"), _("password"), _("disabled"))
    for r in rows:
        table.add_row(r["name"], r["display_name"], r["unit"], ", ".join(r["roles"]), "yes" if r["password"] else "",
                      "yes" if r["disabled"] else "")
    out.print(table)


@user_group.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help=f"Read the password from stdin (or set {PASSWORD_ENV}).")
@at_option
@pass_app
def passwd(app: App, name: str, password_stdin: bool, at: str | None) -> None:
    """Set a user's password (their sessions, API tokens and links end)."""
    password = _password(password_stdin, required=True)
    assert password is not None
    with app.transaction() as session:
        accounts.set_password(session, name, password, app.now(at))
    say(f"user {name}: password set")


@user_group.command("disable")
@click.argument("name")
@at_option
@pass_app
def disable(app: App, name: str, at: str | None) -> None:
    """Disable a user: no login, no link, no token works for them any more."""
    with app.transaction() as session:
        accounts.disable(session, name, app.now(at))
    say(f"user {name}: disabled")


@user_group.command("revoke")
@click.argument("name")
@at_option
@pass_app
def revoke(app: App, name: str, at: str | None) -> None:
    """Log a user out everywhere, revoke their API tokens and void every link sent to them."""
    with app.transaction() as session:
        accounts.revoke(session, name, app.now(at))
    say(f"user {name}: sessions, API tokens and links revoked")


class _TokenGroup(Group):
    """``user token NAME …`` is ``user token new NAME …``: the subcommands come first by name."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["new", *args]
        return super().parse_args(ctx, args)


@user_group.group("token", cls=_TokenGroup)
def token_group() -> None:
    """API tokens: `user token NAME [--days N] [--label L]` makes one; `list NAME`, `revoke ID`.

    A token acts as NAME through /api/v1 until it expires (90 days unless --days says) or is
    revoked: by `user token revoke ID`, and with every other token of NAME by `user revoke`,
    `user disable`, `user passwd` and the workspace's 全部退出. (A user called "list" or "revoke":
    `user token new list`.)"""


@token_group.command("new")
@click.argument("name")
@click.option("--days", type=click.IntRange(1, credentials.MAX_TOKEN_DAYS), default=credentials.TOKEN_DAYS,
              show_default=True, help="How long the token lasts.")
@click.option("--label", default="", help="What the token is for (an integration's name).")
@json_option
@at_option
@pass_app
def token_new(app: App, name: str, days: int, label: str, as_json: bool, at: str | None) -> None:
    """Make an API token acting as NAME (printed once; only its hash is kept)."""
    with app.transaction() as session:
        value, row = credentials.new_api_token(session, accounts.get_user(session, name), label, app.now(at), days=days)
        shown = _token_row(app, row)
    if as_json:
        print_json({**shown, "user": name, "token": value})
        return
    say(value)
    label = f" ({shown['label']})" if shown["label"] else ""
    err.print(_("token {id} of {name}{label}: expires {expires}; shown once, only its hash is kept")
              .format(id=shown["id"], name=name, label=label, expires=shown["expires"]), markup=False)


@token_group.command("list")
@click.argument("name")
@json_option
@at_option
@pass_app
def token_list(app: App, name: str, as_json: bool, at: str | None) -> None:
    """NAME's API tokens: id, label, made, expires, revoked (never the token itself)."""
    now = app.now(at)
    with app.reading() as session:
        rows = [{**_token_row(app, t), "expired": t.expires_at <= now}
                for t in credentials.tokens_of(session, accounts.get_user(session, name))]
    if as_json:
        print_json(rows)
        return
    table = Table(_("id"), _("label"), _("created"), _("expires"), _("state"))
    for r in rows:
        state = "revoked" if r["revoked"] else "expired" if r["expired"] else "in force"
        table.add_row(str(r["id"]), r["label"], r["created"], r["expires"], state)
    out.print(table)


@token_group.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@pass_app
def token_revoke(app: App, token_id: int) -> None:
    """Revoke the API token ID (see `user token list NAME`): it answers 401 from now on."""
    with app.transaction() as session:
        row, was = credentials.revoke_token(session, token_id)
        owner = credentials.token_owner(session, row)
    say(f"token {token_id} of {owner}: " + ("revoked" if was else "was revoked already"))


def _token_row(app: App, row: credentials.TokenRow) -> dict[str, Any]:
    tz = app.config.tz
    return {"id": row.id, "label": row.label, "created": row.created_at.astimezone(tz).isoformat(timespec="seconds"),
            "expires": row.expires_at.astimezone(tz).isoformat(timespec="seconds"), "revoked": row.revoked}


@user_group.command("link")
@click.argument("name")
@at_option
@pass_app
def link(app: App, name: str, at: str | None) -> None:
    """Print NAME's signed workspace link (what their reminders carry); none for an administrator."""
    now = app.now(at)
    days = app.config.workspace.link_days
    with app.transaction() as session:
        user = accounts.get_user(session, name)
        if user.disabled:
            raise Refused(f"user {user.name!r} is disabled: a link would not open")
        if not takes_links(user):
            raise Refused(f"user {user.name!r} is an administrator: administrators get no link",
                          hint=f"they sign in with a password at /ws/login (`duban user passwd {user.name}`)")
        value = make_link_token(site_secret(session), user.id, user.session_epoch, now, days=days)
    if now > dt.datetime.now(dt.UTC) + SKEW:
        warn(f"--at is later than now: the link is refused until {now.astimezone(app.config.tz):%Y-%m-%d %H:%M} "
             f"(no link opens further than [workspace] link_days = {days} ahead)")
    say(f"{app.config.board.base_url}/w/{value}")


def _grant(role: str, scope: str) -> str:
    return f"{role}:{scope}" if scope else role


def _password(from_stdin: bool, *, required: bool) -> str | None:
    if from_stdin:
        value = sys.stdin.readline().rstrip("\n")
    else:
        value = os.environ.get(PASSWORD_ENV, "")
    if not value:
        if required:
            raise BadInput(f"give the password on stdin (--password-stdin) or in {PASSWORD_ENV}",
                           hint="never on the command line: it would stay in the shell's history")
        return None
    return value
