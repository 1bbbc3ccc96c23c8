"""chanwatch: monitor allowlisted public Telegram channels for known material, by hash."""

__version__ = "0.1.0"
