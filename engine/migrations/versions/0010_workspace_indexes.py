"""issues: (ledger_id, position) and (leader, ledger_id); issue_departments.ledger_id: the workspace at scale

A user's issue list is read in the index's order and stops after a page instead of sorting every
issue the user may see; a leader's count and ledger choices read only that leader's entries
(bench/workspace.py). ``issue_departments`` keeps each issue's ledger, so the ledgers a department
appears in are one index read.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_issues_ledger_position', 'issues', ['ledger_id', 'position'], unique=False)
    op.create_index('ix_issues_leader_ledger', 'issues', ['leader', 'ledger_id'], unique=False)
    op.add_column('issue_departments', sa.Column('ledger_id', sa.Integer(), nullable=True))
    op.execute("UPDATE issue_departments SET ledger_id = "
               "(SELECT issues.ledger_id FROM issues WHERE issues.id = issue_departments.issue_id)")
    op.create_index('ix_issue_departments_department_ledger', 'issue_departments', ['department', 'ledger_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_issue_departments_department_ledger', table_name='issue_departments')
    with op.batch_alter_table('issue_departments') as batch:
        batch.drop_column('ledger_id')
    op.drop_index('ix_issues_leader_ledger', table_name='issues')
    op.drop_index('ix_issues_ledger_position', table_name='issues')
