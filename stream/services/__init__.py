"""The outbound event stream's writes, by concern:

- subscriptions.py: a subscription's filters, its creation (the signing secret) and enabling;
- outbox.py: the messages written with each event and the drains enqueued for them;
- delivery.py: the drain: claim, sign, POST, record the attempts, back off, disable;
- upkeep.py: the sweeper, replay, the nightly purge and a user's erasure.
"""
