"""What the log tells the rest of the product.

`event_recorded` is sent once per new event (never for a duplicate), inside the transaction
that wrote it, after the delivery's state and the notification's status are brought up to
date. A receiver that writes (an outbound-stream outbox row, an hourly rollup) commits or
rolls back with the event itself, so nothing downstream sees an event the log lost, or misses
one it kept. Receivers must be quick and must never call the network: enqueue such work with
`transaction.on_commit`, passing ids.

Keyword arguments: `notification` (logs.Notification, status current), `delivery`
(logs.Delivery, state current; None for a request-level event) and `event` (logs.Event).
"""

from django.dispatch import Signal

event_recorded = Signal()
