"""reminders, duties, next-due columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 08:12:31.564983
"""
from alembic import op
import sqlalchemy as sa
import engine.store.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('duties',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('owners', sa.JSON(), nullable=False),
    sa.Column('ledger_id', sa.Integer(), nullable=True),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('spec_hash', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('generated_until', sa.Date(), nullable=True),
    sa.Column('created_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['ledger_id'], ['ledgers.id'], name=op.f('fk_duties_ledger_id_ledgers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duties')),
    sa.UniqueConstraint('key', name=op.f('uq_duties_key'))
    )
    with op.batch_alter_table('duties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duties_ledger_id'), ['ledger_id'], unique=False)

    op.create_table('duty_occurrences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('duty_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=300), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=True),
    sa.Column('anchor', sa.Date(), nullable=False),
    sa.Column('scheduled_due', sa.Date(), nullable=False),
    sa.Column('due', sa.Date(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('touched', sa.Boolean(), nullable=False),
    sa.Column('done_at', engine.store.types.UTCDateTime(), nullable=True),
    sa.Column('done_by', sa.String(length=200), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('next_remind_at', engine.store.types.UTCDateTime(), nullable=True),
    sa.Column('remind_after', engine.store.types.UTCDateTime(), nullable=True),
    sa.Column('created_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['duty_id'], ['duties.id'], name=op.f('fk_duty_occurrences_duty_id_duties'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], name=op.f('fk_duty_occurrences_issue_id_issues'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duty_occurrences')),
    sa.UniqueConstraint('duty_id', 'period', name='uq_duty_occurrences_duty_period')
    )
    with op.batch_alter_table('duty_occurrences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duty_occurrences_due'), ['due'], unique=False)
        batch_op.create_index(batch_op.f('ix_duty_occurrences_issue_id'), ['issue_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duty_occurrences_next_remind_at'), ['next_remind_at'], unique=False)

    op.create_table('reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=400), nullable=False),
    sa.Column('at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('occurrence', sa.String(length=60), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('ledger_id', sa.Integer(), nullable=True),
    sa.Column('issue_id', sa.Integer(), nullable=True),
    sa.Column('occurrence_id', sa.Integer(), nullable=True),
    sa.Column('due', sa.Date(), nullable=True),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], name=op.f('fk_reminders_issue_id_issues'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ledger_id'], ['ledgers.id'], name=op.f('fk_reminders_ledger_id_ledgers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['occurrence_id'], ['duty_occurrences.id'], name=op.f('fk_reminders_occurrence_id_duty_occurrences'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminders')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_reminders_dedupe_key'))
    )
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reminders_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminders_issue_id'), ['issue_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminders_ledger_id'), ['ledger_id'], unique=False)

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('occurrence_id', sa.Integer(), nullable=True))
        batch_op.alter_column('issue_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_evidence_occurrence_id'), ['occurrence_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_evidence_occurrence_id_duty_occurrences'), 'duty_occurrences', ['occurrence_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_remind_at', engine.store.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('remind_after', engine.store.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_checkin_at', engine.store.types.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_issues_next_remind_at'), ['next_remind_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issues_next_remind_at'))
        batch_op.drop_column('last_checkin_at')
        batch_op.drop_column('remind_after')
        batch_op.drop_column('next_remind_at')

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_evidence_occurrence_id_duty_occurrences'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_evidence_occurrence_id'))
        batch_op.alter_column('issue_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('occurrence_id')

    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reminders_ledger_id'))
        batch_op.drop_index(batch_op.f('ix_reminders_issue_id'))
        batch_op.drop_index(batch_op.f('ix_reminders_at'))

    op.drop_table('reminders')
    with op.batch_alter_table('duty_occurrences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_duty_occurrences_next_remind_at'))
        batch_op.drop_index(batch_op.f('ix_duty_occurrences_due'))
        batch_op.drop_index(batch_op.f('ix_duty_occurrences_issue_id'))

    op.drop_table('duty_occurrences')
    with op.batch_alter_table('duties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_duties_ledger_id'))

    op.drop_table('duties')
