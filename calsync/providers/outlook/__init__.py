"""Microsoft Outlook via Microsoft Graph: the adapter (``provider``), its wire mapping, errors
and credentials (MSAL, ``auth``)."""
