"""Calendar providers: one subpackage each, all behind the protocol in ``base``.

Providers turn a remote calendar into domain ``Event``s. They never touch
the store; the sync engine in ``calsync.scheduler`` does that.
"""
