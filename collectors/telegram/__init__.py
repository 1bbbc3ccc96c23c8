"""Live collection from Telegram's API with Telethon: public broadcast channels on the allowlist only.

Nothing here joins a channel, sends a message or marks anything as read; the only requests are
resolving a channel, reading its full info, reading its history and downloading media into memory.
"""
