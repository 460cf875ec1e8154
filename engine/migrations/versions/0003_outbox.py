"""outbox, attempts, silences, rate windows

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 08:21:13.395507
"""
from alembic import op
import sqlalchemy as sa
import engine.store.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('recipient', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('data', engine.store.types.JSONDoc(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', engine.store.types.UTCDateTime(), nullable=True),
    sa.Column('lease_until', engine.store.types.UTCDateTime(), nullable=True),
    sa.Column('lease_owner', sa.String(length=100), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('sent_at', engine.store.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('key', name=op.f('uq_outbox_key'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_status'), ['status'], unique=False)

    op.create_table('rate_windows',
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('window_start', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('channel', name=op.f('pk_rate_windows'))
    )
    op.create_table('silences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target_kind', sa.String(length=20), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=False),
    sa.Column('until', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('lifted_at', engine.store.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_silences'))
    )
    with op.batch_alter_table('silences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_silences_until'), ['until'], unique=False)

    op.create_table('delivery_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('recipient', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('seconds', sa.Double(), nullable=False),
    sa.Column('worker', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['outbox.id'], name=op.f('fk_delivery_attempts_message_id_outbox'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_attempts'))
    )
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_attempts_message_id'), ['message_id'], unique=False)

    op.create_table('reminder_messages',
    sa.Column('reminder_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['outbox.id'], name=op.f('fk_reminder_messages_message_id_outbox'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reminder_id'], ['reminders.id'], name=op.f('fk_reminder_messages_reminder_id_reminders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('reminder_id', 'message_id', name=op.f('pk_reminder_messages'))
    )
    with op.batch_alter_table('reminder_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reminder_messages_message_id'), ['message_id'], unique=False)

    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routed_at', engine.store.types.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_reminders_routed_at'), ['routed_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reminders_routed_at'))
        batch_op.drop_column('routed_at')

    with op.batch_alter_table('reminder_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reminder_messages_message_id'))

    op.drop_table('reminder_messages')
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_attempts_message_id'))

    op.drop_table('delivery_attempts')
    with op.batch_alter_table('silences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_silences_until'))

    op.drop_table('silences')
    op.drop_table('rate_windows')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_status'))
        batch_op.drop_index(batch_op.f('ix_outbox_next_attempt_at'))

    op.drop_table('outbox')
