"""Issue #22: an index of each state's issues in deadline order.

我的待办 of someone whose scope is whole units (a district's reviewer) reads each of their states'
most urgent issues off ``ix_issues_state_overdue_due`` and merges them
(``engine.reminders.agenda.open_deadlines_in``), instead of walking every issue that shares a
deadline until a page of theirs is found.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_issues_state_overdue_due', 'issues', ['state', 'overdue_on', 'due_on', 'id'], unique=False)
    op.drop_index('ix_issues_state', table_name='issues')


def downgrade() -> None:
    op.create_index('ix_issues_state', 'issues', ['state'], unique=False)
    op.drop_index('ix_issues_state_overdue_due', table_name='issues')
