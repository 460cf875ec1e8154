"""closed vocabularies as CHECK constraints; the reminder core's plan on issues and occurrences;
reminder details as typed facts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

* ``kind``/``status``/``state`` columns get CHECK constraints listing their values;
* ``issues.due_on``/``issues.overdue_on`` and ``duty_occurrences.overdue_on`` (indexed) hold what
  the reminder core says of each row's deadline; they start empty and are filled by the re-plan
  that ``duban init`` / ``duban db upgrade`` runs after this revision;
* ``issue_departments`` lists each department a 责任科室 cell names (filled here);
* ``reminders.details`` is rewritten from the old free-form dict into the shape of
  ``ReminderFacts`` (``subject_kind`` added, ``milestone`` dropped).
"""
import json
import re

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

CHECKS = {
    # table: [(constraint, column, values)]
    'reminders': [('ck_reminders_reminder_kind', 'kind',
                   ('escalation', 'overdue', 'due', 'checkin', 'duty', 'before'))],
    'duties': [('ck_duties_duty_kind', 'kind', ('recurring', 'milestone'))],
    'duty_occurrences': [('ck_duty_occurrences_occurrence_state', 'state', ('open', 'done'))],
    'outbox': [('ck_outbox_outbox_status', 'status', ('pending', 'sent', 'dead', 'undeliverable', 'silenced'))],
    'delivery_attempts': [('ck_delivery_attempts_attempt_status', 'status', ('sent', 'retry', 'dead'))],
    'silences': [('ck_silences_silence_target', 'target_kind', ('issue', 'duty', 'department', 'ledger'))],
}

_FACT_KEYS = {'title', 'what', 'ledger', 'ref', 'state', 'leader', 'department', 'area', 'category', 'duty',
              'period', 'level', 'item_template', 'urgent', 'year'}


def _facts(old: dict) -> dict:
    if 'subject_kind' in old:
        return old
    if old.get('milestone'):
        kind = 'milestone'
    elif 'duty' in old:
        kind = 'duty'
    elif 'year' in old:
        kind = 'calendar'
    else:
        kind = 'issue'
    new = {k: v for k, v in old.items() if k in _FACT_KEYS and v not in (None, '', 0, False)}
    new.setdefault('title', '')
    new['subject_kind'] = kind
    return new


_SPLIT = re.compile(r"[、,，;；/／\s]+")  # as engine.store.departments.departments_of


def upgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, column, values in checks:
                batch_op.create_check_constraint(name, sa.column(column).in_(values))
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('overdue_on', sa.Date(), nullable=True))
        batch_op.create_index('ix_issues_due_on', ['due_on'], unique=False)
        batch_op.create_index('ix_issues_overdue_on', ['overdue_on'], unique=False)
    with op.batch_alter_table('duty_occurrences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('overdue_on', sa.Date(), nullable=True))
        batch_op.create_index('ix_duty_occurrences_overdue_on', ['overdue_on'], unique=False)

    op.create_table('issue_departments',
        sa.Column('issue_id', sa.Integer(), nullable=False),
        sa.Column('department', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], name='fk_issue_departments_issue_id_issues',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('issue_id', 'department', name='pk_issue_departments'))
    with op.batch_alter_table('issue_departments', schema=None) as batch_op:
        batch_op.create_index('ix_issue_departments_department', ['department'], unique=False)

    conn = op.get_bind()
    issues = sa.table('issues', sa.column('id', sa.Integer), sa.column('department', sa.String))
    links = sa.table('issue_departments', sa.column('issue_id', sa.Integer), sa.column('department', sa.String))
    pairs = []
    for iid, cell in conn.execute(sa.select(issues.c.id, issues.c.department)):
        for dep in dict.fromkeys(p for p in _SPLIT.split(cell or '') if p):
            pairs.append({'issue_id': iid, 'department': dep[:200]})
            if len(pairs) >= 5000:
                conn.execute(links.insert(), pairs)
                pairs.clear()
    if pairs:
        conn.execute(links.insert(), pairs)
    reminders = sa.table('reminders', sa.column('id', sa.Integer), sa.column('details', sa.JSON))
    rows = conn.execute(sa.select(reminders.c.id, reminders.c.details)).all()
    changes = []
    for rid, details in rows:
        old = json.loads(details) if isinstance(details, str) else (details or {})
        new = _facts(old)
        if new != old:
            changes.append({'b_id': rid, 'b_details': new})
    if changes:
        conn.execute(reminders.update().where(reminders.c.id == sa.bindparam('b_id'))
                     .values(details=sa.bindparam('b_details')), changes)


def downgrade() -> None:
    op.drop_table('issue_departments')
    with op.batch_alter_table('duty_occurrences', schema=None) as batch_op:
        batch_op.drop_index('ix_duty_occurrences_overdue_on')
        batch_op.drop_column('overdue_on')
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.drop_index('ix_issues_overdue_on')
        batch_op.drop_index('ix_issues_due_on')
        batch_op.drop_column('overdue_on')
        batch_op.drop_column('due_on')
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _, _ in checks:
                batch_op.drop_constraint(name, type_='check')
