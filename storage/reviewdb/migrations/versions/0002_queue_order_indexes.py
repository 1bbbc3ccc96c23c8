"""Queue order indexes: one per sort order, led by priority, so keyset pages are range scans.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_index("ix_items_queue_distance")
        batch.drop_index("ix_items_queue_age")
    op.create_index("ix_items_status", "items", ["status"])
    op.create_index("ix_items_order_distance", "items", [sa.text("priority DESC"), "best_distance", "id"])
    op.create_index("ix_items_order_oldest", "items", [sa.text("priority DESC"), "first_matched_at", "id"])
    op.create_index("ix_items_order_newest", "items",
                    [sa.text("priority DESC"), sa.text("first_matched_at DESC"), sa.text("id DESC")])


def downgrade() -> None:
    for name in ("ix_items_order_newest", "ix_items_order_oldest", "ix_items_order_distance", "ix_items_status"):
        op.drop_index(name, table_name="items")
    op.create_index("ix_items_queue_distance", "items", ["status", "priority", "best_distance", "id"])
    op.create_index("ix_items_queue_age", "items", ["status", "priority", "first_matched_at", "id"])
