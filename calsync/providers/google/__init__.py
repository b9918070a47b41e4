"""Google Calendar: the adapter (``provider``), its wire mapping, errors and credentials."""
