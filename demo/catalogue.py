"""The demo's world: who gets notified, what they are sent, by which providers, and when.

Plain data and small pure helpers, no database: first and last names, e-mail domains and
phone numbers that libphonenumber accepts, a catalogue of notification types with their
channels, merge tags and content, the environments' brands and providers, and the daily
rhythm of sending. `demo.generator` draws from it.
"""

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.utils.html import strip_tags

from logs.content import template_dictionary
from logs.vocabulary import EventKind

# Plain strings (not the TextChoices members) in the hot loop.
RECEIVED, IGNORED, SENDING, SENT, DELIVERED, FAILED, ENGAGEMENT = (
    EventKind.RECEIVED.value,
    EventKind.IGNORED.value,
    EventKind.SENDING.value,
    EventKind.SENT.value,
    EventKind.DELIVERED.value,
    EventKind.FAILED.value,
    EventKind.ENGAGEMENT.value,
)
NULL = "\\N"


def copy_text(template: str) -> str:
    """Escape a template for COPY text format (values put into it never need escaping)."""
    return template.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


# Users ---------------------------------------------------------------------------------------

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Sandra",
    "Mark",
    "Emily",
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Amelia",
    "Oliver",
    "Sophia",
    "Lucas",
    "Mia",
    "Ethan",
    "Chloe",
    "Hannah",
    "Lukas",
    "Lena",
    "Felix",
    "Marie",
    "Jonas",
    "Anna",
    "Leon",
    "Laura",
    "Priya",
    "Arjun",
    "Ananya",
    "Rahul",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Carlos",
    "Sofia",
    "Mateus",
    "Ana",
    "Lucia",
    "Pedro",
    "Camille",
    "Louis",
    "Chiara",
    "Marco",
    "Aisha",
    "Omar",
    "Fatima",
    "Ivan",
    "Olga",
    "Sven",
    "Ingrid",
    "Liam",
    "Zoe",
    "Noor",
    "Kofi",
    "Amara",
]
ACCENTED = {"Zoe": "Zoë", "Lucia": "Lucía", "Sofia": "Sofía", "Lena": "Léna", "Ingrid": "Ingrid"}
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "Campbell",
    "Mitchell",
    "Roberts",
    "Carter",
    "Phillips",
    "Evans",
    "Turner",
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Patel",
    "Sharma",
    "Singh",
    "Kumar",
    "Gupta",
    "Chen",
    "Wang",
    "Li",
    "Zhang",
    "Tanaka",
    "Sato",
    "Suzuki",
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Dubois",
    "Moreau",
    "Laurent",
    "Rossi",
    "Russo",
    "Ferrari",
    "Novak",
    "Ivanova",
    "Andersson",
    "Johansson",
    "Okafor",
    "Mensah",
    "Haddad",
    "Khan",
    "Nguyen",
    "Tran",
    "Kim",
    "Park",
]
EMAIL_DOMAINS = (
    ("example.com", 40),
    ("example.org", 15),
    ("example.net", 15),
    ("mail.example.com", 10),
    ("inbox.example.org", 8),
    ("corp.example.net", 7),
    ("example.co.uk", 5),
)


def _us(rng: random.Random) -> tuple[str, str]:
    area, zone = rng.choice(US_AREAS)
    return f"+1{area}{rng.randrange(200, 1000)}{rng.randrange(10000):04d}", zone


US_AREAS = (
    ("212", "America/New_York"),
    ("646", "America/New_York"),
    ("617", "America/New_York"),
    ("305", "America/New_York"),
    ("404", "America/New_York"),
    ("312", "America/Chicago"),
    ("512", "America/Chicago"),
    ("214", "America/Chicago"),
    ("303", "America/Denver"),
    ("602", "America/Phoenix"),
    ("415", "America/Los_Angeles"),
    ("213", "America/Los_Angeles"),
    ("206", "America/Los_Angeles"),
    ("416", "America/Toronto"),
    ("604", "America/Vancouver"),
)


# (weight, make number and zone)
def _mobile(country_code: str, prefixes: tuple[str, ...], digits: int, zone: str):
    """Numbers in mobile ranges that libphonenumber accepts as valid for the country."""

    def make(rng: random.Random) -> tuple[str, str]:
        prefix = rng.choice(prefixes)
        rest = digits - len(prefix)
        return f"+{country_code}{prefix}{rng.randrange(10**rest):0{rest}d}", zone

    return make


# (weight, make a number and its time zone)
COUNTRIES: tuple[tuple[int, Callable[[random.Random], tuple[str, str]]], ...] = (
    (55, _us),
    (14, _mobile("44", ("71", "73", "74", "75", "78"), 10, "Europe/London")),
    (10, _mobile("49", ("151", "152", "160", "170", "171", "176"), 11, "Europe/Berlin")),
    (5, _mobile("33", ("61", "62", "64", "65", "66", "67", "73", "75", "77"), 9, "Europe/Paris")),
    (5, _mobile("61", ("40", "41", "42", "43", "46"), 9, "Australia/Sydney")),
    (6, _mobile("91", ("6", "7", "8", "9"), 10, "Asia/Kolkata")),
    (5, _mobile("55", ("119",), 11, "America/Sao_Paulo")),
)


@dataclass(frozen=True)
class User:
    user_id: str
    first_name: str
    email: str
    number: str
    timezone: str
    json: str  # the request's "user" object, pre-rendered


def user_make(rng: random.Random) -> User:
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    domain = rng.choices([d for d, _ in EMAIL_DOMAINS], [w for _, w in EMAIL_DOMAINS])[0]
    style = rng.random()
    number_suffix = str(rng.randrange(1, 100))
    if style < 0.45:
        local = f"{first}.{last}{number_suffix}"
    elif style < 0.65:
        local = f"{first}.{last}"
    elif style < 0.8:
        local = f"{first[0]}{last}{number_suffix}"
    elif style < 0.92:
        local = f"{first}_{last}{rng.randrange(1970, 2008)}"
    else:
        local = f"{first}{last[0]}{rng.randrange(100, 1000)}"
    # Most people type their address in lower case; some keep the capitals of their name.
    case = rng.random()
    if case < 0.85:
        email = f"{local}@{domain}".lower()
    elif case < 0.97:
        email = f"{local}@{domain}"
    else:
        email = f"{local}@{domain.upper()}"
    weights = [w for w, _ in COUNTRIES]
    make = rng.choices([m for _, m in COUNTRIES], weights)[0]
    number, zone = make(rng)
    user_id = f"usr_{rng.getrandbits(64):016x}"
    display_first = ACCENTED.get(first, first) if rng.random() < 0.3 else first
    user_json = f'{{"id": "{user_id}", "email": "{email}", "number": "{number}"}}'
    return User(user_id, display_first, email, number, zone, user_json)


# The catalogue -------------------------------------------------------------------------------

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CARRIERS = ("UPS", "FedEx", "DHL", "USPS", "Royal Mail", "DPD")
CLINICS = ("Dr. Alvarez, Main St Clinic", "Riverside Dental", "City Physio", "Dr. Okafor")
DEVICES = ("Chrome on Windows", "Safari on iPhone", "Firefox on Linux", "Edge on Windows")
CITIES = ("Berlin", "London", "Austin", "São Paulo", "Mumbai", "Toronto", "Sydney", "Lyon")
PLANS = ("Starter", "Pro", "Team", "Business")
POSTS = ("Q3 roadmap", "Release notes 4.2", "Team offsite", "Bug #1182")
COMMENTERS = ("Alex Kim", "Sam Patel", "Jordan Lee", "Chris Novak", "Taylor Haddad")


def _hours(rng: random.Random) -> str:
    return f"{rng.choice(WEEKDAYS)} {rng.randrange(8, 18)}:{rng.choice(('00', '15', '30', '45'))}"


TAGS: dict[str, Callable[[random.Random], str]] = {
    "orderId": lambda r: f"ORD-{r.randrange(100000, 1000000)}",
    "carrier": lambda r: r.choice(CARRIERS),
    "trackingNumber": lambda r: f"1Z{r.getrandbits(60):015X}",
    "eta": lambda r: r.choice(WEEKDAYS),
    "resetToken": lambda r: f"{r.getrandbits(96):024x}",
    "invoiceNumber": lambda r: f"INV-2026-{r.randrange(100000):05d}",
    "amount": lambda r: f"{r.randrange(900, 250000) / 100:.2f}",
    "currency": lambda r: r.choice(("USD", "USD", "EUR", "GBP")),
    "dueDate": lambda r: f"{r.randrange(1, 29)} Dec 2026",
    "appointmentTime": _hours,
    "location": lambda r: r.choice(CLINICS),
    "device": lambda r: r.choice(DEVICES),
    "city": lambda r: r.choice(CITIES),
    "ipAddress": lambda r: f"203.0.113.{r.randrange(1, 255)}",
    "planName": lambda r: r.choice(PLANS),
    "newItems": lambda r: str(r.randrange(1, 40)),
    "code": lambda r: f"{r.randrange(10**6):06d}",
    "commenter": lambda r: r.choice(COMMENTERS),
    "postTitle": lambda r: r.choice(POSTS),
    "delayDays": lambda r: str(r.randrange(1, 5)),
}


@dataclass(frozen=True)
class NotificationKind:
    key: str
    weight: int
    channels: tuple[str, ...]
    tags: tuple[str, ...]
    subject: str
    heading: str
    body: str  # HTML paragraphs
    sms: str = ""
    call: str = ""
    in_app: str = ""
    opt_out: float = 0.004  # share of users who turned this type off on some channel


TYPES = (
    NotificationKind(
        "order_tracking",
        20,
        ("email", "sms"),
        ("orderId", "carrier", "trackingNumber", "eta"),
        subject="Your order %(orderId)s is on its way",
        heading="Your order is on its way",
        body=(
            "<p>Hi %(firstName)s,</p><p>Good news: order <b>%(orderId)s</b> has shipped with "
            '%(carrier)s and should arrive by <b>%(eta)s</b>.</p><p><a href="https://{domain}'
            '/orders/%(orderId)s" style="background:#1a73e8;color:#fff;padding:10px 16px;'
            'text-decoration:none;border-radius:4px">Track your package</a></p>'
            "<p>Tracking number: %(trackingNumber)s</p>"
        ),
        sms="{brand}: order %(orderId)s shipped with %(carrier)s, arriving %(eta)s. "
        "Track: https://{domain}/t/%(trackingNumber)s",
    ),
    NotificationKind(
        "password_reset",
        14,
        ("email",),
        ("resetToken",),
        subject="Reset your {brand} password",
        heading="Reset your password",
        body=(
            "<p>Hi %(firstName)s,</p><p>We received a request to reset your password. The "
            'link below is valid for 60 minutes.</p><p><a href="https://{domain}/reset/'
            '%(resetToken)s" style="background:#1a73e8;color:#fff;padding:10px 16px;'
            'text-decoration:none;border-radius:4px">Choose a new password</a></p><p>If you '
            "did not ask for this, you can ignore this email.</p>"
        ),
        opt_out=0.0,
    ),
    NotificationKind(
        "welcome",
        8,
        ("in_app", "email"),
        ("planName",),
        subject="Welcome to {brand}, %(firstName)s!",
        heading="Welcome aboard",
        body=(
            "<p>Hi %(firstName)s,</p><p>Thanks for joining {brand}. Your %(planName)s plan "
            "is ready.</p><ul><li>Complete your profile</li><li>Invite your team</li>"
            '<li>Connect your first integration</li></ul><p><a href="https://{domain}/start">'
            "Get started</a></p>"
        ),
        in_app="Welcome to {brand}! Your %(planName)s plan is ready.",
    ),
    NotificationKind(
        "invoice_ready",
        12,
        ("email",),
        ("invoiceNumber", "amount", "currency", "dueDate"),
        subject="Invoice %(invoiceNumber)s is ready",
        heading="Your invoice is ready",
        body=(
            "<p>Hi %(firstName)s,</p><p>Invoice <b>%(invoiceNumber)s</b> for <b>%(amount)s "
            '%(currency)s</b> is ready and due on %(dueDate)s.</p><p><a href="https://'
            '{domain}/billing/%(invoiceNumber)s">View and pay the invoice</a></p>'
        ),
        opt_out=0.002,
    ),
    NotificationKind(
        "appointment_reminder",
        12,
        ("sms",),
        ("appointmentTime", "location"),
        subject="Appointment reminder",
        heading="Appointment reminder",
        body="<p>Hi %(firstName)s, see you %(appointmentTime)s at %(location)s.</p>",
        sms="Reminder: your appointment with %(location)s is %(appointmentTime)s. "
        "Reply C to confirm or R to reschedule.",
        opt_out=0.006,
    ),
    NotificationKind(
        "security_alert",
        4,
        ("email", "sms"),
        ("device", "city", "ipAddress"),
        subject="New sign-in to your {brand} account",
        heading="New sign-in detected",
        body=(
            "<p>Hi %(firstName)s,</p><p>Your account was just signed in to from <b>"
            "%(device)s</b> near %(city)s (IP %(ipAddress)s).</p><p>If this was not you, "
            '<a href="https://{domain}/security">secure your account</a> now.</p>'
        ),
        sms="{brand}: new sign-in from %(device)s near %(city)s. Not you? https://{domain}/security",
        opt_out=0.0,
    ),
    NotificationKind(
        "weekly_digest",
        12,
        ("email",),
        ("newItems",),
        subject="Your weekly summary: %(newItems)s new updates",
        heading="This week at {brand}",
        body=(
            "<p>Hi %(firstName)s,</p><p>You have <b>%(newItems)s</b> new updates this week."
            '</p><p><a href="https://{domain}/digest">See what you missed</a></p><p style="'
            'font-size:12px">Too many emails? <a href="https://{domain}/unsubscribe">'
            "Unsubscribe from the digest</a>.</p>"
        ),
        opt_out=0.04,
    ),
    NotificationKind(
        "verification_call",
        4,
        ("call",),
        ("code",),
        subject="Verification call",
        heading="Verification call",
        body="<p>Your code is %(code)s.</p>",
        call=(
            '<Response><Say voice="alice">Hello. Your {brand} verification code is '
            "%(code)s. Again, your code is %(code)s.</Say></Response>"
        ),
        opt_out=0.0,
    ),
    NotificationKind(
        "new_comment",
        8,
        ("in_app",),
        ("commenter", "postTitle"),
        subject="New comment",
        heading="New comment",
        body="<p>%(commenter)s commented on %(postTitle)s.</p>",
        in_app="%(commenter)s commented on “%(postTitle)s”",
        opt_out=0.01,
    ),
    NotificationKind(
        "shipping_delay",
        6,
        ("sms",),
        ("orderId", "delayDays"),
        subject="Shipping delay",
        heading="Shipping delay",
        body="<p>Order %(orderId)s is delayed by %(delayDays)s days.</p>",
        sms="{brand}: sorry, order %(orderId)s is delayed by %(delayDays)s day(s). "
        "We will text you when it ships.",
        opt_out=0.003,
    ),
)

MAX_CHANNELS = max(len(kind.channels) for kind in TYPES)

LAYOUT = (
    '<!DOCTYPE html><html><body style="font-family:Helvetica,Arial,sans-serif;color:#222">'
    '<h1 style="font-size:20px">{heading}</h1>{body}<p style="font-size:12px;color:#888">'
    '{brand} &middot; <a href="https://{domain}/settings">Notification settings</a></p>'
    "</body></html>"
)

# Environments: brand and providers, in rotation.
PROFILES = (
    ("Northwind Outfitters", "northwind.example.com", "amazon_ses", "twilio"),
    ("Globex Health", "globex.example.com", "sandbox", "sandbox"),
    ("Initech Billing", "initech.example.com", "sendgrid", "twilio"),
    ("Hooli Cloud", "hooli.example.com", "smtp", "twilio"),
)
PROVIDER_LABELS = {
    "amazon_ses": "Amazon SES",
    "sendgrid": "SendGrid",
    "smtp": "smtp.hooli.example.com",
    "twilio": "Twilio",
    "sandbox": "the sandbox",
    "in_app": "the in-app inbox",
}


@dataclass
class EnvContext:
    environment_id: int
    brand: str
    domain: str
    email_provider: str
    phone_provider: str
    account_sid: str
    from_number: str
    users: list[User]
    templates: dict[str, dict[str, str]]  # type -> part -> template (templates_render)
    dictionaries: dict[str, dict[str, bytes]]  # type -> channel -> template_dictionaries


def templates_render(kind: NotificationKind, brand: str, domain: str) -> dict[str, str]:
    """The kind's templates for one environment, as the generator fills them (%-format; not
    yet escaped for COPY: the generator escapes what it writes plain)."""

    def fill(template: str) -> str:
        return template.replace("{brand}", brand).replace("{domain}", domain)

    html = LAYOUT.replace("{heading}", kind.heading).replace("{body}", kind.body)
    keys = ("firstName", *kind.tags)
    merge_tags = "{" + ", ".join(f'"{key}": "%({key})s"' for key in keys) + "}"
    return {
        "subject": fill(kind.subject),
        "html": fill(html),
        # The email's text part as dispatch derives it from the rendered HTML (strip_tags),
        # derived once here: the merge-tag values hold no markup, so stripping the template
        # and filling it in gives the same text (tests/logs/test_seed.py checks it).
        "text": strip_tags(fill(html)).strip(),
        "sms": fill(kind.sms),
        "call": fill(kind.call),
        "in_app": fill(kind.in_app or kind.subject),
        "merge_tags": merge_tags,
    }


def template_dictionaries(templates: dict[str, str], channels: Iterable[str]) -> dict[str, bytes]:
    """Channel -> the dictionary its content is stored compressed with: the template it is
    rendered from, in Liquid as the catalogue's templates hold it, made as dispatch makes it
    (logs.content.template_dictionary), so the seed stores content as the product does."""
    html = _liquid(templates["html"])
    return {
        channel: template_dictionary(html=html, text=strip_tags(html).strip())
        if channel == "email"
        else template_dictionary(text=_liquid(templates[channel]))
        for channel in channels
    }


def environment_profile(index: int) -> tuple[str, str, str, str]:
    """(brand, domain, email provider, phone provider) of the `index`th seeded environment."""
    brand, domain, email_provider, phone_provider = PROFILES[index % len(PROFILES)]
    if index >= len(PROFILES):
        brand = f"{brand} {index // len(PROFILES) + 1}"
    return brand, domain, email_provider, phone_provider


def _liquid(template: str) -> str:
    # The generator fills "%(orderId)s"; the send pipeline renders Liquid: "{{ orderId }}".
    return re.sub(r"%\((\w+)\)s", r"{{ \1 }}", template)


def channel_templates(kind: NotificationKind, brand: str, domain: str) -> dict[str, dict]:
    """The console catalogue's templates of `kind` for one environment, channel by channel
    (subject, html, text as ChannelTemplate holds them), in Liquid. They use exactly the merge
    tags the generator puts in the seeded requests (firstName and `kind.tags`) and render what
    the generator's own content says, so a seeded notification resent from the console goes
    out (test: tests/test_demo.py)."""

    def fill(template: str) -> str:
        return _liquid(template.replace("{brand}", brand).replace("{domain}", domain))

    html = LAYOUT.replace("{heading}", kind.heading).replace("{body}", kind.body)
    parts = {
        # HTML only: dispatch derives the text part from the rendered HTML (strip_tags), as
        # the generator does for the seeded emails.
        "email": {"subject": fill(kind.subject), "html": fill(html), "text": ""},
        "sms": {"subject": "", "html": "", "text": fill(kind.sms)},
        "call": {"subject": "", "html": "", "text": fill(kind.call)},
        # In-app: the subject is the item's title, the text its body.
        "in_app": {"subject": fill(kind.heading), "html": "", "text": fill(kind.in_app)},
    }
    return {channel: parts[channel] for channel in kind.channels}


# Time ----------------------------------------------------------------------------------------

# Relative send volume by UTC hour: quiet at night in the Americas and Europe, busy afternoons.
HOURLY = (
    0.35, 0.3, 0.28, 0.27, 0.3, 0.38, 0.5, 0.65, 0.8, 0.9, 0.95, 1.0,
    1.0, 1.0, 1.0, 0.98, 0.95, 0.92, 0.88, 0.8, 0.7, 0.6, 0.5, 0.42,
)  # fmt: skip


def created_times(rng: random.Random, start_ms: int, end_ms: int, count: int) -> list[int]:
    """`count` sorted creation times in [start_ms, end_ms), following the daily rhythm."""
    span = end_ms - start_ms
    times = []
    append = times.append
    random_ = rng.random
    while len(times) < count:
        t = start_ms + int(random_() * span)
        if random_() < HOURLY[(t // 3_600_000) % 24]:
            append(t)
    times.sort()
    return times
