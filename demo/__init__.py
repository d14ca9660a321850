"""The demo `make run` serves: the Demo account's catalogue, a seeded week and live sends.

It sits above the apps it fills (accounts, notifications, logs, insights) and no app imports
it: its generator (catalogue, outcomes, generator, loader) only writes rows, services.py puts a
world around them. This package imports nothing itself (an app package, loaded before the
models): import `seed_logs` and the rest from `demo.loader`.

The demo data generator: realistic notification logs, a million at a time, in minutes.

`seed_logs()` (`demo.loader`) fills the log tables with `notifications` notifications spread
over the last `days` days (up to `end`, default now) across `environments` seed environments
(or every environment of one existing `account`), with their deliveries and timelines, as the send
pipeline and the providers' callbacks would have left them:

- a catalogue of notification types, each with its usual channels (email; email + SMS; SMS;
  call; in-app + email; in-app), merge tags and a request body shaped like a NotificationAPI
  send (`{"notificationId", "user": {...}, "mergeTags": {...}}`);
- a pool of about `notifications / 20` users (a few heavy ones, many light ones) with user ids
  like `usr_8f3a…`, emails like `maria.garcia42@example.com` (some with capitals) and E.164
  numbers from several countries;
- outcomes per channel in the event vocabulary of docs/architecture.md: email mostly Sent →
  Delivered, ~3% Failed - Bounce (some after a Delivered), ~2% Failed - Delivery Delay (most later
  Delivered), ~5% opened or clicked, ~0.2% Complained; SMS mostly Delivered, ~2% Undelivered
  (Twilio 30003/30005/30006), ~1% Infrastructure (30008); calls Completed / Busy / No Answer /
  Cannot Reach; a few channels Ignored (user preference, dashboard, plan limit); a few still
  in flight (recent ones whose callbacks have not come yet, the odd one never reported);
- each environment on its own providers: Amazon SES + Twilio, the sandbox, SendGrid + Twilio,
  plain SMTP (which never reports delivery) + Twilio, in that rotation;
- delivery state, times and notification status derived by `logs.status` itself from the
  events written, and every event's dedupe key the one `logs.services.event_record` gives it
  ("received"; "<source>:<provider event id>"; the send pipeline's own keys, "sending:email:1",
  "sent:email", as notifications.sending writes them), so a callback or a pipeline step
  replayed against seeded data is recognised as a duplicate.

Modules: `catalogue` (names, numbers, types, templates, providers), `outcomes` (what each
provider reports after Sending), `generator` (rows as COPY text, step by step, no database),
`loader` (partitions, ids, COPY, the forked generator).

Speed: rows are produced as pre-formatted COPY text by a forked generator process and
streamed into PostgreSQL (`COPY … FROM STDIN` into the partitioned parents), one transaction
per chunk of notifications with their deliveries and events, by two connections at once, so
generation and ingestion overlap on two cores (about 90 s for a million notifications, 7.3M
rows, on the 2-core development machine, before the generator called logs.status and
event_dedupe_key: these doubled its CPU time, to about 85 µs a notification, a little under
a third of it hashing dedupe keys; on a busy 2-core machine 100,000 notifications took 27-33 s
against 19-28 s before). Inside a transaction (tests) the same chunks go
through Django's connection instead. Ids come from the tables' sequences, reserved in one block
up front (the unused tail is given back if nobody else drew from the sequence meanwhile). Day
partitions are created first so nothing lands in DEFAULT; loading sessions skip the WAL flush
at commit and, for a superuser, the per-row foreign key triggers; the tables are vacuumed and
analysed at the end.

Deterministic: the same arguments (seed, counts, end and the environments' ids) give the same
rows, whether generated inline or in the forked process.
"""
