"""The daemon's engine: sync, availability, bookings, holds, push intake.

The only package that imports APScheduler.
"""
