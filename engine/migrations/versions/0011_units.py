"""Accounts per unit; the round of each history entry (four eyes)

Before this revision the ledger import made one account per bare name ("办公室"), bound to no
unit, so one 办公室 account saw and was reminded of every unit's 办公室 items. Now an account made
for a ledger belongs to that ledger's unit and is named ``UNIT/NAME`` (display name ``NAME``).

Moving today's accounts: an account bound to no unit whose roles are only the leader or department
it is named after, and whose name appears in the 责任领导/责任科室 cells of ledgers of units, becomes
the account of the first such unit (renamed ``UNIT/NAME``, its id, password, tokens and addresses
kept); every further unit gets its own account ``UNIT/NAME`` with the same addresses and no
password. The history and evidence written by that name on a unit's issues are re-attributed to
that unit's account, so each account keeps the links to what it did. An account that also appears
in ledgers of no unit keeps its name and stays district-wide; the units still get their own.

``history.round`` is the issue's round once the step was taken: who submitted a round is read
from it. Existing entries are numbered by counting the shipped workflow's ``return`` steps.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('history') as batch:
        batch.add_column(sa.Column('round', sa.Integer(), nullable=True))
    op.execute("UPDATE history SET round = 1 + (SELECT count(*) FROM history h2 WHERE h2.issue_id = history.issue_id "
               "AND h2.trigger = 'return' AND h2.id <= history.id)")
    op.create_index('ix_user_roles_role_scope', 'user_roles', ['role', 'scope'], unique=False)
    op.create_index('ix_users_unit', 'users', ['unit'], unique=False)
    _move_accounts(op.get_bind())


def _move_accounts(conn: sa.Connection) -> None:
    users = conn.execute(sa.text("SELECT id, name, display_name, email, phone, im, created_at, updated_at "
                                 "FROM users WHERE unit = ''")).mappings().all()
    for user in users:
        grants = conn.execute(sa.text("SELECT role, scope FROM user_roles WHERE user_id = :id"),
                              {"id": user["id"]}).all()
        name = user["name"]
        if not grants or any(role not in ('leader', 'department') or scope not in ('', name) for role, scope in grants):
            continue
        rows = conn.execute(sa.text(
            "SELECT DISTINCT ledgers.unit FROM issues JOIN ledgers ON ledgers.id = issues.ledger_id "
            "WHERE issues.leader = :n UNION SELECT DISTINCT ledgers.unit FROM issue_departments d "
            "JOIN ledgers ON ledgers.id = d.ledger_id WHERE d.department = :n"), {"n": name}).all()
        units = sorted({r[0] or '' for r in rows})
        named = [u for u in units if u]
        if not named:
            continue
        keep_original = '' in units
        for i, unit in enumerate(named):
            login = f"{unit}/{name}"[:200]
            if conn.execute(sa.text("SELECT 1 FROM users WHERE name = :n"), {"n": login}).first():
                continue
            if i == 0 and not keep_original:
                conn.execute(sa.text("UPDATE users SET name = :login, unit = :unit, display_name = :shown "
                                     "WHERE id = :id"),
                             {"login": login, "unit": unit, "shown": user["display_name"] or name, "id": user["id"]})
                conn.execute(sa.text("UPDATE user_roles SET scope = :n WHERE user_id = :id"), {"n": name, "id": user["id"]})
            else:
                conn.execute(sa.text(
                    "INSERT INTO users (name, display_name, unit, email, phone, im, disabled, failed_logins, "
                    "session_epoch, created_at, updated_at) VALUES (:login, :shown, :unit, :email, :phone, :im, "
                    ":disabled, 0, 0, :created, :updated)"),
                    {"login": login, "shown": user["display_name"] or name, "unit": unit, "email": user["email"],
                     "phone": user["phone"], "im": _json(user["im"]), "disabled": False,
                     "created": user["created_at"], "updated": user["updated_at"]})
                new_id = conn.execute(sa.text("SELECT id FROM users WHERE name = :n"), {"n": login}).scalar_one()
                for role, _ in grants:
                    conn.execute(sa.text("INSERT INTO user_roles (user_id, role, scope) VALUES (:id, :role, :scope)"),
                                 {"id": new_id, "role": role, "scope": name})
            for table, column in (("history", "by"), ("evidence", "added_by")):
                conn.execute(sa.text(
                    f"UPDATE {table} SET {column} = :login WHERE {column} = :n AND issue_id IN "
                    "(SELECT issues.id FROM issues JOIN ledgers ON ledgers.id = issues.ledger_id WHERE ledgers.unit = :u)"),
                    {"login": login, "n": name, "u": unit})


def _json(value: object) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value or {}, ensure_ascii=False)


def downgrade() -> None:
    op.drop_index('ix_users_unit', table_name='users')
    op.drop_index('ix_user_roles_role_scope', table_name='user_roles')
    with op.batch_alter_table('history') as batch:
        batch.drop_column('round')
