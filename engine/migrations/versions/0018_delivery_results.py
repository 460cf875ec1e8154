"""Issue #24: what the platforms report after a send: ``delivery_reports``.

A work notice can be accepted and not delivered (WeCom's ``invaliduser``/``unlicenseduser``,
DingTalk's ``getsendresult``): one row per sent message the platform said (or will say) something
about, so ``outbox list`` and ``/metrics`` show "sent but not delivered to N of M".

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

import engine.store.types

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delivery_reports',
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('missed', sa.Integer(), nullable=False),
    sa.Column('missed_ids', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('task', sa.String(length=100), nullable=True),
    sa.Column('check_at', engine.store.types.UTCDateTime(), nullable=True),
    sa.Column('reported_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['outbox.id'], name=op.f('fk_delivery_reports_message_id_outbox'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_delivery_reports'))
    )
    op.create_index('ix_delivery_reports_check_at', 'delivery_reports', ['check_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_delivery_reports_check_at', table_name='delivery_reports')
    op.drop_table('delivery_reports')
