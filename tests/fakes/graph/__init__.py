"""A faithful fake of Microsoft Graph v1.0 (calendar) and the identity platform MSAL talks to.

Built from the protocol notes in ``/work/shared/reference/providers.md``
(section 2, 5 and 6), not from any calsync adapter. One real HTTP/1.1 server
on 127.0.0.1 serves both halves::

    with FakeGraph() as graph:
        app = msal.PublicClientApplication(
            "client-id", authority=graph.authority(), http_client=graph.http_client())
        flow = app.initiate_device_flow(["Calendars.ReadWrite"])
        graph.approve_device_code(flow["user_code"])
        token = app.acquire_token_by_device_flow(flow)["access_token"]
        requests.get(f"{graph.graph_url}/me/calendars",
                     headers={"Authorization": f"Bearer {token}"})

MSAL needs an https authority: ``http_client()`` mounts an adapter that
rewrites ``https://login.microsoftonline.com`` (and ``login.example.test``,
and ``graph.microsoft.com``) to the fake's http port. A host MSAL does not
know also needs ``instance_discovery=False``.

Choices where the reference is silent (each marked in its module):

- A repeated ``transactionId`` POST answers **201** with the first event, not a
  copy: the reference documents only 201 for create and says the server
  de-duplicates retries, so a retry must look like the original success.
- ``personal_account = True``: getSchedule answers **500
  ErrorInternalServerError** (docs only say "not supported for personal
  accounts"; threads report that 500 for unsupported Outlook APIs), and new
  id tokens carry the consumer tenant ``9188040d-6c67-4c5b-b112-36a304b66dad``
  -- the signal an adapter can use to skip getSchedule.
- MSAL >= 1.3x asks for ``response_mode=form_post`` and its loopback rejects a
  GET carrying a code: ``consent(url).deliver()`` POSTs the form; ``.url`` is
  the query-style redirect for ``response_mode=query`` clients.

Simplifications: default delta page size 10; all-day events are windowed from
UTC midnight; ``/me/events`` subscriptions cover the default calendar only;
no delivery retries, no rich (resource-data) notifications; http
notification URLs are allowed on loopback only; no ``GET /me/events`` list or
plain calendarView; daily/weekly recurrence only; AADSTS numbers are
best-effort (branch on ``error``).

Modules: ``server`` (FakeGraph, knobs, helpers), ``identity`` (AAD v2),
``routes`` (Graph URL table), ``store`` (mailboxes, series, change log),
``events`` (event JSON and writes), ``delta`` (calendarView delta),
``schedule`` (getSchedule), ``subscriptions`` (webhooks), ``wire`` (envelopes,
time zones), ``transport`` (the loopback adapter).
"""

from .aad import AuthorizationResponse
from .server import FakeGraph, RecordedRequest
from .store import GraphUser, Recurrence
from .subscriptions import Delivery

__all__ = [
    "AuthorizationResponse",
    "Delivery",
    "FakeGraph",
    "GraphUser",
    "RecordedRequest",
    "Recurrence",
]
