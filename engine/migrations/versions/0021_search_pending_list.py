"""Issue #22: PostgreSQL's search index keeps a short pending list.

GIN takes the terms of a changed row into a pending list (``fastupdate``) and merges it into the
index once it passes ``gin_pending_list_limit`` (4 MB by default); every search reads the whole
list meanwhile. After 20 writers' progress notes a search for a word found nowhere took 38–57 ms
instead of 19 at 1M issues. At 512 kB it stays at 19–28 ms, the writes as fast.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

PENDING_KB = 512


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"ALTER INDEX ix_issue_search_terms SET (gin_pending_list_limit = {PENDING_KB})")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER INDEX ix_issue_search_terms RESET (gin_pending_list_limit)")
