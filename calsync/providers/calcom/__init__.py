"""Cal.com (API v2): the adapter (``provider``), its wire mapping, errors, API key, webhooks
and rate limit."""
