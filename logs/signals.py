"""What the log tells the rest of the product.

`event_recorded` is sent once per new event (never for a duplicate), inside the transaction
that wrote it, after the delivery's state and the notification's status are brought up to
date. A receiver that writes (an outbound-stream outbox row, an hourly rollup) commits or
rolls back with the event itself, so nothing downstream sees an event the log lost, or misses
one it kept. Receivers must be quick and must never call the network: enqueue such work with
`transaction.on_commit`, passing ids.

Keyword arguments: `notification` (logs.Notification, status current), `delivery`
(logs.Delivery, state current; None for a request-level event), `event` (logs.Event),
`first_of_kind` (True when the notification had no event of this kind on this channel
before) and `batch` (a logs.statements.StatementBatch).

Receivers write through the event's batch: `logs.statements` (`statement_run`,
`shared_row_write`, `StatementBatch.transaction`).
"""

from django.dispatch import Signal

event_recorded = Signal()
# Sent after rows were written into the log in bulk, around the event pipeline (the seed's
# COPY, a benchmark's set-up): start=, end= (the notifications' creation times they span),
# environment_ids=. What event_recorded receivers keep beside the log for each event, they
# build for these rows here.
log_rows_loaded = Signal()
# Sent when a user's erasure job is done (logs.erasure.erasure_run), inside the transaction
# that marks it done: job= (logs.ErasureJob), counts= (rows deleted per table). The access
# audit records it, committed with the job's end.
erasure_done = Signal()
