"""Issue #22: list indexes end in the id (PostgreSQL's order), and the Chinese search index

A paged list is read off an index in its ORDER BY (…, id). SQLite's index entries end in the rowid
anyway; PostgreSQL's do not, and there a page of 我的待办 read and sorted the ~95k issues sharing a
feedback-date deadline. ``issue_search`` holds each issue's folded text and its terms (characters
and character pairs, engine.issues.search): indexed by GIN on PostgreSQL, by an FTS5 table over it
on SQLite (external content, kept in step by triggers). Filled here from the issues.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# name: (table, its columns before the id)
INDEXES = {
    'ix_issues_overdue_due': ('issues', ['overdue_on', 'due_on']),
    'ix_issues_ledger_overdue_due': ('issues', ['ledger_id', 'overdue_on', 'due_on']),
    'ix_issues_ledger_position': ('issues', ['ledger_id', 'position']),
    'ix_duty_occurrences_ledger_due': ('duty_occurrences', ['ledger_id', 'due']),
    'ix_duty_occurrences_overdue_due': ('duty_occurrences', ['overdue_on', 'due']),
    'ix_duty_occurrences_due': ('duty_occurrences', ['due']),
}

FTS = 'issue_search_fts'
# The FTS5 table reads its words from issue_search.terms; the triggers are the documented way to
# keep an external-content table in step (https://sqlite.org/fts5.html#external_content_tables).
SQLITE_FTS = [
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(terms, content='issue_search', content_rowid='issue_id', "
    "tokenize='unicode61 remove_diacritics 0', detail='none')",
    f"CREATE TRIGGER issue_search_ai AFTER INSERT ON issue_search BEGIN "
    f"INSERT INTO {FTS}(rowid, terms) VALUES (new.issue_id, new.terms); END",
    f"CREATE TRIGGER issue_search_ad AFTER DELETE ON issue_search BEGIN "
    f"INSERT INTO {FTS}({FTS}, rowid, terms) VALUES ('delete', old.issue_id, old.terms); END",
    f"CREATE TRIGGER issue_search_au AFTER UPDATE ON issue_search BEGIN "
    f"INSERT INTO {FTS}({FTS}, rowid, terms) VALUES ('delete', old.issue_id, old.terms); "
    f"INSERT INTO {FTS}(rowid, terms) VALUES (new.issue_id, new.terms); END",
]


def _reindex(with_id: bool) -> None:
    for name, (table, columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [*columns, 'id'] if with_id else columns, unique=False)


def upgrade() -> None:
    _reindex(with_id=True)
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.create_table(
        'issue_search',
        sa.Column('issue_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('terms', sa.Text().with_variant(postgresql.ARRAY(sa.Text()), 'postgresql'), nullable=False),
        sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], name='fk_issue_search_issue_id_issues',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('issue_id', name='pk_issue_search'),
    )
    if sqlite:
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.create_index('ix_issue_search_terms', 'issue_search', ['terms'], unique=False, postgresql_using='gin')
    from engine.issues.search import rebuild  # the terms are the application's: one definition

    rebuild(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for trigger in ('issue_search_ai', 'issue_search_ad', 'issue_search_au'):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute(f"DROP TABLE IF EXISTS {FTS}")
    else:
        op.drop_index('ix_issue_search_terms', table_name='issue_search', postgresql_using='gin')
    op.drop_table('issue_search')
    op.execute("DELETE FROM site_state WHERE name = 'search_version'")
    _reindex(with_id=False)
