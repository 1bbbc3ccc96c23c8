"""Initial review schema, with the triggers that make the audit log append-only.

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audit_log',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('referral_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('entry_hash'),
    sa.UniqueConstraint('prev_hash')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_item_id'), ['item_id'], unique=False)

    op.create_table('login_throttle',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('media_index', sa.Integer(), nullable=False),
    sa.Column('media_kind', sa.String(length=32), nullable=True),
    sa.Column('channel_username', sa.String(length=64), nullable=True),
    sa.Column('channel_title', sa.Text(), nullable=True),
    sa.Column('allowlist_basis', sa.Text(), nullable=True),
    sa.Column('message_url', sa.Text(), nullable=True),
    sa.Column('message_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_text', sa.Text(), nullable=True),
    sa.Column('forward_chain', sa.JSON(), nullable=True),
    sa.Column('media_sha256', sa.String(length=64), nullable=True),
    sa.Column('first_matched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('best_distance', sa.Integer(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('reappearance_of_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claimed_by_id', sa.Integer(), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['claimed_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['reappearance_of_id'], ['items.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel_id', 'message_id', 'media_index', name='uq_items_media')
    )
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_items_channel_username'), ['channel_username'], unique=False)
        batch_op.create_index(batch_op.f('ix_items_media_sha256'), ['media_sha256'], unique=False)
        batch_op.create_index('ix_items_queue_age', ['status', 'priority', 'first_matched_at', 'id'], unique=False)
        batch_op.create_index('ix_items_queue_distance', ['status', 'priority', 'best_distance', 'id'], unique=False)

    op.create_table('referrals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=32), nullable=False),
    sa.Column('recipient', sa.String(length=128), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['sent_by_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference')
    )
    op.create_table('sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('matches',
    sa.Column('match_id', sa.String(length=64), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('signal_type', sa.String(length=16), nullable=False),
    sa.Column('distance', sa.Integer(), nullable=True),
    sa.Column('threshold', sa.Integer(), nullable=True),
    sa.Column('query_match_percent', sa.Double(), nullable=True),
    sa.Column('compared_match_percent', sa.Double(), nullable=True),
    sa.Column('media_hash', sa.String(length=64), nullable=True),
    sa.Column('list_name', sa.String(length=128), nullable=False),
    sa.Column('list_version', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Text(), nullable=True),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=128), nullable=True),
    sa.Column('matched_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ),
    sa.PrimaryKeyConstraint('match_id')
    )
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_matches_category'), ['category'], unique=False)
        batch_op.create_index('ix_matches_entry', ['signal_type', 'entry_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_matches_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_matches_list_name'), ['list_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_matches_media_hash'), ['media_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_matches_signal_type'), ['signal_type'], unique=False)

    op.create_table('referral_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referral_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('reference_id', sa.String(length=48), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('removal_status', sa.String(length=16), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_check_status', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference_id'),
    sa.UniqueConstraint('referral_id', 'item_id', name='uq_referral_item')
    )
    with op.batch_alter_table('referral_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referral_items_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_items_referral_id'), ['referral_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_items_removed_at'), ['removed_at'], unique=False)

    op.create_table('notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referral_item_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['referral_item_id'], ['referral_items.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_referral_item_id'), ['referral_item_id'], unique=False)

    _append_only_audit_log()


def _append_only_audit_log() -> None:
    """UPDATE and DELETE on audit_log fail in the database itself, whatever the client does."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$")
        op.execute("CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                       "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")

    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_referral_item_id'))

    op.drop_table('notices')
    with op.batch_alter_table('referral_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_items_removed_at'))
        batch_op.drop_index(batch_op.f('ix_referral_items_referral_id'))
        batch_op.drop_index(batch_op.f('ix_referral_items_item_id'))

    op.drop_table('referral_items')
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matches_signal_type'))
        batch_op.drop_index(batch_op.f('ix_matches_media_hash'))
        batch_op.drop_index(batch_op.f('ix_matches_list_name'))
        batch_op.drop_index(batch_op.f('ix_matches_item_id'))
        batch_op.drop_index('ix_matches_entry')
        batch_op.drop_index(batch_op.f('ix_matches_category'))

    op.drop_table('matches')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_user_id'))

    op.drop_table('sessions')
    op.drop_table('referrals')
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_queue_distance')
        batch_op.drop_index('ix_items_queue_age')
        batch_op.drop_index(batch_op.f('ix_items_media_sha256'))
        batch_op.drop_index(batch_op.f('ix_items_channel_username'))

    op.drop_table('items')
    op.drop_table('users')
    op.drop_table('login_throttle')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_item_id'))
        batch_op.drop_index(batch_op.f('ix_audit_log_action'))

    op.drop_table('audit_log')

