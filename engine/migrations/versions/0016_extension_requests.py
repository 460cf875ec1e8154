"""Pending extension requests (延期申请) as their own rows, due and reminded; the round of evidence

Until this revision a pending 延期申请 lived in ``issues.extra["extension"]``: no one's 我的待办
listed it and no reminder was planned for it (and a re-import of the ledger could wipe it with the
sheet's unknown columns). Now each request is a row of ``extension_requests``, followed by the
reminder core like an issue's deadline (``next_remind_at``, ``due_on``, ``overdue_on``); deciding
it keeps the row with the decision and, for a refusal, its reason. The requests waiting today are
moved here, dated by the history entry that asked for them, and are planned by the first sweep
(their ``next_remind_at`` is the moment they were asked: already due).

``evidence.round`` is the issue's round (整改轮次) when the file was added, so a resubmission after
a 退回 can ask for evidence of its own round (the guard ``has_new_evidence``). Existing files get
the round of the issue's last history entry before their upload (a file given with a step
belongs to the round the step was taken in).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

import engine.store.types

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_ISSUES = sa.table('issues', sa.column('id', sa.Integer()), sa.column('extra', sa.JSON()),
                   sa.column('round', sa.Integer()), sa.column('updated_at', sa.DateTime()))
_HISTORY = sa.table('history', sa.column('issue_id', sa.Integer()), sa.column('trigger', sa.String()),
                    sa.column('at', sa.DateTime()))
_REQUESTS = sa.table('extension_requests', sa.column('id', sa.Integer()), sa.column('issue_id', sa.Integer()),
                     sa.column('round', sa.Integer()), sa.column('requested_to', sa.Date()),
                     sa.column('reason', sa.Text()), sa.column('requested_by', sa.String()),
                     sa.column('requested_at', sa.DateTime()), sa.column('state', sa.String()),
                     sa.column('decision_note', sa.Text()), sa.column('next_remind_at', sa.DateTime()),
                     sa.column('remind_after', sa.DateTime()))


def upgrade() -> None:
    op.create_table('extension_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('issue_id', sa.Integer(), nullable=False),
        sa.Column('round', sa.Integer(), nullable=False),
        sa.Column('requested_to', sa.Date(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('requested_by', sa.String(length=200), nullable=False),
        sa.Column('requested_at', engine.store.types.UTCDateTime(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('decided_at', engine.store.types.UTCDateTime(), nullable=True),
        sa.Column('decided_by', sa.String(length=200), nullable=True),
        sa.Column('decision_note', sa.Text(), nullable=False),
        sa.Column('next_remind_at', engine.store.types.UTCDateTime(), nullable=True),
        sa.Column('remind_after', engine.store.types.UTCDateTime(), nullable=True),
        sa.Column('due_on', sa.Date(), nullable=True),
        sa.Column('overdue_on', sa.Date(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'approved', 'refused')",
                           name='ck_extension_requests_extension_state'),
        sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], name='fk_extension_requests_issue_id_issues',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_extension_requests'),
    )
    op.create_index('ix_extension_requests_issue_id', 'extension_requests', ['issue_id'], unique=False)
    op.create_index('ix_extension_requests_next_remind_at', 'extension_requests', ['next_remind_at'], unique=False)
    op.create_index('ix_extension_requests_requester', 'extension_requests', ['requested_by', 'decided_at'],
                    unique=False)
    op.create_index('uq_extension_requests_pending', 'extension_requests', ['issue_id'], unique=True,
                    sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
    _move_pending_requests(op.get_bind())

    with op.batch_alter_table('evidence') as batch:
        batch.add_column(sa.Column('round', sa.Integer(), nullable=True))
    op.execute("UPDATE evidence SET round = COALESCE((SELECT max(h.round) FROM history h "
               "WHERE h.issue_id = evidence.issue_id AND h.at < evidence.added_at), 1) WHERE issue_id IS NOT NULL")


def _asked(value: object) -> dict | None:
    if not isinstance(value, dict):
        return None
    asked = value.get('extension')
    return asked if isinstance(asked, dict) and {'to', 'by', 'reason'} <= set(asked) else None


def _move_pending_requests(conn: sa.Connection) -> None:
    # LIKE finds the few candidates without decoding every issue's extra columns
    rows = conn.execute(sa.select(_ISSUES.c.id, _ISSUES.c.extra, _ISSUES.c.round, _ISSUES.c.updated_at)
                        .where(sa.cast(_ISSUES.c.extra, sa.Text()).like('%"extension"%'))).all()
    for issue_id, extra, round_, updated_at in rows:
        asked = _asked(extra)
        if asked is None:
            continue
        asked_at = conn.execute(sa.select(sa.func.max(_HISTORY.c.at)).where(
            _HISTORY.c.issue_id == issue_id, _HISTORY.c.trigger == 'extension_request')).scalar()
        when = asked_at or updated_at
        conn.execute(sa.insert(_REQUESTS).values(
            issue_id=issue_id, round=round_ or 1, requested_to=dt.date.fromisoformat(str(asked['to'])),
            reason=str(asked['reason']), requested_by=str(asked['by'])[:200], requested_at=when, state='pending',
            decision_note='', next_remind_at=when, remind_after=when))
        conn.execute(sa.update(_ISSUES).where(_ISSUES.c.id == issue_id).values(
            extra={k: v for k, v in extra.items() if k != 'extension'}))


def downgrade() -> None:
    with op.batch_alter_table('evidence') as batch:
        batch.drop_column('round')
    conn = op.get_bind()
    pending = conn.execute(sa.select(_REQUESTS.c.issue_id, _REQUESTS.c.requested_to, _REQUESTS.c.requested_by,
                                     _REQUESTS.c.reason).where(_REQUESTS.c.state == 'pending')).all()
    for issue_id, to, by, reason in pending:
        extra = conn.execute(sa.select(_ISSUES.c.extra).where(_ISSUES.c.id == issue_id)).scalar() or {}
        conn.execute(sa.update(_ISSUES).where(_ISSUES.c.id == issue_id).values(
            extra={**extra, 'extension': {'to': to.isoformat(), 'by': by, 'reason': reason}}))
    op.drop_index('uq_extension_requests_pending', table_name='extension_requests',
                  sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
    op.drop_index('ix_extension_requests_requester', table_name='extension_requests')
    op.drop_index('ix_extension_requests_next_remind_at', table_name='extension_requests')
    op.drop_index('ix_extension_requests_issue_id', table_name='extension_requests')
    op.drop_table('extension_requests')
