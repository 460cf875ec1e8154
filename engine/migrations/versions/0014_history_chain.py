"""The history as a hash chain per issue; field-level changes

Every history entry gets ``changes`` (field by field before → after, an import's file and row, an
evidence file's id and SHA-256), ``prev_hash`` and ``hash`` (engine/issues/history.py), and
``(issue_id, prev_hash)`` is unique so two writers cannot fork a chain. The entries written before
this revision are chained now, in the order they were written; an issue with evidence files gets
one more entry (``chain_start``, by duban, door system) recording each file's id and SHA-256, so
that from here on a changed file is found by ``duban audit verify``.

``site_state`` keeps small facts about the installation: the fingerprint of the calendar the stored
plans were made on, so a changed calendar re-plans them by itself.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""
import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

from engine.issues.history import entry_hash, genesis

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def _when(value: object) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _changes(value: object) -> list | None:
    return json.loads(value) if isinstance(value, str) else value  # type: ignore[return-value]


def upgrade() -> None:
    op.create_table('site_state', sa.Column('name', sa.String(60), primary_key=True),
                    sa.Column('value', sa.Text(), nullable=False), sa.Column('updated_at', sa.DateTime(), nullable=False))
    with op.batch_alter_table('history') as batch:
        batch.add_column(sa.Column('changes', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('prev_hash', sa.String(64), nullable=True))
        batch.add_column(sa.Column('hash', sa.String(64), nullable=True))
        batch.create_unique_constraint('uq_history_issue_prev', ['issue_id', 'prev_hash'])
    conn = op.get_bind()
    heads: dict[int, str] = {}
    last = (0, 0)
    while True:
        rows = conn.execute(sa.text(
            "SELECT id, issue_id, at, by, door, trigger, from_state, to_state, note, round, changes FROM history "
            "WHERE issue_id > :i OR (issue_id = :i AND id > :h) ORDER BY issue_id, id LIMIT 5000"),
            {"i": last[0], "h": last[1]}).mappings().all()
        if not rows:
            break
        updates = []
        for r in rows:
            prev = heads.get(r["issue_id"], genesis(r["issue_id"]))
            value = entry_hash(r["issue_id"], _when(r["at"]), r["by"], r["door"], r["trigger"], r["from_state"],
                               r["to_state"], r["note"], r["round"], _changes(r["changes"]), prev)
            heads[r["issue_id"]] = value
            updates.append({"b_id": r["id"], "b_prev": prev, "b_hash": value})
        conn.execute(sa.text("UPDATE history SET prev_hash = :b_prev, hash = :b_hash WHERE id = :b_id"), updates)
        last = (rows[-1]["issue_id"], rows[-1]["id"])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    files: dict[int, list[dict]] = {}
    for evidence_id, issue_id, sha in conn.execute(sa.text(
            "SELECT id, issue_id, sha256 FROM evidence WHERE issue_id IS NOT NULL ORDER BY issue_id, id")):
        files.setdefault(issue_id, []).append({"evidence": evidence_id, "sha256": sha})
    for issue_id, changes in files.items():
        state, round_ = conn.execute(sa.text("SELECT state, round FROM issues WHERE id = :i"), {"i": issue_id}).one()
        prev = heads.get(issue_id, genesis(issue_id))
        note = "历史记录开始校验：登记已有佐证材料"
        value = entry_hash(issue_id, now, "duban", "system", "chain_start", state, state, note, round_, changes, prev)
        conn.execute(sa.text(
            "INSERT INTO history (issue_id, at, by, door, trigger, from_state, to_state, note, round, changes, "
            "prev_hash, hash) VALUES (:i, :at, 'duban', 'system', 'chain_start', :s, :s, :note, :r, :c, :p, :h)"),
            {"i": issue_id, "at": now.replace(tzinfo=None), "s": state, "note": note, "r": round_,
             "c": json.dumps(changes), "p": prev, "h": value})


def downgrade() -> None:
    op.drop_table('site_state')
    op.execute("DELETE FROM history WHERE trigger = 'chain_start'")
    with op.batch_alter_table('history') as batch:
        batch.drop_constraint('uq_history_issue_prev', type_='unique')
        batch.drop_column('hash')
        batch.drop_column('prev_hash')
        batch.drop_column('changes')
