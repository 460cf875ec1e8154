"""Evidence in duban's own store: per-user quota

``evidence.added_by`` is indexed, since every upload sums what its user has already added
(``[evidence] quota_bytes``). Rows of files the web kept in the old ``evidence-files`` folder under
their SHA-256 now name the store file by its SHA-256 alone, so the store folder can move
(``[evidence] folder``). Rows of CLI evidence kept by the user's own path are left as they are:
they are served while their bytes match and ``duban evidence check --adopt`` copies them in.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_evidence_added_by', 'evidence', ['added_by'], unique=False)
    op.execute("UPDATE evidence SET path = sha256 WHERE content IS NULL AND path LIKE ('%/evidence-files/' || sha256)")


def downgrade() -> None:
    # an older duban opens the path as it is, relative to its working folder: the shipped unit runs
    # in the config's folder, where the default store is
    op.execute("UPDATE evidence SET path = 'evidence-files/' || sha256 WHERE content IS NULL AND path = sha256")
    op.drop_index('ix_evidence_added_by', table_name='evidence')
