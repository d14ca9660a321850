"""The preset dictionaries provider payloads are compressed with (logs/payloads.py), by id.

Each is the compact JSON (sorted keys, no spaces: how logs.payloads writes a payload before
compressing it) of representative callbacks of one provider: its field names and the values
its documentation fixes (statuses, event types, API versions), never a value of a real
message. The strings most payloads share come last (deflate codes a near match in fewer bits).

NEVER EDIT OR REMOVE ONE: a stored payload names its dictionary by id and is decodable only with
those exact bytes (tests/logs/test_payloads.py pins their digests). A better dictionary is a new
id (PAYLOAD_DICTIONARIES), and logs.payloads.SOURCE_DICTIONARIES points the source at it; the
old id stays here for the rows written with it.
"""

# Twilio status callbacks (form fields), SMS and voice: both are recorded as source "twilio".
_TWILIO_1 = (
    '{"AccountSid":"AC","ApiVersion":"2010-04-01","CallDuration":"0","CallSid":"CA",'
    '"CallStatus":"in-progress","CallbackSource":"call-progress-events","Called":"+1",'
    '"CalledCity":"","CalledCountry":"US","CalledState":"","CalledZip":"","Caller":"+1",'
    '"CallerCity":"","CallerCountry":"US","CallerState":"","CallerZip":"",'
    '"Direction":"outbound-api","Duration":"1","From":"+1","FromCity":"","FromCountry":"US",'
    '"FromState":"","FromZip":"","SequenceNumber":"0","SipResponseCode":"200",'
    '"Timestamp":"Mon, 07 Dec 2026 12:00:00 +0000","To":"+1","ToCity":"","ToCountry":"US",'
    '"ToState":"","ToZip":""}'
    '"queued","ringing","busy","no-answer","canceled","sending","read","accepted",'
    '"ErrorCode":"30008","ErrorCode":"30005","ErrorCode":"30006","ErrorCode":"30007",'
    '{"AccountSid":"AC","ApiVersion":"2010-04-01","ErrorCode":"30003","ErrorMessage":"",'
    '"From":"+1","MessageSid":"SM","MessageStatus":"failed","MessagingServiceSid":"MG",'
    '"RawDlrDoneDate":"","SmsSid":"SM","SmsStatus":"failed","To":"+1"}'
    '{"AccountSid":"AC","ApiVersion":"2010-04-01","CallDuration":"0","CallSid":"CA",'
    '"CallStatus":"completed","CallbackSource":"call-progress-events",'
    '"Direction":"outbound-api","From":"+1","SequenceNumber":"3","Timestamp":"","To":"+1"}'
    '{"AccountSid":"AC","ApiVersion":"2010-04-01","ErrorCode":"30003","From":"+1",'
    '"MessageSid":"SM","MessageStatus":"undelivered","SmsSid":"SM","SmsStatus":"undelivered",'
    '"To":"+1"}'
    '{"AccountSid":"AC","ApiVersion":"2010-04-01","From":"+1","MessageSid":"SM",'
    '"MessageStatus":"sent","SmsSid":"SM","SmsStatus":"sent","To":"+1"}'
    '{"AccountSid":"AC","ApiVersion":"2010-04-01","From":"+1","MessageSid":"SM",'
    '"MessageStatus":"delivered","SmsSid":"SM","SmsStatus":"delivered","To":"+1"}'
)

# Amazon SES event publishing (anymail's esp_event: the SNS notification's Message).
_AMAZON_SES_1 = (
    '{"click":{"ipAddress":"","link":"https://","linkTags":{},"timestamp":"","userAgent":""},'
    '"eventType":"Click"}'
    '{"complaint":{"arrivalDate":"","complainedRecipients":[{"emailAddress":""}],'
    '"complaintFeedbackType":"abuse","complaintSubType":null,"feedbackId":"","timestamp":"",'
    '"userAgent":""},"eventType":"Complaint"}'
    '{"eventType":"Reject","reject":{"reason":"Bad content"}}'
    '{"eventType":"Rendering Failure","failure":{"errorMessage":"","templateName":""}}'
    '{"eventType":"Subscription","subscription":{"contactList":"","newTopicPreferences":{},'
    '"oldTopicPreferences":{},"source":"UnsubscribeHeader","timestamp":""}}'
    '{"deliveryDelay":{"delayType":"TransientCommunicationFailure","delayedRecipients":'
    '[{"diagnosticCode":"","emailAddress":"","status":"4.4.1"}],"expirationTime":"",'
    '"reportingMTA":"","timestamp":""},"eventType":"DeliveryDelay"}'
    '"delayType":"MailboxFull","delayType":"RecipientServerError","bounceType":"Transient",'
    '"bounceType":"Undetermined","bounceSubType":"MailboxFull","bounceSubType":"Suppressed",'
    '{"bounce":{"bounceSubType":"General","bounceType":"Permanent","bouncedRecipients":'
    '[{"action":"failed","diagnosticCode":"smtp; 550 5.1.1 ","emailAddress":"",'
    '"status":"5.1.1"}],"feedbackId":"","remoteMtaIp":"","reportingMTA":"dsn; ",'
    '"timestamp":""},"eventType":"Bounce"}'
    '{"eventType":"Open","open":{"ipAddress":"","timestamp":"","userAgent":"Mozilla/5.0 "}}'
    '{"eventType":"Send","send":{}}'
    '{"delivery":{"processingTimeMillis":1,"recipients":[""],"remoteMtaIp":"",'
    '"reportingMTA":"","smtpResponse":"250 2.0.0 OK","timestamp":""},"eventType":"Delivery",'
    '"mail":{"commonHeaders":{"date":"","from":[""],"messageId":"","subject":"","to":[""]},'
    '"destination":[""],"headers":[{"name":"From","value":""},{"name":"To","value":""},'
    '{"name":"Subject","value":""},{"name":"MIME-Version","value":"1.0"},'
    '{"name":"Content-Type","value":"multipart/alternative; boundary=\\""}],'
    '"headersTruncated":false,"messageId":"","sendingAccountId":"","source":"",'
    '"sourceArn":"arn:aws:ses:us-east-1:","tags":{"ses:caller-identity":[""],'
    '"ses:configuration-set":[""],"ses:from-domain":[""],"ses:operation":["SendEmail"],'
    '"ses:outgoing-ip":[""],"ses:source-ip":[""]},"timestamp":""}}'
    '{"eventType":"Delivery","mail":{"destination":[""],"headers":[],'
    '"messageId":"0100-000000","source":"","timestamp":"2026-12-07T12:00:00.000Z"},'
    '"timestamp":"2026-12-07T12:00:00.000Z"}'
    # The fields every event has.
    '{"eventType":"Delivery","mail":{"destination":[""],"messageId":""}}'
)

# SendGrid's event webhook (each event of its JSON array).
_SENDGRID_1 = (
    '{"asm_group_id":1,"category":[],"email":"","event":"group_unsubscribe",'
    '"sg_event_id":"","sg_message_id":"","timestamp":1}'
    '{"email":"","event":"click","ip":"","sg_event_id":"","sg_machine_open":false,'
    '"sg_message_id":"","timestamp":1,"url":"https://","url_offset":{"index":0,"type":"html"},'
    '"useragent":"Mozilla/5.0 "}'
    '{"email":"","event":"spamreport","sg_event_id":"","sg_message_id":"","timestamp":1}'
    '{"email":"","event":"unsubscribe","sg_event_id":"","sg_message_id":"","timestamp":1}'
    '{"attempt":"1","email":"","event":"deferred","response":"451 ","sg_event_id":"",'
    '"sg_message_id":"","smtp-id":"<","timestamp":1,"tls":1}'
    '{"bounce_classification":"Invalid Address","email":"","event":"bounce","reason":"550 5.1.1 ",'
    '"sg_event_id":"","sg_message_id":"","smtp-id":"<","status":"5.1.1","timestamp":1,"tls":1,'
    '"type":"bounce"}'
    '{"email":"","event":"dropped","reason":"Bounced Address","sg_event_id":"",'
    '"sg_message_id":"","smtp-id":"<","status":"5.0.0","timestamp":1}'
    '{"email":"","event":"processed","send_at":0,"sg_event_id":"","sg_message_id":"",'
    '"smtp-id":"<","timestamp":1}'
    '{"email":"","event":"open","ip":"","sg_event_id":"","sg_machine_open":false,'
    '"sg_message_id":"","timestamp":1,"useragent":"Mozilla/5.0 "}'
    '{"anymail_id":"","email":"","event":"delivered","ip":"","response":"250 OK",'
    '"sg_event_id":"","sg_message_id":"","smtp-id":"<","timestamp":1,"tls":1}'
    # The fields every event has.
    '{"email":"","event":"delivered","sg_event_id":"","sg_message_id":"","timestamp":1}'
)

# Mailgun's webhooks (anymail's esp_event: the "event-data" object).
_MAILGUN_1 = (
    '{"client-info":{"client-name":"","client-os":"","client-type":"browser",'
    '"device-type":"desktop","user-agent":"Mozilla/5.0 "},"event":"opened",'
    '"geolocation":{"city":"","country":"US","region":""},"ip":""}'
    '{"event":"clicked","url":"https://"}{"event":"complained"}{"event":"unsubscribed"}'
    '{"delivery-status":{"attempt-no":1,"bounce-code":"5.1.1","code":550,'
    '"description":"","enhanced-code":"5.1.1","message":"","mx-host":"","retry-seconds":0,'
    '"session-seconds":0.1},"event":"failed","reason":"bounce","severity":"permanent"}'
    '"reason":"generic","severity":"temporary","reason":"suppress-bounce",'
    '{"campaigns":[],"delivery-status":{"attempt-no":1,"certificate-verified":true,'
    '"code":250,"description":"","message":"OK","mx-host":"","session-seconds":0.1,'
    '"tls":true,"utf8":true},"envelope":{"sender":"","sending-ip":"","targets":"",'
    '"transport":"smtp"},"event":"delivered","flags":{"is-authenticated":true,'
    '"is-routed":false,"is-system-test":false,"is-test-mode":false},"id":"",'
    '"log-level":"info","message":{"attachments":[],"headers":{"from":"","message-id":"",'
    '"subject":"","to":""},"size":1},"recipient":"","recipient-domain":"",'
    '"storage":{"key":"","url":"https://"},"tags":[],"timestamp":1.0,"user-variables":{}}'
)

# Postmark's webhooks, one per RecordType.
_POSTMARK_RECORDS = (
    '{"ChangedAt":"","MessageID":"","MessageStream":"outbound","Metadata":{},"Origin":'
    '"Recipient","Recipient":"","RecordType":"SubscriptionChange","ServerID":1,'
    '"SuppressSending":true,"SuppressionReason":"ManualSuppression","Tag":""}'
    '{"Client":{"Company":"","Family":"","Name":""},"ClickLocation":"HTML",'
    '"Geo":{"City":"","Country":"","CountryISOCode":"US","Region":""},"MessageID":"",'
    '"MessageStream":"outbound","Metadata":{},"OS":{"Company":"","Family":"","Name":""},'
    '"OriginalLink":"https://","Platform":"Desktop","ReceivedAt":"","Recipient":"",'
    '"RecordType":"Click","Tag":"","UserAgent":"Mozilla/5.0 "}'
    '{"Client":{"Company":"","Family":"","Name":""},"FirstOpen":true,"Geo":{},'
    '"MessageID":"","MessageStream":"outbound","Metadata":{},"OS":{"Company":"",'
    '"Family":"","Name":""},"Platform":"WebMail","ReadSeconds":0,"ReceivedAt":"",'
    '"Recipient":"","RecordType":"Open","Tag":"","UserAgent":"Mozilla/5.0 "}'
    '"Type":"SpamComplaint","TypeCode":512,"Name":"Spam complaint",'
    '"Type":"Transient","TypeCode":2,"Name":"Message delayed",'
    '{"BouncedAt":"","CanActivate":true,"Content":"","Description":"","Details":"",'
    '"DumpAvailable":false,"Email":"","From":"","ID":1,"Inactive":true,"MessageID":"",'
    '"MessageStream":"outbound","Metadata":{},"Name":"Hard bounce","RecordType":"Bounce",'
    '"ServerID":1,"Subject":"","Tag":"","Type":"HardBounce","TypeCode":1}'
    '{"DeliveredAt":"2026-12-07T12:00:00.000000Z","Details":"","MessageID":"",'
    '"MessageStream":"outbound","Metadata":{},"Recipient":"","RecordType":"Delivery",'
    '"ServerID":1,"Tag":""}'
)
_POSTMARK_1 = _POSTMARK_RECORDS

# The sandbox provider (ours): Twilio's forms for SMS and calls, Postmark's records for
# email through the receivers, and anymail's normalised events (docs/architecture.md).
_SANDBOX_1 = _POSTMARK_RECORDS + (
    '{"event_id":"","event_type":"bounced","message_id":"","recipient":"",'
    '"reject_reason":"bounced","timestamp":"2026-12-07T12:00:00.000Z"}'
    '"event_type":"deferred","event_type":"opened","event_type":"clicked",'
    '"event_type":"complained","bounce":{"bounceSubType":"General","bounceType":"Permanent",'
    '"diagnosticCode":"smtp; 550 5.1.1 "},'
    '{"AccountSid":"AC","ApiVersion":"2010-04-01","CallDuration":"0","CallSid":"CA",'
    '"CallStatus":"completed","CallbackSource":"call-progress-events",'
    '"Direction":"outbound-api","From":"+1","SequenceNumber":"3","Timestamp":"","To":"+1"}'
    '"ringing","busy","no-answer","failed","undelivered","ErrorCode":"30003",'
    '{"AccountSid":"AC","ApiVersion":"2010-04-01","ErrorCode":"30008","From":"+1",'
    '"MessageSid":"SM","MessageStatus":"sent","SmsSid":"SM","SmsStatus":"sent","To":"+1"}'
    '{"event_id":"","event_type":"delivered","message_id":"","recipient":"",'
    '"timestamp":"2026-12-07T12:00:00.000Z"}'
    '{"AccountSid":"AC","ApiVersion":"2010-04-01","From":"+1","MessageSid":"SM",'
    '"MessageStatus":"delivered","SmsSid":"SM","SmsStatus":"delivered","To":"+1"}'
)

# id -> the dictionary's bytes. Ids 1 to 255 (one byte of the stored value).
PAYLOAD_DICTIONARIES: dict[int, bytes] = {
    1: _TWILIO_1.encode(),
    2: _AMAZON_SES_1.encode(),
    3: _SENDGRID_1.encode(),
    4: _MAILGUN_1.encode(),
    5: _POSTMARK_1.encode(),
    6: _SANDBOX_1.encode(),
}
