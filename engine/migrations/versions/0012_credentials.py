"""Credentials that end: API token expiry, server-side sessions, sign-in throttling

``api_tokens.expires_at``: a token made before this revision had no end; it gets 90 days from the
upgrade, so an integration keeps working while its owner makes a new one. ``web_sessions``: the
row a session cookie names, so logging out ends it on the server. ``login_throttle``: failed
sign-ins per (login name, client address) and per address, replacing the per-account lock
(``users.failed_logins`` / ``locked_until`` stay, unused: dropping them rebuilds ``users`` on
SQLite, and that DROP would cascade to every grant).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

import engine.store.types

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

GRACE_DAYS = 90


def upgrade() -> None:
    op.create_table('login_throttle',
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('next_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('address', 'name', name=op.f('pk_login_throttle'))
    )
    op.create_index(op.f('ix_login_throttle_last_at'), 'login_throttle', ['last_at'], unique=False)
    op.create_table('web_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('via', sa.String(length=20), nullable=False),
    sa.Column('created_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('ended_at', engine.store.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_web_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_sessions'))
    )
    op.create_index(op.f('ix_web_sessions_user_id'), 'web_sessions', ['user_id'], unique=False)
    op.add_column('api_tokens', sa.Column('expires_at', engine.store.types.UTCDateTime(), nullable=True))
    tokens = sa.table('api_tokens', sa.column('expires_at', engine.store.types.UTCDateTime()))
    op.execute(tokens.update().values(expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=GRACE_DAYS)))
    # nothing references api_tokens, so SQLite's rebuild of it here loses nothing
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('expires_at', existing_type=engine.store.types.UTCDateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
    op.drop_index(op.f('ix_web_sessions_user_id'), table_name='web_sessions')
    op.drop_table('web_sessions')
    op.drop_index(op.f('ix_login_throttle_last_at'), table_name='login_throttle')
    op.drop_table('login_throttle')
