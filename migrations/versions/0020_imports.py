"""Uploaded imports in the database, not in instance/imports/ (issue 15).

`imports` holds an upload's preview or job state (owner, status, progress, the
counts and invalid rows as JSON, the job's claim and lease); `import_chunks`
holds the uploaded file itself, in zlib-compressed pieces. So a preview made on
one app server can be committed on another, and progress is read from any.

Revision ID: 0020_imports
Revises: 0019_search_words
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_imports"
down_revision = "0019_search_words"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "imports",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("phase", sa.String(length=10), nullable=True),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('checking', 'preview', 'importing', 'done', 'failed')",
            name=op.f("ck_imports_status_known"),
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_imports")),
    )
    op.create_index(op.f("ix_imports_created_at"), "imports", ["created_at"])
    op.create_table(
        "import_chunks",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["token"],
            ["imports.token"],
            name=op.f("fk_import_chunks_token_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token", "seq", name=op.f("pk_import_chunks")),
    )


def downgrade():
    op.drop_table("import_chunks")
    op.drop_index(op.f("ix_imports_created_at"), table_name="imports")
    op.drop_table("imports")
