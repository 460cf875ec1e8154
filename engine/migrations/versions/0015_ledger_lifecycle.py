"""Ledgers archived and deleted: archived_at, the administrators' log

``ledgers.archived_at`` / ``archived_by``: a ledger closed when its rectification is over is
read-only and never reminded of (``duban ledger archive``). ``admin_log``: who archived, reopened
or deleted a ledger (or restored a backup), through which door, when and why; it names the ledger
by its name, so the entry outlives a deleted ledger.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

import engine.store.types

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable columns: SQLite adds them in place, no table rebuild (which would cascade)
    op.add_column('ledgers', sa.Column('archived_at', engine.store.types.UTCDateTime(), nullable=True))
    op.add_column('ledgers', sa.Column('archived_by', sa.String(length=200), nullable=True))
    op.create_table('admin_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('door', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_log'))
    )
    op.create_index(op.f('ix_admin_log_at'), 'admin_log', ['at'], unique=False)
    op.create_index(op.f('ix_admin_log_subject'), 'admin_log', ['subject'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_admin_log_subject'), table_name='admin_log')
    op.drop_index(op.f('ix_admin_log_at'), table_name='admin_log')
    op.drop_table('admin_log')
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+), never batch mode: its copy-and-drop of ledgers would
    # cascade to every issue
    op.drop_column('ledgers', 'archived_by')
    op.drop_column('ledgers', 'archived_at')
