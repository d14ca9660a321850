import uuid

import factory
from django.utils import timezone

from logs.models import Delivery, Event, Notification
from tests.factories import EnvironmentFactory


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    id = factory.LazyFunction(uuid.uuid4)
    environment = factory.SubFactory(EnvironmentFactory)
    notification_type = "order_tracking"
    user_id = factory.Sequence(lambda n: f"usr_{n:06d}")
    email = factory.LazyAttribute(lambda o: f"{o.user_id}@example.com")
    number = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyAttribute(lambda o: o.created_at)


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    notification = factory.SubFactory(NotificationFactory)
    notification_created_at = factory.LazyAttribute(lambda o: o.notification.created_at)
    environment = factory.LazyAttribute(lambda o: o.notification.environment)
    channel = "email"
    provider = "sandbox"
    provider_message_id = factory.LazyFunction(lambda: f"msg-{uuid.uuid4().hex}")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    notification = factory.SubFactory(NotificationFactory)
    notification_created_at = factory.LazyAttribute(lambda o: o.notification.created_at)
    environment = factory.LazyAttribute(lambda o: o.notification.environment)
    kind = "received"
    occurred_at = factory.LazyAttribute(lambda o: o.notification.created_at)
    source = "api"
    dedupe_key = factory.Sequence(lambda n: f"factory:{n}")
