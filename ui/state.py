"""Session-state keys shared by the router and the pages (one name per piece of state)."""
from __future__ import annotations

#: Sidebar widgets (drawn by the page frame, ui/frame.py, read by every page).
MODEL = "model"
DATE_RANGE = "date_range"
WINDOW = "window"

#: Windows a user can pick; the core's ``window=`` argument takes these names.
WINDOWS = ("hour", "day", "week")
DEFAULT_WINDOW = "day"
#: Days shown by default, ending at the newest logged prediction.
DEFAULT_DAYS = 30

#: A message shown once after an action (kind, text), popped by ``widgets.flash``.
FLASH = "flash"
#: Id of the retrain the user started in this session (the page also finds it from the DB).
RETRAIN_RUN = "retrain_run_id"
#: Versions chosen for comparison, per model.
COMPARE = "compare_versions"

#: The auto-refresh interval in seconds (0: off), chosen in the sidebar of the monitoring pages.
REFRESH = "auto_refresh"
REFRESH_CHOICES = {0: "Off", 60: "Every minute", 300: "Every 5 minutes", 900: "Every 15 minutes"}
#: When the page was last drawn in full (monotonic seconds): the auto-refresh's clock.
PAGE_DRAWN_AT = "page_drawn_at"
