"""issues: the indexes a ledger's overview and the overdue list read instead of the rows;
duty_occurrences.ledger_id (the milestone's or the issue's ledger), so a ledger's occurrences are
an index read

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

INDEXES = {
    'ix_issues_ledger_area_state': ['ledger_id', 'area', 'state', 'position'],
    'ix_issues_ledger_category': ['ledger_id', 'category'],
    'ix_issues_ledger_deadline': ['ledger_id', 'deadline'],
    'ix_issues_ledger_created': ['ledger_id', 'created_at', 'state'],
    'ix_issues_overdue_due': ['overdue_on', 'due_on'],
    'ix_issues_ledger_overdue_due': ['ledger_id', 'overdue_on', 'due_on'],
}


def upgrade() -> None:
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.drop_index('ix_issues_overdue_on')  # the first column of ix_issues_overdue_due
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
    with op.batch_alter_table('duty_occurrences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ledger_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_duty_occurrences_ledger_id_ledgers', 'ledgers', ['ledger_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.create_index('ix_duty_occurrences_ledger_due', ['ledger_id', 'due'], unique=False)
        batch_op.drop_index('ix_duty_occurrences_overdue_on')  # the first column of the next one
        batch_op.create_index('ix_duty_occurrences_overdue_due', ['overdue_on', 'due'], unique=False)
    op.execute("UPDATE duty_occurrences SET ledger_id = COALESCE("
               "(SELECT duties.ledger_id FROM duties WHERE duties.id = duty_occurrences.duty_id),"
               "(SELECT issues.ledger_id FROM issues WHERE issues.id = duty_occurrences.issue_id))")


def downgrade() -> None:
    with op.batch_alter_table('duty_occurrences', schema=None) as batch_op:
        batch_op.drop_index('ix_duty_occurrences_overdue_due')
        batch_op.create_index('ix_duty_occurrences_overdue_on', ['overdue_on'], unique=False)
        batch_op.drop_index('ix_duty_occurrences_ledger_due')
        batch_op.drop_constraint('fk_duty_occurrences_ledger_id_ledgers', type_='foreignkey')
        batch_op.drop_column('ledger_id')
    with op.batch_alter_table('issues', schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
        batch_op.create_index('ix_issues_overdue_on', ['overdue_on'], unique=False)
