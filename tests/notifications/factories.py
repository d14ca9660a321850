import factory

from notifications.models import ChannelTemplate, NotificationType, UserPreference
from tests.factories import EnvironmentFactory


class NotificationTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationType

    environment = factory.SubFactory(EnvironmentFactory)
    key = factory.Sequence(lambda n: f"type_{n}")
    name = factory.LazyAttribute(lambda o: o.key.replace("_", " ").title())


class ChannelTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelTemplate

    notification_type = factory.SubFactory(NotificationTypeFactory)
    channel = "email"
    subject = "Your order {{ order_id }} has shipped"
    html = "<p>Hi {{ first_name }}, your order is on its way.</p>"
    text = "Hi {{ first_name }}, your order is on its way."


class UserPreferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserPreference

    environment = factory.SubFactory(EnvironmentFactory)
    user_id = factory.Sequence(lambda n: f"usr_{n}")
    notification_type = "order_tracking"
    delivery = UserPreference.Delivery.OFF
