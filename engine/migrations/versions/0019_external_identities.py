"""Issue #23: app and single sign-on identities — nothing to store.

The organisation apps' user ids are the accounts' ``im`` ids the notices already use, and the
single sign-on claim names the account itself (``engine.accounts.external``): a table mapping
outside subjects to users would be a second truth to keep in step, so this revision stays empty.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
