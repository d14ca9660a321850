"""The send pipeline's writes (HackSoft style: services write, keyword-only), by concern:

- sends.py: accepting a send (notification_send): idempotency, the schedule and sender-domain
  fences, the dispatch hand-off and the errors answered 404/409 (NotFound, Conflict).
- schedules.py: a scheduled send moved or deleted before it is due.
- end_users.py: identified end users, their preferences, sub-notifications.
- in_app.py: the in-app feed: retract, fetch, update (opens and clicks).
- upkeep.py: the nightly purge of the send tables; the Twilio auth tokens' encryption.
"""
