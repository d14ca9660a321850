"""What happens to a channel after Sending, as the providers report it: the planned events
(time in epoch ms, kind, sub-kind, source, provider event id, detail, payload, error code,
error message) and the provider's message id, in the shapes and proportions of the
vocabulary in docs/architecture.md (bounces, deferrals, opens; Twilio's undelivered and
failed; calls completed, busy, unanswered or unreachable). Payloads are pre-rendered JSON
in each provider's format.
"""

import uuid

from demo.catalogue import DELIVERED, ENGAGEMENT, FAILED, NULL, SENT

SES_BOUNCES = (
    ("550", "smtp; 550 5.1.1 The email account that you tried to reach does not exist"),
    ("550", "smtp; 550 5.1.1 <recipient>: Recipient address rejected: User unknown"),
    ("552", "smtp; 552 5.2.2 The email account that you tried to reach is over quota"),
    ("554", "smtp; 554 5.7.1 Message rejected due to content restrictions"),
)
DEFERRALS = (
    "421 4.7.0 Try again later, closing connection",
    "451 4.7.1 Greylisted, please try again in 300 seconds",
    "450 4.2.1 The user you are trying to contact is receiving mail too quickly",
)
USER_AGENTS = ("Apple Mail", "Gmail image proxy", "Outlook 16", "iPhone Mail", "Thunderbird")


def email_events(events, rng, provider, label, destination, t_sent, late, r, iso, b64):
    """Email after Sending: (events, provider message id)."""
    rand = rng.random
    bits = rng.getrandbits
    if provider == "amazon_ses":
        pmid = (
            f"0100{t_sent:012x}-{bits(32):08x}-{bits(16):04x}-{bits(16):04x}-"
            f"{bits(16):04x}-{bits(48):012x}-000000"
        )
    elif provider == "sendgrid":
        pmid = b64(bits(128).to_bytes(16)).decode()[:22] + ".recvd-7f9c-1-0"
    elif provider == "smtp":
        pmid = f"<{bits(80):020x}@mail.hooli.example.com>"
    else:
        pmid = f"sbx_em_{bits(128):032x}"

    if r < 0.002:  # refused at send time: no provider message
        reason = (
            "Email address is on the account-level suppression list"
            if provider != "smtp"
            else "550 5.7.1 Relaying denied"
        )
        events.append(
            (t_sent, FAILED, "", "pipeline", "", f"{label} rejected the message: {reason}",
             NULL, "MessageRejected", reason)
        )  # fmt: skip
        return events, ""
    events.append((t_sent, SENT, "", "pipeline", "", f"Accepted by {label}", NULL, "", ""))
    if provider == "smtp":
        return events, pmid  # plain SMTP never says more

    def event(t, kind, sub, esp_type, detail, code="", message="", extra=""):
        if provider == "amazon_ses":
            peid = str(uuid.UUID(int=bits(128), version=4))
            payload = (
                f'{{"eventType": "{esp_type}", "mail": {{"messageId": "{pmid}", '
                f'"destination": ["{destination}"]}}, "timestamp": "{iso(t)}"{extra}}}'
            )
        elif provider == "sendgrid":
            peid = b64(bits(128).to_bytes(16)).decode()[:22]
            payload = (
                f'{{"event": "{SENDGRID_TYPES[esp_type]}", "email": "{destination}", '
                f'"sg_event_id": "{peid}", "sg_message_id": "{pmid}", "timestamp": '
                f"{t // 1000}{extra}}}"
            )
        else:
            peid = f"sbx_evt_{bits(96):024x}"
            payload = (
                f'{{"event_type": "{ANYMAIL_TYPES[esp_type]}", "message_id": "{pmid}", '
                f'"event_id": "{peid}", "recipient": "{destination}", "timestamp": '
                f'"{iso(t)}"{extra}}}'
            )
        return (t, kind, sub, provider, peid, detail, payload, code, message)

    t = t_sent + 300 + int(rand() ** 3 * 30_000) + late
    if r < 0.032:  # bounce; now and then after the receiving server first accepted it
        code, diagnostic = rng.choice(SES_BOUNCES)
        extra = (
            f', "bounce": {{"bounceType": "Permanent", "bounceSubType": "General", '
            f'"diagnosticCode": "{diagnostic}"}}'
        )
        if rand() < 0.15:
            events.append(event(t, DELIVERED, "", "Delivery", "Delivered: 250 2.0.0 OK"))
            t += 60_000 + int(rand() * 3_600_000)
        events.append(
            event(t, FAILED, "bounce", "Bounce", f"Permanent bounce: {diagnostic}", code,
                  diagnostic, extra)
        )  # fmt: skip
        return events, pmid
    if r < 0.052:  # deferred; most get through on a retry
        deferral = rng.choice(DEFERRALS)
        t += 300_000 + int(rand() * 1_500_000)
        events.append(
            event(t, FAILED, "delivery_delay", "DeliveryDelay",
                  f"Delivery delayed: {deferral} (will retry)", deferral[:3], deferral,
                  ', "deliveryDelay": {"delayType": "TransientCommunicationFailure"}')
        )  # fmt: skip
        if rand() < 0.7:
            t += 1_200_000 + int(rand() * 14_400_000)
            events.append(event(t, DELIVERED, "", "Delivery", "Delivered: 250 2.0.0 OK"))
        return events, pmid
    if r < 0.053:  # accepted, and the provider never reported back
        return events, pmid
    events.append(event(t, DELIVERED, "", "Delivery", "Delivered: 250 2.0.0 OK"))
    e = rand()
    if e < 0.05:
        t_open = t + 30_000 + int(rand() ** 2 * 172_800_000)
        agent = rng.choice(USER_AGENTS)
        events.append(event(t_open, ENGAGEMENT, "opened", "Open", f"Opened ({agent})"))
        if e < 0.02:
            t_click = t_open + 3_000 + int(rand() * 600_000)
            events.append(event(t_click, ENGAGEMENT, "clicked", "Click", "Clicked the main link"))
    elif e < 0.052:
        t_complaint = t + 600_000 + int(rand() * 86_400_000)
        events.append(
            event(t_complaint, ENGAGEMENT, "complained", "Complaint",
                  "Marked as spam by the recipient (feedback loop)")
        )  # fmt: skip
    elif e < 0.053:
        t_unsubscribe = t + 600_000 + int(rand() * 86_400_000)
        events.append(
            event(t_unsubscribe, ENGAGEMENT, "unsubscribed", "Subscription",
                  "Unsubscribed (List-Unsubscribe)")
        )  # fmt: skip
    return events, pmid


ANYMAIL_TYPES = {
    "Delivery": "delivered",
    "Bounce": "bounced",
    "DeliveryDelay": "deferred",
    "Open": "opened",
    "Click": "clicked",
    "Complaint": "complained",
    "Subscription": "unsubscribed",
}
SENDGRID_TYPES = {
    "Delivery": "delivered",
    "Bounce": "bounce",
    "DeliveryDelay": "deferred",
    "Open": "open",
    "Click": "click",
    "Complaint": "spamreport",
    "Subscription": "unsubscribe",
}
SMS_UNDELIVERED = (
    ("30003", "Unreachable destination handset"),
    ("30003", "Unreachable destination handset"),
    ("30005", "Unknown destination handset"),
    ("30006", "Landline or unreachable carrier"),
)


def twilio_sms_payload(sid, status, destination, env, extra=""):
    return (
        f'{{"MessageSid": "{sid}", "SmsSid": "{sid}", "MessageStatus": "{status}", '
        f'"AccountSid": "{env.account_sid}", "From": "{env.from_number}", "To": "{destination}", '
        f'"ApiVersion": "2010-04-01"{extra}}}'
    )


def sms_events(events, rng, provider, label, destination, env, t_sent, late, r):
    rand = rng.random
    prefix = "SM" if provider == "twilio" else "SMsbx"
    sid = f"{prefix}{rng.getrandbits(128):032x}"
    source = provider
    if r < 0.001:  # refused by the API: invalid number
        message = "The 'To' number is not a valid phone number"
        events.append(
            (t_sent, FAILED, "", "pipeline", "", f"{label} error 21211: {message}", NULL,
             "21211", message)
        )  # fmt: skip
        return events, ""
    events.append((t_sent, SENT, "", "pipeline", "", f"Accepted by {label} (queued)", NULL, "", ""))
    t = t_sent + 1500 + int(rand() ** 2 * 15_000) + late
    if r < 0.021:
        code, message = rng.choice(SMS_UNDELIVERED)
        payload = twilio_sms_payload(
            sid, "undelivered", destination, env, f', "ErrorCode": "{code}"'
        )
        events.append(
            (t, FAILED, "undelivered", source, f"{sid}:undelivered",
             f"Twilio error {code}: {message}", payload, code, message)
        )  # fmt: skip
    elif r < 0.031:
        message = "Unknown error"
        payload = twilio_sms_payload(sid, "failed", destination, env, ', "ErrorCode": "30008"')
        events.append(
            (t, FAILED, "infrastructure", source, f"{sid}:failed",
             f"Twilio error 30008: {message}", payload, "30008", message)
        )  # fmt: skip
    elif r < 0.032:
        pass  # never reported
    else:
        payload = twilio_sms_payload(sid, "delivered", destination, env)
        events.append(
            (t, DELIVERED, "", source, f"{sid}:delivered", "Delivered to the handset", payload,
             "", "")
        )  # fmt: skip
    return events, sid


def call_events(events, rng, provider, label, destination, env, t_sent, late, r):
    rand = rng.random
    prefix = "CA" if provider == "twilio" else "CAsbx"
    sid = f"{prefix}{rng.getrandbits(128):032x}"
    events.append((t_sent, SENT, "", "pipeline", "", f"Call queued with {label}", NULL, "", ""))

    def payload(status, duration, sequence):
        return (
            f'{{"CallSid": "{sid}", "CallStatus": "{status}", "AccountSid": '
            f'"{env.account_sid}", "From": "{env.from_number}", "To": "{destination}", '
            f'"Direction": "outbound-api", "CallDuration": "{duration}", "SequenceNumber": '
            f'"{sequence}", "ApiVersion": "2010-04-01"}}'
        )

    ring = 4_000 + int(rand() * 20_000) + late
    if r < 0.84:
        duration = 12 + int(rand() * 40)
        t = t_sent + ring + duration * 1000
        events.append(
            (t, DELIVERED, "completed", provider, f"{sid}:3",
             f"Call completed after {duration} s", payload("completed", duration, 3), "", "")
        )  # fmt: skip
    elif r < 0.89:
        events.append(
            (t_sent + ring, DELIVERED, "busy", provider, f"{sid}:1", "Line busy",
             payload("busy", 0, 1), "", "")
        )  # fmt: skip
    elif r < 0.97:
        t = t_sent + ring + 30_000
        events.append(
            (t, DELIVERED, "no_answer", provider, f"{sid}:2", "No answer after 30 s",
             payload("no-answer", 0, 2), "", "")
        )  # fmt: skip
    else:
        message = "The number cannot be reached"
        events.append(
            (t_sent + 2_000 + int(rand() * 3_000), FAILED, "cannot_reach", provider,
             f"{sid}:1", f"Call failed: {message}", payload("failed", 0, 1), "", message)
        )  # fmt: skip
    return events, sid
