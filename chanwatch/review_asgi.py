"""The app as an import string for multi-process serving (`chanwatch review serve --workers N`)."""

from __future__ import annotations

import os

from chanwatch.settings import load_settings
from chanwatch.steps.review_db import open_review_db
from review.web import create_app

_settings = load_settings(os.environ.get("CHANWATCH_REVIEW_APP_CONFIG") or None,
                          os.environ.get("CHANWATCH_REVIEW_APP_STORAGE") or None)
app = create_app(open_review_db(_settings), _settings.review)
