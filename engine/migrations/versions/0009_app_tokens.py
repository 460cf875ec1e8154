"""app_tokens: the organisation apps' access tokens, shared by every daemon on the database

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

import engine.store.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('app_tokens',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('expires_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('fetched_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_app_tokens'))
    )


def downgrade() -> None:
    op.drop_table('app_tokens')
